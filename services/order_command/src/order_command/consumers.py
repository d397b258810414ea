"""order_command's consumer: the status worker's `order.advance_status` commands."""

from __future__ import annotations

import logging
from collections.abc import Callable

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from order_command.metrics import AdvanceMetrics
from order_command.service import OrderService
from shared.events import AdvanceStatus, Envelope
from shared.faults import wait_out_faults
from shared.topology import ORDERS_COMMANDS, consumer_queue

log = logging.getLogger(__name__)

QUEUE_NAME = "order_command.advance_status"
ADVANCE_QUEUE = consumer_queue(QUEUE_NAME, AdvanceStatus.ROUTING_KEY)


def subscribe(
    broker: RabbitBroker, orders: Callable[[], OrderService], metrics: AdvanceMetrics
) -> list[str]:
    """`orders` gives the service layer once the app's lifespan has built it. Returns the
    queues consumed."""

    @broker.subscriber(
        ADVANCE_QUEUE,
        ORDERS_COMMANDS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        no_reply=True,  # no answer, even to an older worker's `reply_to`
        title="order.advance_status",
        description="Advance an order one step, if it is still in `expected_status` "
        "(counted as applied or stale: advance_status_commands_total).",
    )
    @wait_out_faults
    async def advance_status(command: Envelope[AdvanceStatus]) -> None:
        # Applied only if the order is still where the timer expected it: a redelivery, or a
        # timer overtaken by a manual change, finds it moved on and does nothing.
        order_id, expected = command.payload.order_id, command.payload.expected_status
        if await orders().advance(order_id, expected) is None:
            metrics.stale.inc()
            log.info(
                "timer for order %s found stale (expected %s)",
                order_id,
                expected.value,
                extra={"event": "timer.stale", "order_id": str(order_id)},
            )
        else:
            metrics.applied.inc()

    return [QUEUE_NAME]
