"""The status worker's forwarder, one due message at a time, with the broker's exchanges and
messages faked (the real broker: tests/integration/status_worker): an order event that comes
due is sent on as its timer's command (its id derived from the event's, its trace carried
on), a final status sends none, a timer the worker set before the upgrade is sent on as it
is, a command the broker did not take is sent again, and a message that cannot be read is
redelivered, then dead-lettered with its error on its last delivery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from aiormq import spec
from prometheus_client import CollectorRegistry

from shared.events import AdvanceStatus, Envelope, OrderCreated, OrderStatus, OrderStatusChanged
from shared.topology import DELIVERY_LIMIT
from status_worker.forwarder import DueForwarder
from status_worker.metrics import TimerMetrics
from status_worker.timers import TIMER_IDS
from status_worker.topology import DUE, TimerTopology
from tests.support.factories import order_created, status_changed

TOPOLOGY = TimerTopology.for_interval(2.0)
ORDER_ID = uuid.uuid4()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class Delivered:
    """A due message as aio-pika hands it to the forwarder, and how it was settled."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str = "due-1"
    content_type: str = "application/json"
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack(requeue={requeue})")


@dataclass
class Exchange:
    """Confirms what it is sent, but for the first `refuse` sends (returned, not confirmed)."""

    refuse: int = 0
    sent: list[tuple[str, aio_pika.Message]] = field(default_factory=list)

    async def publish(self, message: aio_pika.Message, routing_key: str, **_: Any) -> object:
        if self.refuse:
            self.refuse -= 1
            return None  # what aio-pika answers for a mandatory message no queue took
        self.sent.append((routing_key, message))
        return spec.Basic.Ack(delivery_tag=len(self.sent))


@dataclass
class Worker:
    forwarder: DueForwarder
    registry: CollectorRegistry
    commands: Exchange = field(default_factory=Exchange)
    dead_letters: Exchange = field(default_factory=Exchange)

    async def due(self, message: Envelope[Any] | bytes, **headers: Any) -> Delivered:
        """`message` dead-lettered into the due queue, as the wait queue does once it expires."""
        body = message if isinstance(message, bytes) else message.model_dump_json().encode()
        delivered = Delivered(body, headers)
        await self.forwarder.handle(delivered, self.commands, self.dead_letters)  # type: ignore[arg-type]
        return delivered

    def sent(self) -> list[Envelope[AdvanceStatus]]:
        return [
            Envelope[AdvanceStatus].model_validate_json(message.body)
            for _, message in self.commands.sent
        ]

    def fired(self) -> float | None:
        return self.registry.get_sample_value("timers_fired_total")


@pytest.fixture
def worker() -> Worker:
    metrics = TimerMetrics(registry := CollectorRegistry())
    return Worker(DueForwarder("amqp://unused", TOPOLOGY.due, metrics), registry)


def created() -> Envelope[OrderCreated]:
    return order_created(ORDER_ID, at=NOW)


def changed(to: OrderStatus, version: int) -> Envelope[OrderStatusChanged]:
    return status_changed(ORDER_ID, to, from_=OrderStatus.PAID, version=version)


async def test_a_due_event_is_sent_on_as_its_timers_command(worker: Worker) -> None:
    event = created()
    delivered = await worker.due(event)
    [command] = worker.sent()
    assert command.payload == AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.PENDING)
    assert command.event_id == uuid.uuid5(TIMER_IDS, str(event.event_id))
    [(routing_key, message)] = worker.commands.sent
    assert routing_key == AdvanceStatus.ROUTING_KEY
    assert message.message_id == str(command.event_id)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert delivered.settled == ["ack"]
    assert worker.fired() == 1


async def test_the_command_carries_the_trace_of_the_change_that_set_the_timer(
    worker: Worker,
) -> None:
    await worker.due(created(), traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
    [(_, message)] = worker.commands.sent
    assert TRACE_ID in str((message.headers or {})["traceparent"])


async def test_a_due_event_of_a_final_status_sends_nothing(worker: Worker) -> None:
    delivered = await worker.due(changed(OrderStatus.CANCELED, version=4))
    assert worker.sent() == []
    assert delivered.settled == ["ack"]
    assert worker.fired() == 0


async def test_the_same_event_due_twice_sends_one_command_id_twice(worker: Worker) -> None:
    event = changed(OrderStatus.SHIPPED, version=3)
    await worker.due(event)
    await worker.due(event)  # redelivered
    assert [c.event_id for c in worker.sent()] == [uuid.uuid5(TIMER_IDS, str(event.event_id))] * 2


async def test_a_timer_set_before_the_upgrade_is_sent_on_as_it_is(worker: Worker) -> None:
    old = Envelope.wrap(
        AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.PAID),
        aggregate_id=ORDER_ID,
        version=2,
    )
    await worker.due(old)
    assert worker.sent() == [old]


async def test_a_command_the_broker_did_not_take_is_sent_again_holding_the_event(
    worker: Worker,
) -> None:
    worker.commands.refuse = 1
    delivered = await worker.due(created())
    assert len(worker.sent()) == 1
    assert delivered.settled == ["ack"]
    assert worker.fired() == 1


async def test_a_message_that_cannot_be_read_comes_again_then_is_dead_lettered_with_its_error(
    worker: Worker,
) -> None:
    early = await worker.due(b"not json", **{"x-delivery-count": 0})
    assert early.settled == ["nack(requeue=True)"]
    assert worker.dead_letters.sent == []

    last = await worker.due(b"not json", **{"x-delivery-count": DELIVERY_LIMIT})
    assert last.settled == ["ack"]
    [(routing_key, letter)] = worker.dead_letters.sent
    assert routing_key == DUE  # the due queue's dead-letter queue, status_worker.due.dlq
    headers = letter.headers or {}
    assert headers["x-invalid"] == "true"
    assert headers["x-queue"] == TOPOLOGY.due.name
    assert "ValidationError" in str(headers["x-error"])
    assert letter.body == b"not json"
    assert worker.sent() == []
