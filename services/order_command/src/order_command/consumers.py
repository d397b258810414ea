"""order_command's consumer: the status worker's `order.advance_status` commands."""

from __future__ import annotations

import logging
from collections.abc import Callable

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitMessage

from order_command.service import OrderService
from shared.events import AdvanceStatus, AdvanceStatusResult, Envelope
from shared.faults import wait_out_faults
from shared.topology import ORDERS_COMMANDS, consumer_queue

log = logging.getLogger(__name__)

QUEUE_NAME = "order_command.advance_status"
ADVANCE_QUEUE = consumer_queue(QUEUE_NAME, AdvanceStatus.ROUTING_KEY)
REPLY_TIMEOUT = 10.0  # seconds for the broker to take the answer


def subscribe(broker: RabbitBroker, orders: Callable[[], OrderService]) -> list[str]:
    """`orders` gives the service layer once the app's lifespan has built it. Returns the
    queues consumed."""

    @broker.subscriber(
        ADVANCE_QUEUE,
        ORDERS_COMMANDS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        no_reply=True,  # the handler answers itself (below), FastStream must not answer too
        title="order.advance_status",
        description="Advance an order one step, if it is still in `expected_status`. A command "
        "with `reply_to` gets an AdvanceStatusResult there (the worker counts stale timers).",
    )
    @wait_out_faults
    async def advance_status(command: Envelope[AdvanceStatus], message: RabbitMessage) -> None:
        # Applied only if the order is still where the timer expected it: a redelivery, or a
        # timer overtaken by a manual change, finds it moved on and does nothing.
        order_id, expected = command.payload.order_id, command.payload.expected_status
        changed = await orders().advance(order_id, expected)
        if changed is None:
            log.info("stale advance_status for %s ignored", order_id)
        if not message.reply_to:
            return
        # Answered from inside the handler, not by returning the answer: FastStream publishes
        # a returned answer after the message's trace context is gone, and with spans not
        # recorded that starts a new trace, so the worker's line about it named no request.
        # Not mandatory: with no queue there, the answer is dropped, the command acked.
        result = AdvanceStatusResult(
            order_id=order_id, expected_status=expected, applied=changed is not None
        )
        await broker.publish(
            result,
            message.reply_to,
            correlation_id=message.correlation_id,
            mandatory=False,
            timeout=REPLY_TIMEOUT,
        )

    return [QUEUE_NAME]
