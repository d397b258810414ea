"""How one event changes the projected order, and what it adds to the history. Pure code, on
typed events and orders: JSON is read and written only where Redis and the wire are.

The projected order is the API's own `OrderOut` (DESIGN.md's order shape), stored as its JSON,
so a read is one Redis GET handed back as it is.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.events import (
    Money,
    OrderCreated,
    OrderDeleted,
    OrderEvent,
    OrderItem,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
)
from shared.schemas import OrderOut

ORDER_FIELDS = tuple(OrderOut.model_fields)


class Verdict(Enum):
    APPLY = "apply"  # the next version: apply it
    OLD = "old"  # this version or an older one is in already: ignore it
    GAP = "gap"  # versions are missing before it: repair from the command side first


def judge(current_version: int, event_version: int) -> Verdict:
    if event_version <= current_version:
        return Verdict.OLD
    if event_version == current_version + 1:
        return Verdict.APPLY
    return Verdict.GAP


def fold(order: OrderOut | None, event: OrderEvent) -> OrderOut:
    """The order after `event`, which `judge` said is the next version."""
    payload = event.payload
    if isinstance(payload, OrderCreated):
        # Its fields are the order's, validated already and of the same types.
        return OrderOut.model_construct(**{name: getattr(payload, name) for name in ORDER_FIELDS})
    if order is None:
        raise ValueError(f"{event.type} v{event.version} needs the order it changes")
    changed: dict[str, Any] = {"version": event.version, "updated_at": event.occurred_at}
    if isinstance(payload, OrderStatusChanged):
        changed["status"] = payload.to_status
    elif isinstance(payload, OrderUpdated):
        changed["items"] = payload.items
        changed["total_price"] = payload.total_price
    else:
        changed["is_deleted"] = True
    return order.model_copy(update=changed)


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["user", "system"]  # system: the status worker's timer
    id: uuid.UUID | None


# What each kind of history entry says beyond who and when (extra="forbid": a stored entry's
# details are read back as the one kind whose fields they are).
class Details(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Created(Details):
    status: OrderStatus
    total_price: Money
    items: tuple[OrderItem, ...]


class StatusChanged(Details):
    from_status: OrderStatus
    to_status: OrderStatus


class Updated(Details):
    total_price: Money
    items: tuple[OrderItem, ...]


class Snapshot(Details):
    status: OrderStatus
    total_price: Money
    is_deleted: bool


class Entry(BaseModel):
    """One version in an order's history, as the projection stores it."""

    model_config = ConfigDict(frozen=True)

    version: int
    type: str
    occurred_at: datetime
    event_id: uuid.UUID | None  # None: a snapshot's
    actor: Actor | None  # None: unknown (a snapshot, or an update from before updated_by)
    details: Created | StatusChanged | Updated | Snapshot | Details  # Details: a deletion's


SYSTEM = Actor(kind="system", id=None)


def history_entry(event: OrderEvent) -> Entry:
    """Who did what, when. The actor is a user, the status worker's timer (a status change
    by nobody), or unknown (None: an update from before events named who made it)."""
    payload = event.payload
    details: Details
    if isinstance(payload, OrderCreated):
        details = Created(
            status=payload.status, total_price=payload.total_price, items=payload.items
        )
    elif isinstance(payload, OrderStatusChanged):
        details = StatusChanged(from_status=payload.from_status, to_status=payload.to_status)
    elif isinstance(payload, OrderUpdated):
        details = Updated(total_price=payload.total_price, items=payload.items)
    else:
        assert isinstance(payload, OrderDeleted)
        details = Details()
    who = payload.actor_id
    if who is None:
        actor = SYSTEM if isinstance(payload, OrderStatusChanged) else None
    else:
        actor = Actor(kind="user", id=who)
    return Entry(
        version=event.version,
        type=event.type,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        actor=actor,
        details=details,
    )


def snapshot_entry(order: OrderOut) -> Entry:
    """A history entry for a version whose event has not arrived: the state the command side
    held at that version, by an unknown actor (replaced by the event's entry if it comes)."""
    return Entry(
        version=order.version,
        type="order.snapshot",
        occurred_at=order.updated_at,
        event_id=None,
        actor=None,
        details=Snapshot(
            status=order.status, total_price=order.total_price, is_deleted=order.is_deleted
        ),
    )
