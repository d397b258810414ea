"""What the worker consumes and sends, as FastStream declarations for its AsyncAPI document
only: the broker here never connects. The forwarder that does the work speaks aio-pika itself
(`forwarder.py`, decision 116)."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from shared.events import AdvanceStatus, Envelope
from shared.topology import ORDERS_COMMANDS
from status_worker.timers import Due
from status_worker.topology import STEP_EVENTS, TimerTopology


def described(topology: TimerTopology) -> RabbitBroker:
    broker = RabbitBroker()
    broker.publisher(
        AdvanceStatus.ROUTING_KEY,
        ORDERS_COMMANDS,
        persist=True,
        title=AdvanceStatus.ROUTING_KEY,
        description="A due timer, sent on: advance the order if it is still in "
        "`expected_status` (order_command counts whether it applied).",
        schema=Envelope[AdvanceStatus],
    )

    @broker.subscriber(
        topology.due,
        title=topology.due.name,
        description=f"{', '.join(STEP_EVENTS)} events that have waited the interval in "
        f"{topology.wait.name} (bound to orders.events; no consumer), dead-lettered here: each "
        "is sent on as order.advance_status from the status it left the order in, unless "
        "that status is final.",
    )
    async def on_timer_due(due: Due) -> None:
        """Documented here; `forwarder.DueForwarder` consumes the queue."""

    return broker
