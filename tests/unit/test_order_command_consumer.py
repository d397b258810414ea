"""order_command's consumer on FastStream's in-memory broker, over the service in memory: a
timer's command moves an order once, a stale one does nothing, and each is counted as such."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from prometheus_client import CollectorRegistry

from order_command import consumers
from order_command.domain import Actor
from order_command.metrics import AdvanceMetrics
from order_command.service import OrderService
from shared.broker import build_broker
from shared.events import AdvanceStatus, Envelope, OrderItem, OrderStatus
from shared.topology import ORDERS_COMMANDS
from tests.support.fake_orders import MemoryUnitOfWork, memory_service

ALICE = Actor(uuid.uuid4())
ITEMS = [OrderItem(name="tea", price=Decimal("2.50"), quantity=1)]


@dataclass
class Consumer:
    broker: RabbitBroker
    orders: OrderService
    work: MemoryUnitOfWork
    registry: CollectorRegistry

    async def advance(self, order_id: uuid.UUID, expected: OrderStatus) -> None:
        command = Envelope.wrap(
            AdvanceStatus(order_id=order_id, expected_status=expected),
            aggregate_id=order_id,
            version=1,
        )
        await self.broker.publish(
            command, exchange=ORDERS_COMMANDS, routing_key=AdvanceStatus.ROUTING_KEY
        )

    def counted(self) -> tuple[float, float]:
        """(applied, stale)"""
        return tuple(  # type: ignore[return-value]
            self.registry.get_sample_value("advance_status_commands_total", {"outcome": outcome})
            for outcome in ("applied", "stale")
        )


@pytest.fixture
async def consumer() -> AsyncIterator[Consumer]:
    orders, work = memory_service()
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="order_command")
    registry = CollectorRegistry()
    consumers.subscribe(broker, lambda: orders, AdvanceMetrics(registry))
    async with TestRabbitBroker(broker) as test_broker:
        yield Consumer(test_broker, orders, work, registry)


async def test_a_due_timer_moves_the_order_one_step_and_is_counted_applied(
    consumer: Consumer,
) -> None:
    assert consumer.counted() == (0, 0)
    order = (await consumer.orders.create(ALICE, ITEMS, None)).order
    await consumer.advance(order.id, OrderStatus.PENDING)
    assert consumer.work.stored.orders[order.id].status is OrderStatus.PAID
    assert consumer.counted() == (1, 0)


async def test_a_stale_or_repeated_timer_changes_nothing_and_is_counted_stale(
    consumer: Consumer,
) -> None:
    order = (await consumer.orders.create(ALICE, ITEMS, None)).order
    await consumer.advance(order.id, OrderStatus.PENDING)
    await consumer.advance(order.id, OrderStatus.PENDING)  # redelivered
    await consumer.advance(uuid.uuid4(), OrderStatus.PENDING)  # no such order
    assert consumer.work.stored.orders[order.id].version == 2
    assert consumer.counted() == (1, 2)
