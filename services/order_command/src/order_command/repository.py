"""Orders in and out of Postgres, and their events into the event log, on a unit of work's
connection (inside its transaction)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from order_command.domain import Order
from order_command.models import event_log, orders
from shared.event_log import append_events, log_row
from shared.events import Envelope, OrderCreated, OrderItem, OrderStatus


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


def _insert_with_event() -> Insert:
    """A new order and its event in one statement: `WITH new_order AS (INSERT INTO orders
    ...) INSERT INTO event_log ...`: one round trip for both rows."""
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


class PostgresOrders:
    """The orders of one unit of work: every call runs on its connection, in its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, order_id: uuid.UUID, *, lock: bool = False) -> Order | None:
        query = select(orders).where(orders.c.id == order_id)
        if lock:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _order(row) if row else None

    async def as_created(self, order_id: uuid.UUID) -> Order:
        """The order as it was created, from its first event in the log (upcast to the
        current schema): what a replayed create answers, whatever happened since."""
        row = (
            await self.conn.execute(
                select(event_log).where(
                    event_log.c.aggregate_id == order_id, event_log.c.version == 1
                )
            )
        ).one()
        envelope = Envelope[OrderCreated].model_validate(
            {
                "event_id": row.event_id,
                "type": row.type,
                "schema_version": row.schema_version,
                "occurred_at": row.occurred_at,
                "aggregate_id": row.aggregate_id,
                "version": row.version,
                "payload": row.payload,
            }
        )
        return Order.of_created(envelope.payload)

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]:
        """Every order (deleted ones too) in id order, after `after`: keyset pagination."""
        query = select(orders).order_by(orders.c.id).limit(limit)
        if after is not None:
            query = query.where(orders.c.id > after)
        return [_order(row) for row in (await self.conn.execute(query)).all()]

    async def add(self, order: Order) -> None:
        """Write a new order and its `order.created` in one statement (_insert_with_event)."""
        [created] = order.events
        envelope = Envelope.wrap(
            created, aggregate_id=order.id, version=order.version, occurred_at=order.updated_at
        )
        values = {f"order_{name}": value for name, value in _row(order).items()}
        values.update({f"event_{name}": value for name, value in log_row(envelope).items()})
        await self.conn.execute(_INSERT_WITH_EVENT, values)

    async def save(self, order: Order, *, was: int) -> None:
        """Write a changed order (locked by `get(lock=True)`) and its events, last."""
        values = _row(order)
        del values["id"], values["user_id"], values["created_at"]
        await self.conn.execute(_UPDATE, {"order_id": order.id, **values})
        envelopes = [
            Envelope.wrap(
                event,
                aggregate_id=order.id,
                version=was + 1 + offset,
                occurred_at=order.updated_at,
            )
            for offset, event in enumerate(order.events)
        ]
        await append_events(self.conn, event_log, envelopes)
