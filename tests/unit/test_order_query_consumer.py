"""order_query's consumers on FastStream's in-memory broker: an order event reaches the
projection as its typed event (upcast first when it is of an older schema), a user as its
typed payload, and a message that is no order event reaches nothing; the AsyncAPI document
names what is consumed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from faststream.specification import AsyncAPI

from order_query import consumers
from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from shared.broker import build_broker
from shared.events import (
    Envelope,
    OrderCreated,
    OrderEvent,
    OrderStatus,
    Role,
    UserRegistered,
)
from shared.topology import AUTH_EVENTS, ORDERS_EVENTS
from shared.upcasting import CURRENCY_BEFORE_SCHEMA_2
from tests.support.factories import order_created, status_changed


@dataclass
class Projection:
    users: list[UserRegistered] = field(default_factory=list)

    async def add_user(self, user: UserRegistered) -> None:
        self.users.append(user)


@dataclass
class Projector:
    """What the consumers call of `consumers.Projector`, recording what they hand it."""

    projection: Projection = field(default_factory=Projection)
    events: list[OrderEvent] = field(default_factory=list)

    async def project(self, event: OrderEvent) -> None:
        self.events.append(event)


@dataclass
class Consumers:
    broker: RabbitBroker
    projector: Projector

    async def order_event(self, body: Any, routing_key: str) -> None:
        await self.broker.publish(body, exchange=ORDERS_EVENTS, routing_key=routing_key)


@pytest.fixture
async def running() -> AsyncIterator[Consumers]:
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="order_query")
    projector = Projector()
    assert consumers.subscribe(broker, lambda: projector) == [ORDERS_QUEUE, USERS_QUEUE]  # type: ignore[arg-type, return-value]
    async with TestRabbitBroker(broker) as test_broker:
        yield Consumers(test_broker, projector)


async def test_an_order_event_reaches_the_projection_as_its_typed_event(
    running: Consumers,
) -> None:
    made = order_created()
    paid = status_changed(made.aggregate_id, OrderStatus.PAID, from_=OrderStatus.PENDING, version=2)
    await running.order_event(made, "order.created")
    await running.order_event(paid, "order.status_changed")
    assert running.projector.events == [made, paid]
    assert isinstance(running.projector.events[0].payload, OrderCreated)


async def test_an_order_created_of_schema_1_is_upcast_before_the_projection_sees_it(
    running: Consumers,
) -> None:
    made = order_created().model_dump(mode="json")
    del made["payload"]["currency"]
    await running.order_event({**made, "schema_version": 1}, "order.created")
    [event] = running.projector.events
    assert isinstance(event.payload, OrderCreated)
    assert (event.schema_version, event.payload.currency) == (2, CURRENCY_BEFORE_SCHEMA_2)


async def test_a_message_that_is_no_order_event_reaches_nothing(running: Consumers) -> None:
    made = order_created().model_dump(mode="json")
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        await running.order_event({**made, "type": "order.renamed"}, "order.created")
    with pytest.raises(ValueError, match="payload"):
        await running.order_event({**made, "payload": {}}, "order.created")
    assert running.projector.events == []


async def test_a_registered_user_reaches_the_projection_as_the_user(running: Consumers) -> None:
    user = UserRegistered(id=uuid.uuid4(), username="ada", email="ada@example.com", role=Role.USER)
    await running.broker.publish(
        Envelope.wrap(user, aggregate_id=user.id, version=1),
        exchange=AUTH_EVENTS,
        routing_key=UserRegistered.ROUTING_KEY,
    )
    assert running.projector.projection.users == [user]


def test_the_asyncapi_document_describes_each_order_event_consumed() -> None:
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="order_query")
    consumers.subscribe(broker, lambda: Projector())  # type: ignore[arg-type, return-value]
    document = AsyncAPI(broker, title="order_query", version="1").to_specification()
    schemas = document.to_jsonable()["components"]["schemas"]
    for kind in ("OrderCreated", "OrderStatusChanged", "OrderUpdated", "OrderDeleted"):
        assert f"Envelope_{kind}_" in schemas
    assert "UserRegistered" in schemas
