"""status_worker's consumer: an order event that has waited its interval in the wait queue
becomes the command to move its order on. It acks the event only after the broker confirmed
the command, so a crash anywhere sends a timer twice at worst, never loses one (the second
finds the order moved on and does nothing)."""

from __future__ import annotations

import logging

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from shared.confirms import require_confirm
from shared.events import AdvanceStatus, Envelope
from shared.faults import wait_out_faults
from shared.topology import ORDERS_COMMANDS
from status_worker.metrics import TimerMetrics
from status_worker.timers import Due, command_for
from status_worker.topology import STEP_EVENTS, TimerTopology

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0  # seconds for the broker's confirm; then the handler tries again


def subscribe(broker: RabbitBroker, topology: TimerTopology, metrics: TimerMetrics) -> list[str]:
    """Returns the queues consumed."""
    # FastStream applies a publisher's `timeout` only to what a handler returns, not to
    # `publish()`: the call below passes it itself.
    send_command = broker.publisher(
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
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=topology.due.name,
        description=f"{', '.join(STEP_EVENTS)} events that have waited the interval in "
        f"{topology.wait.name} (bound to orders.events; no consumer), dead-lettered here: each "
        "is sent on as order.advance_status from the status it left the order in, unless "
        "that status is final.",
    )
    @wait_out_faults
    async def on_timer_due(due: Due) -> None:
        timer = command_for(due)
        if timer is None:
            return
        confirmation = await send_command.publish(
            timer, message_id=str(timer.event_id), timeout=PUBLISH_TIMEOUT
        )
        require_confirm(confirmation, f"order.advance_status for order {timer.aggregate_id}")
        metrics.fired.inc()
        # DEBUG: order_command logs what each timer did (moved the order, or found it stale)
        # at INFO, and timers_fired_total counts them (decision 114).
        log.debug(
            "timer due: asked order_command to move order %s on from %s",
            timer.aggregate_id,
            timer.payload.expected_status.value,
            extra={"event": "timer.fired", "order_id": str(timer.aggregate_id)},
        )

    return list(topology.consumed)
