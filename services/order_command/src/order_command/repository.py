"""Orders in and out of Postgres, and their events into the event log, on the caller's
connection (inside its transaction)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from order_command.domain import Order
from order_command.models import event_log, orders
from shared.event_log import append_events, log_row
from shared.events import Envelope, OrderItem, OrderStatus


def _row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "user_id": order.user_id,
        "items": [item.model_dump(mode="json") for item in order.items],
        "total_price": order.total_price,
        "currency": order.currency,
        "status": order.status.value,
        "version": order.version,
        "is_deleted": order.is_deleted,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _order(row: Any) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        items=tuple(OrderItem.model_validate(item) for item in row.items),
        total_price=row.total_price,
        currency=row.currency,
        status=OrderStatus(row.status),
        version=row.version,
        is_deleted=row.is_deleted,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get(conn: AsyncConnection, order_id: uuid.UUID, *, lock: bool = False) -> Order | None:
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _order(row) if row else None


async def page(conn: AsyncConnection, after: uuid.UUID | None, limit: int) -> list[Order]:
    """Every order (deleted ones too) in id order, after `after`: keyset pagination."""
    query = select(orders).order_by(orders.c.id).limit(limit)
    if after is not None:
        query = query.where(orders.c.id > after)
    return [_order(row) for row in (await conn.execute(query)).all()]


def _insert_with_event() -> Insert:
    """A new order and its event in one statement: `WITH new_order AS (INSERT INTO orders
    ...) INSERT INTO event_log ...`. One statement is atomic by itself, so a create needs no
    BEGIN and COMMIT around it: one round trip to Postgres instead of four."""
    new_order = (
        insert(orders)
        .values({c.name: bindparam(f"order_{c.name}", type_=c.type) for c in orders.c})
        .cte("new_order")
    )
    event = {c: bindparam(f"event_{c}", type_=event_log.c[c].type) for c in _EVENT_COLUMNS}
    return insert(event_log).values(event).add_cte(new_order)


# The statements are built once and their values passed apart: a statement built anew for
# each write costs more CPU (its bind parameters and cache key) than running it does.
_EVENT_COLUMNS = (
    "event_id",
    "aggregate_id",
    "version",
    "type",
    "schema_version",
    "payload",
    "actor",
    "trace",
    "occurred_at",
)
_INSERT_WITH_EVENT = _insert_with_event()
_UPDATE = update(orders).where(orders.c.id == bindparam("order_id"))


async def add(conn: AsyncConnection, order: Order) -> None:
    """Write a new order and its `order.created` in one statement (see _insert_with_event)."""
    [created] = order.events
    envelope = Envelope.wrap(
        created, aggregate_id=order.id, version=order.version, occurred_at=order.updated_at
    )
    values = {f"order_{name}": value for name, value in _row(order).items()}
    values.update({f"event_{name}": value for name, value in log_row(envelope).items()})
    await conn.execute(_INSERT_WITH_EVENT, values)


async def save(conn: AsyncConnection, order: Order, *, was: int) -> None:
    """Write a changed order (locked by `get(lock=True)`) and its events."""
    values = _row(order)
    del values["id"], values["user_id"], values["created_at"]
    await conn.execute(_UPDATE, {"order_id": order.id, **values})
    await _publish(conn, order, first_version=was + 1)


async def _publish(conn: AsyncConnection, order: Order, *, first_version: int) -> None:
    envelopes = [
        Envelope.wrap(
            event,
            aggregate_id=order.id,
            version=first_version + offset,
            occurred_at=order.updated_at,
        )
        for offset, event in enumerate(order.events)
    ]
    await append_events(conn, event_log, envelopes)
