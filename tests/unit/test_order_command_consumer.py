"""order_command's consumer on FastStream's in-memory broker, over the service in memory: a
timer's command moves an order once, a stale one does nothing, and each gets its answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from order_command import consumers
from order_command.domain import Actor
from order_command.service import OrderService
from shared.broker import build_broker
from shared.events import AdvanceStatus, AdvanceStatusResult, Envelope, OrderItem, OrderStatus
from shared.topology import ORDERS_COMMANDS
from tests.support.fake_orders import MemoryUnitOfWork, memory_service

REPLIES = "test.advance_status.replies"
ALICE = Actor(uuid.uuid4())
ITEMS = [OrderItem(name="tea", price=Decimal("2.50"), quantity=1)]


@dataclass
class Consumer:
    broker: RabbitBroker
    orders: OrderService
    work: MemoryUnitOfWork
    replies: list[AdvanceStatusResult]

    async def advance(self, order_id: uuid.UUID, expected: OrderStatus) -> None:
        command = Envelope.wrap(
            AdvanceStatus(order_id=order_id, expected_status=expected),
            aggregate_id=order_id,
            version=1,
        )
        await self.broker.publish(
            command,
            exchange=ORDERS_COMMANDS,
            routing_key=AdvanceStatus.ROUTING_KEY,
            reply_to=REPLIES,
        )


@pytest.fixture
async def consumer() -> AsyncIterator[Consumer]:
    orders, work = memory_service()
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="order_command")
    consumers.subscribe(broker, lambda: orders)
    replies: list[AdvanceStatusResult] = []

    @broker.subscriber(REPLIES)
    async def replied(result: AdvanceStatusResult) -> None:
        replies.append(result)

    async with TestRabbitBroker(broker) as test_broker:
        yield Consumer(test_broker, orders, work, replies)


async def test_a_due_timer_moves_the_order_one_step_and_says_so(consumer: Consumer) -> None:
    order = (await consumer.orders.create(ALICE, ITEMS, None)).order
    await consumer.advance(order.id, OrderStatus.PENDING)
    assert consumer.work.stored.orders[order.id].status is OrderStatus.PAID
    assert consumer.replies == [
        AdvanceStatusResult(order_id=order.id, expected_status=OrderStatus.PENDING, applied=True)
    ]


async def test_a_stale_or_repeated_timer_changes_nothing_and_says_so(consumer: Consumer) -> None:
    order = (await consumer.orders.create(ALICE, ITEMS, None)).order
    await consumer.advance(order.id, OrderStatus.PENDING)
    await consumer.advance(order.id, OrderStatus.PENDING)  # redelivered
    await consumer.advance(uuid.uuid4(), OrderStatus.PENDING)  # no such order
    assert consumer.work.stored.orders[order.id].version == 2
    assert [reply.applied for reply in consumer.replies] == [True, False, False]
