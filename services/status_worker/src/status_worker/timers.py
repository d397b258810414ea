"""The worker's one rule, with no I/O: which command a due message sends.

What comes due is the order event itself, held back one interval by the wait queue. Its timer
is the `order.advance_status` command: move the order on from the status the event left it
in. A final status sets none, so the chain ends at CANCELED. Whether the command still
applies when it is sent is order_command's to decide.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Discriminator, Tag

from shared.events import (
    AdvanceStatus,
    Envelope,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
    message_type,
)

OrderEvent = Envelope[OrderCreated] | Envelope[OrderStatusChanged]
# A timer the worker set before its wait queue was bound to orders.events (decision 107) is
# the command itself; one still waiting at the upgrade comes due as it is. Told apart by
# `type`: parsing tries one model, not each in turn (decision 114).
Due = Annotated[
    Annotated[Envelope[OrderCreated], Tag(OrderCreated.ROUTING_KEY)]
    | Annotated[Envelope[OrderStatusChanged], Tag(OrderStatusChanged.ROUTING_KEY)]
    | Annotated[Envelope[AdvanceStatus], Tag(AdvanceStatus.ROUTING_KEY)],
    Discriminator(message_type),
]
Timer = Envelope[AdvanceStatus]

# Timer ids derive from the id of the event that set them: a redelivered event sets a timer
# with the same id, so a duplicate is recognisable all the way to order_command's logs.
TIMER_IDS = uuid.UUID("5b0e7d1c-2f0a-4a51-9d83-6f2d9c1e7a40")


def status_after(event: OrderEvent) -> OrderStatus:
    payload = event.payload
    return payload.status if isinstance(payload, OrderCreated) else payload.to_status


def timer_for(event: OrderEvent) -> Timer | None:
    """The timer `event` sets, or None when the order is in a final status."""
    status = status_after(event)
    if status.is_final:
        return None
    return Envelope.wrap(
        AdvanceStatus(order_id=event.aggregate_id, expected_status=status),
        aggregate_id=event.aggregate_id,
        version=event.version,
        event_id=uuid.uuid5(TIMER_IDS, str(event.event_id)),
    )


def command_for(due: Due) -> Timer | None:
    """The command a due message sends: its event's timer, or a timer set before the upgrade."""
    if isinstance(due.payload, AdvanceStatus):
        return due
    return timer_for(due)
