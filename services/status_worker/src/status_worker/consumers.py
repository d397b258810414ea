"""status_worker's consumers: an order event sets a timer; a due timer becomes the command;
order_command's answers are counted. Each acks its message only after what it published
was confirmed, so a crash anywhere sends a timer twice at worst, never loses one (the
second finds the order moved on and does nothing)."""

from __future__ import annotations

import logging

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from shared.confirms import require_confirm
from shared.events import AdvanceStatus, AdvanceStatusResult, Envelope
from shared.faults import wait_out_faults
from shared.topology import ORDERS_COMMANDS, ORDERS_EVENTS
from status_worker.metrics import TimerMetrics
from status_worker.timers import OrderEvent, timer_for
from status_worker.topology import TimerTopology

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0  # seconds for the broker's confirm; then the handler tries again


def subscribe(broker: RabbitBroker, topology: TimerTopology, metrics: TimerMetrics) -> list[str]:
    """Returns the queues consumed."""
    # FastStream applies a publisher's `timeout` and `reply_to` only to what a handler
    # returns, not to `publish()`: each call below passes them itself.
    set_timer = broker.publisher(
        topology.wait,
        persist=True,
        title=topology.wait.name,
        description="A timer: it waits out the interval here, then is dead-lettered into "
        f"{topology.due.name}.",
        schema=Envelope[AdvanceStatus],
    )
    send_command = broker.publisher(
        AdvanceStatus.ROUTING_KEY,
        ORDERS_COMMANDS,
        persist=True,
        title=AdvanceStatus.ROUTING_KEY,
        description="A due timer, sent on: advance the order if it is still in `expected_status`. "
        f"order_command answers to {topology.results.name}.",
        schema=Envelope[AdvanceStatus],
    )

    @broker.subscriber(
        topology.events,
        ORDERS_EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="order.created, order.status_changed",
        description="Each sets one timer for the order's next step, unless it is final.",
    )
    @wait_out_faults
    async def on_order_event(event: OrderEvent) -> None:
        timer = timer_for(event)
        if timer is None:
            return
        confirmation = await set_timer.publish(
            timer, message_id=str(timer.event_id), timeout=PUBLISH_TIMEOUT
        )
        require_confirm(confirmation, f"timer for order {event.aggregate_id}")
        metrics.scheduled.inc()
        log.info(
            "timer set: order %s moves on from %s after the interval",
            event.aggregate_id,
            timer.payload.expected_status.value,
            extra={"event": "timer.set", "order_id": str(event.aggregate_id)},
        )

    @broker.subscriber(
        topology.due,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=topology.due.name,
        description="Timers that have waited their interval, sent on as order.advance_status.",
    )
    @wait_out_faults
    async def on_timer_due(timer: Envelope[AdvanceStatus]) -> None:
        confirmation = await send_command.publish(
            timer,
            message_id=str(timer.event_id),
            reply_to=topology.results.name,
            timeout=PUBLISH_TIMEOUT,
        )
        require_confirm(confirmation, f"order.advance_status for order {timer.aggregate_id}")
        metrics.fired.inc()
        log.info(
            "timer due: asked order_command to move order %s on from %s",
            timer.aggregate_id,
            timer.payload.expected_status.value,
            extra={"event": "timer.fired", "order_id": str(timer.aggregate_id)},
        )

    @broker.subscriber(
        topology.results,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=topology.results.name,
        description="order_command's answers to the commands: applied, or found stale.",
    )
    async def on_result(result: AdvanceStatusResult) -> None:
        metrics.count(result)
        if not result.applied:
            log.info(
                "timer for order %s found stale (expected %s)",
                result.order_id,
                result.expected_status.value,
            )

    return list(topology.consumed)
