"""The worker's queues, both durable quorum queues:

    orders.events --order.created, order.status_changed--> status_worker.wait.<ms>ms
        (no consumer; message TTL = the interval)
        --expires: dead-lettered, at least once--> status_worker.due.dl5 (the worker consumes)

The wait queue is bound to orders.events itself, so RabbitMQ holds each event for the interval
and no Python runs to set a timer. Its TTL is part of its name: a quorum queue's arguments
cannot change once declared, so a new interval is a new wait queue, bound in place of the old
one (`wait_queues.py`), and timers already in the old one still come due into the same due
queue. The due queue has a delivery limit and a dead-letter queue
(`shared.topology.consumer_queue`).
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import RabbitBroker, RabbitQueue

from shared.events import OrderCreated, OrderStatusChanged
from shared.topology import consumer_queue, delay_queue

WAIT = "status_worker.wait"
DUE = "status_worker.due"
# The events that start a step: each waits in the wait queue, then comes due.
STEP_EVENTS = (OrderCreated.ROUTING_KEY, OrderStatusChanged.ROUTING_KEY)


@dataclass(frozen=True)
class TimerTopology:
    wait: RabbitQueue
    due: RabbitQueue

    @classmethod
    def for_interval(cls, interval: float) -> TimerTopology:
        # The due queue is reached by name, through the default exchange.
        due = consumer_queue(DUE, DUE)
        return cls(wait=delay_queue(WAIT, interval, due=due), due=due)

    @property
    def consumed(self) -> tuple[str]:
        """The consumer queues' base names: each has its `<name>.dlq`."""
        return (DUE,)

    async def declare(self, broker: RabbitBroker) -> None:
        """The wait queue, after the due queue it dead-letters into (its bindings are
        `wait_queues.bind_newest`'s)."""
        await broker.declare_queue(self.due)
        await broker.declare_queue(self.wait)
