"""Idempotency-Key on POST /orders: a retry replays the first answer and creates nothing more."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.order_command.conftest import order_body
from tests.support.rabbit import Captured, capture
from tests.support.servers import Servers
from tests.support.tokens import Caller


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


async def post_with_key(
    client: httpx.AsyncClient, by: Caller, key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        "/orders", json=body or order_body(), headers={**by.headers, "Idempotency-Key": key}
    )


async def orders_of(orders_db: asyncpg.Connection, user: Caller) -> int:
    count: int = await orders_db.fetchval("select count(*) from orders where user_id = $1", user.id)
    return count


async def created_events_after_a_marker(
    client: httpx.AsyncClient, captured: Captured, order_id: str
) -> int:
    """How many order.created events arrived for `order_id`, counted once a later order's
    event has arrived (the relay publishes in the order the rows were written)."""
    marker = await client.post("/orders", json=order_body(), headers=Caller().headers)
    assert marker.status_code == 201
    await captured.wait_for(lambda e: e["aggregate_id"] == marker.json()["id"])
    return sum(
        1
        for e in captured.bodies()
        if e["aggregate_id"] == order_id and e["type"] == "order.created"
    )


async def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    key = new_key()
    first = await post_with_key(client, alice, key)
    again = await post_with_key(client, alice, key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["location"] == first.headers["location"]


async def test_a_replayed_create_stores_one_order_and_publishes_one_event(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection, servers: Servers
) -> None:
    key = new_key()
    async with capture(servers.rabbitmq, "orders.events", "order.created") as captured:
        first = await post_with_key(client, alice, key)
        for _ in range(3):
            assert (await post_with_key(client, alice, key)).status_code == 201
        events = await created_events_after_a_marker(client, captured, first.json()["id"])
    assert events == 1
    assert await orders_of(orders_db, alice) == 1


async def test_the_same_body_spelled_differently_is_the_same_request(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    key = new_key()
    first = await post_with_key(
        client, alice, key, {"items": [{"name": "tea", "price": "2.50", "quantity": 2}]}
    )
    again = await post_with_key(
        client, alice, key, {"items": [{"quantity": 2, "price": "2.50", "name": "tea"}]}
    )
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


async def test_a_reused_key_with_another_body_is_422(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection
) -> None:
    key = new_key()
    assert (await post_with_key(client, alice, key)).status_code == 201
    other = order_body(items=[{"name": "coffee", "price": "4.20", "quantity": 1}])
    response = await post_with_key(client, alice, key, other)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"idempotency_key": key}
    assert await orders_of(orders_db, alice) == 1


async def test_keys_are_per_user_so_two_users_with_one_key_get_two_orders(
    client: httpx.AsyncClient, alice: Caller, bob: Caller
) -> None:
    key = new_key()
    hers = await post_with_key(client, alice, key)
    his = await post_with_key(client, bob, key)
    assert (hers.status_code, his.status_code) == (201, 201)
    assert hers.json()["id"] != his.json()["id"]
    assert his.json()["user_id"] == str(bob.id)
    assert "idempotent-replayed" not in his.headers


async def test_an_expired_key_creates_a_new_order(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection
) -> None:
    key = new_key()
    first = await post_with_key(client, alice, key)
    await orders_db.execute(
        "update idempotency_keys set expires_at = now() - interval '1 second'"
        " where user_id = $1 and key = $2",
        alice.id,
        key,
    )
    again = await post_with_key(client, alice, key)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in again.headers
    assert await orders_of(orders_db, alice) == 2
    # and the key is fresh again: a retry now replays the new order
    third = await post_with_key(client, alice, key)
    assert third.json()["id"] == again.json()["id"]


async def test_an_expired_key_may_be_used_with_another_body(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection
) -> None:
    key = new_key()
    await post_with_key(client, alice, key)
    await orders_db.execute(
        "update idempotency_keys set expires_at = now() - interval '1 second'"
        " where user_id = $1 and key = $2",
        alice.id,
        key,
    )
    other = order_body(items=[{"name": "coffee", "price": "4.20", "quantity": 1}])
    response = await post_with_key(client, alice, key, other)
    assert response.status_code == 201
    assert response.json()["total_price"] == "4.20"


async def test_20_concurrent_requests_with_one_key_create_one_order_and_one_event(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection, servers: Servers
) -> None:
    key = new_key()
    async with capture(servers.rabbitmq, "orders.events", "order.created") as captured:
        answers = await asyncio.gather(*(post_with_key(client, alice, key) for _ in range(20)))
        assert [a.status_code for a in answers] == [201] * 20
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 1
        (order_id,) = ids
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 19
        events = await created_events_after_a_marker(client, captured, order_id)
    assert events == 1
    assert await orders_of(orders_db, alice) == 1
    rows = await orders_db.fetchval(
        "select count(*) from event_log where aggregate_id = $1", uuid.UUID(order_id)
    )
    assert rows == 1


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 256, id="256 chars"),
        pytest.param("k" * 300, id="300 chars"),
        pytest.param("has a space", id="a space"),
        pytest.param("tab\there", id="a tab"),
        pytest.param("", id="empty"),
    ],
)
async def test_an_invalid_key_is_422_and_stores_nothing(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection, key: str
) -> None:
    response = await post_with_key(client, alice, key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await orders_of(orders_db, alice) == 0
    stored = await orders_db.fetchval(
        "select count(*) from idempotency_keys where user_id = $1", alice.id
    )
    assert stored == 0


async def test_a_key_of_255_visible_characters_is_accepted(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    key = ("!~" + uuid.uuid4().hex) * 8
    key = key[:255]
    first = await post_with_key(client, alice, key)
    again = await post_with_key(client, alice, key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]


async def test_a_refused_create_does_not_use_up_its_key(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    key = new_key()
    refused = await post_with_key(client, alice, key, order_body(total_price="1.00"))
    assert refused.status_code == 422
    response = await post_with_key(client, alice, key)
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
