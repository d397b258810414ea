"""An event written before its schema changed (an `order.created` of schema 1, from before
orders recorded their currency) is read, projected, replayed and shown as schema 2."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from order_query.command_side import EventPage, InternalApi
from order_query.rebuild import rebuild
from shared.db import asyncpg_dsn
from shared.upcasting import CURRENCY_BEFORE_SCHEMA_2
from tests.integration.order_query.conftest import (
    ADMIN,
    Link,
    StartQuery,
    held,
    lose_projection,
    until_projected,
)

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


async def _store_an_old_order(orders_db_url: str) -> str:
    """An order and its schema-1 `order.created`, as they were written before the change."""
    order_id, user_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    payload = {
        "id": str(order_id),
        "user_id": str(user_id),
        "items": ITEMS,
        "total_price": "5.00",
        "status": "PENDING",
        "version": 1,
        "is_deleted": False,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    db = await asyncpg.connect(asyncpg_dsn(orders_db_url))
    try:
        async with db.transaction():
            await db.execute(
                "insert into orders (id, user_id, items, total_price, currency, status, version,"
                " is_deleted, created_at, updated_at) values"
                " ($1, $2, $3::jsonb, 5.00, $4, 'PENDING', 1, false, $5, $5)",
                order_id,
                user_id,
                json.dumps(ITEMS),
                CURRENCY_BEFORE_SCHEMA_2,
                now,
            )
            await db.execute(
                "insert into event_log (event_id, aggregate_id, version, type, schema_version,"
                " payload, actor, occurred_at) values"
                " ($1, $2, 1, 'order.created', 1, $3::jsonb, $4, $5)",
                uuid.uuid4(),
                order_id,
                json.dumps(payload),
                user_id,
                now,
            )
    finally:
        await db.close()
    return str(order_id)


async def test_a_schema_1_order_created_is_projected_replayed_and_shown_with_its_currency(
    start_query: StartQuery,
    link: Link,
    command: httpx.AsyncClient,
    users_log: InternalApi,
    redis: Redis,
    orders_db_url: str,
) -> None:
    async with start_query(link=link) as query:
        order_id = await _store_an_old_order(orders_db_url)
        expected = await held(command, order_id)
        assert expected["currency"] == CURRENCY_BEFORE_SCHEMA_2

        # The log gives it as it was written; order_command's relay publishes it so.
        async for page in link.command_side.event_pages(EventPage[dict[str, Any]], limit=5000):
            for event in page.events:
                if event["aggregate_id"] == order_id:
                    assert event["schema_version"] == 1
                    assert "currency" not in event["payload"]

        await until_projected(redis, expected)  # from the broker, by the live consumer
        history = (await query.get(f"/orders/{order_id}/history", ADMIN)).json()
        assert [entry["type"] for entry in history] == ["order.created"]

        await lose_projection(redis)
        await rebuild(redis, orders=link.command_side, users=users_log, report=lambda _: None)
        await until_projected(redis, expected, timeout=1)  # from the log, by the rebuild
        assert (await query.get(f"/orders/{order_id}/history", ADMIN)).json() == history
