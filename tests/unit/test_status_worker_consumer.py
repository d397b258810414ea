"""The status worker's consumer on FastStream's in-memory broker: an order event that comes due
is sent on as its timer's command (its id derived from the event's), a final status sends
none, and a timer the worker set before the upgrade is sent on as it is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from prometheus_client import CollectorRegistry

from order_command.consumers import ADVANCE_QUEUE
from shared.broker import build_broker
from shared.events import (
    AdvanceStatus,
    Envelope,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
)
from shared.topology import ORDERS_COMMANDS
from status_worker import consumers
from status_worker.metrics import TimerMetrics
from status_worker.timers import TIMER_IDS
from status_worker.topology import TimerTopology
from tests.support.factories import order_created, status_changed

TOPOLOGY = TimerTopology.for_interval(2.0)
ORDER_ID = uuid.uuid4()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Worker:
    broker: RabbitBroker
    registry: CollectorRegistry
    sent: list[Envelope[AdvanceStatus]] = field(default_factory=list)

    async def due(self, message: Envelope[Any]) -> None:
        """`message` dead-lettered into the due queue, as the wait queue does once it expires."""
        await self.broker.publish(message, TOPOLOGY.due)

    def fired(self) -> float | None:
        return self.registry.get_sample_value("timers_fired_total")


@pytest.fixture
async def worker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Worker]:
    # The in-memory broker has no publisher confirms: its publish returns nothing, and raises
    # where no subscriber takes the message. Confirms are tested on the real broker.
    monkeypatch.setattr(consumers, "require_confirm", lambda confirmation, what: None)
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="status_worker")
    metrics = TimerMetrics(registry := CollectorRegistry())
    consumers.subscribe(broker, TOPOLOGY, metrics)
    running = Worker(broker, registry)

    @broker.subscriber(ADVANCE_QUEUE, ORDERS_COMMANDS)
    async def order_command(command: Envelope[AdvanceStatus]) -> None:
        running.sent.append(command)

    async with TestRabbitBroker(broker) as test_broker:
        running.broker = test_broker
        yield running


def created() -> Envelope[OrderCreated]:
    return order_created(ORDER_ID, at=NOW)


def changed(to: OrderStatus, version: int) -> Envelope[OrderStatusChanged]:
    return status_changed(ORDER_ID, to, from_=OrderStatus.PAID, version=version)


async def test_a_due_event_is_sent_on_as_its_timers_command(worker: Worker) -> None:
    event = created()
    await worker.due(event)
    [command] = worker.sent
    assert command.payload == AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.PENDING)
    assert command.event_id == uuid.uuid5(TIMER_IDS, str(event.event_id))
    assert worker.fired() == 1


async def test_a_due_event_of_a_final_status_sends_nothing(worker: Worker) -> None:
    await worker.due(changed(OrderStatus.CANCELED, version=4))
    assert worker.sent == []
    assert worker.fired() == 0


async def test_the_same_event_due_twice_sends_one_command_id_twice(worker: Worker) -> None:
    event = changed(OrderStatus.SHIPPED, version=3)
    await worker.due(event)
    await worker.due(event)  # redelivered
    assert [c.event_id for c in worker.sent] == [uuid.uuid5(TIMER_IDS, str(event.event_id))] * 2


async def test_a_timer_set_before_the_upgrade_is_sent_on_as_it_is(worker: Worker) -> None:
    old = Envelope.wrap(
        AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.PAID),
        aggregate_id=ORDER_ID,
        version=2,
    )
    await worker.due(old)
    assert worker.sent == [old]
