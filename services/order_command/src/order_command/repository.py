"""Orders in and out of Postgres, and their events into the event log (and a create's
idempotency key), on a unit of work's connection."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Insert, Interval, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from order_command.domain import Order
from order_command.idempotency import IdempotentRequest, KeyReused
from order_command.models import event_log, orders
from order_command.models import idempotency_keys as keys
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


def _insert_with_event(*, claiming: bool) -> Insert:
    """A new order and its event in one statement: `WITH new_order AS (INSERT INTO orders
    ...) INSERT INTO event_log ...`: atomic by itself, so it needs no BEGIN and COMMIT
    around it, one round trip to Postgres instead of four (decision 48).

    `claiming`: the statement first claims the request's idempotency key (new, or expired
    and taken again), remembering the order in it, and writes the order and its event only
    if that claim was made; otherwise it writes nothing (a statement of zero rows)."""
    order = {c.name: bindparam(f"order_{c.name}", type_=c.type) for c in orders.c}
    event = {c: bindparam(f"event_{c}", type_=event_log.c[c].type) for c in _EVENT_COLUMNS}
    if not claiming:
        new_order = insert(orders).values(order).cte("new_order")
        return insert(event_log).values(event).add_cte(new_order)
    key = {
        "user_id": bindparam("key_user_id", type_=keys.c.user_id.type),
        "key": bindparam("key_key", type_=keys.c.key.type),
        "request_hash": bindparam("key_hash", type_=keys.c.request_hash.type),
        "order_id": order["id"],
        "expires_at": func.now() + bindparam("key_ttl", type_=Interval()),
    }
    claim = pg_insert(keys).values(key)
    claimed = (
        claim.on_conflict_do_update(
            index_elements=[keys.c.user_id, keys.c.key],
            set_={
                name: claim.excluded[name] for name in ("request_hash", "order_id", "expires_at")
            },
            where=keys.c.expires_at < func.now(),  # an expired key is free again
        )
        .returning(keys.c.key)
        .cte("claimed")
    )
    made = exists(select(claimed.c.key))
    new_order = (
        insert(orders)
        .from_select(list(order), select(*order.values()).where(made))
        .cte("new_order")
    )
    return (
        insert(event_log)
        .from_select(list(event), select(*event.values()).where(made))
        .add_cte(claimed)
        .add_cte(new_order)
    )


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
_INSERT_WITH_EVENT = _insert_with_event(claiming=False)
_CLAIM_AND_INSERT_WITH_EVENT = _insert_with_event(claiming=True)
_FIRST_USE = select(keys.c.request_hash, keys.c.order_id).where(
    keys.c.user_id == bindparam("user_id"), keys.c.key == bindparam("key")
)
_UPDATE = update(orders).where(orders.c.id == bindparam("order_id"))


class PostgresOrders:
    """The orders of one unit of work: every call runs on its connection, in its transaction
    (or, in a unit of work of one statement, as that statement)."""

    def __init__(self, conn: AsyncConnection, key_ttl: timedelta) -> None:
        self.conn = conn
        self.key_ttl = key_ttl

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

    async def add(self, order: Order, key: IdempotentRequest | None = None) -> uuid.UUID | None:
        """Write a new order and its `order.created` in one statement (_insert_with_event).
        With `key`: None if this request claimed it (and so wrote the order); else the order
        its first request created, and nothing is written. KeyReused if the first request
        had another body."""
        [created] = order.events
        envelope = Envelope.wrap(
            created, aggregate_id=order.id, version=order.version, occurred_at=order.updated_at
        )
        values = {f"order_{name}": value for name, value in _row(order).items()}
        values.update({f"event_{name}": value for name, value in log_row(envelope).items()})
        if key is None:
            await self.conn.execute(_INSERT_WITH_EVENT, values)
            return None
        values |= {"key_user_id": key.user_id, "key_key": key.key, "key_hash": key.digest}
        written = await self.conn.execute(
            _CLAIM_AND_INSERT_WITH_EVENT, values | {"key_ttl": self.key_ttl}
        )
        if written.rowcount == 1:
            return None
        first = (
            await self.conn.execute(_FIRST_USE, {"user_id": key.user_id, "key": key.key})
        ).one()
        if first.request_hash != key.digest:
            raise KeyReused(key)
        order_id: uuid.UUID = first.order_id
        return order_id

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
