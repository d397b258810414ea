"""Queue depths a service reads from the broker when Prometheus scrapes: messages waiting in
each queue it consumes (its lag, in messages), in each of their dead-letter queues, and in
any other queue it names (the status worker's timers waiting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from faststream.rabbit import RabbitBroker, RabbitQueue
from prometheus_client import CollectorRegistry, Gauge

from shared.topology import consumer_queue, dead_letter_queue


class QueueDepths:
    def __init__(
        self,
        registry: CollectorRegistry,
        broker: RabbitBroker,
        consumed: Sequence[str],
        others: Mapping[str, tuple[RabbitQueue, Gauge]] | None = None,
    ) -> None:
        """`consumed` are consumer queues' base names (`shared.topology.consumer_queue`)."""
        self.broker = broker
        self.consumer = Gauge(
            "consumer_queue_messages",
            "Messages waiting in a queue this service consumes, not yet delivered (its lag)",
            ["queue"],
            registry=registry,
        )
        self.dead = Gauge(
            "dead_letter_queue_messages",
            "Messages in a dead-letter queue of this service's consumers",
            ["queue"],
            registry=registry,
        )
        self.queues: list[tuple[RabbitQueue, Gauge]] = []
        for name in consumed:
            queue = consumer_queue(name, "")
            self.queues.append((queue, self.consumer.labels(queue.name)))
            dlq = dead_letter_queue(name)
            self.queues.append((dlq, self.dead.labels(dlq.name)))
        self.queues += list((others or {}).values())

    async def refresh(self) -> None:
        """Re-declare each queue (as declared already: nothing changes) for its count."""
        for queue, gauge in self.queues:
            declared = await self.broker.declare_queue(queue)
            result = await declared.declare()
            gauge.set(result.message_count or 0)
