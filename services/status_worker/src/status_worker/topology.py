"""The worker's queues. All are durable quorum queues; the three it consumes have a delivery
limit and a dead-letter queue (`shared.topology.consumer_queue`), and none holds a timer
for longer than it takes to pass it on:

    orders.events --order.created, order.status_changed--> status_worker.order_events.dl5
    timer --> status_worker.wait.<ms>ms --expires, dead-lettered--> status_worker.due.dl5
    order_command's reply to a command --> status_worker.advance_results.dl5

The wait queue has no consumer. Its message TTL is the interval and part of its name: a
quorum queue's arguments cannot change once declared, so a new interval is a new wait queue,
and timers already in the old one still come due into the same due queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import RabbitBroker, RabbitQueue

from shared.events import OrderCreated, OrderStatusChanged
from shared.topology import ORDERS_EVENTS, consumer_queue, delay_queue

EVENTS = "status_worker.order_events"
WAIT = "status_worker.wait"
DUE = "status_worker.due"
RESULTS = "status_worker.advance_results"


@dataclass(frozen=True)
class TimerTopology:
    events: RabbitQueue
    wait: RabbitQueue
    due: RabbitQueue
    results: RabbitQueue

    @classmethod
    def for_interval(cls, interval: float) -> TimerTopology:
        # The due and results queues are reached by name, through the default exchange.
        due = consumer_queue(DUE, DUE)
        return cls(
            events=consumer_queue(EVENTS, OrderCreated.ROUTING_KEY),
            wait=delay_queue(WAIT, interval, due=due),
            due=due,
            results=consumer_queue(RESULTS, RESULTS),
        )

    @property
    def consumed(self) -> tuple[str, str, str]:
        """The consumer queues' base names: each has its `<name>.dlq`."""
        return (EVENTS, DUE, RESULTS)

    async def declare(self, broker: RabbitBroker) -> None:
        """What the subscribers do not declare: the events queue's second binding, and the
        wait queue, after the due queue it dead-letters into."""
        events = await broker.declare_queue(self.events)
        await events.bind(ORDERS_EVENTS.name, routing_key=OrderStatusChanged.ROUTING_KEY)
        await broker.declare_queue(self.due)
        await broker.declare_queue(self.wait)
