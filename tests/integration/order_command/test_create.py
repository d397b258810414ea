"""POST /orders (and its aliases): what is created, what is refused, and the event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from order_command import unit_of_work
from order_command.domain import Order
from order_command.idempotency import IdempotentRequest
from shared.db import create_engine
from shared.event_log import log_row
from shared.events import OrderItem
from tests.integration.order_command.conftest import order_body
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tokens import Caller


async def test_an_order_is_created_pending_with_the_computed_total(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await client.post("/orders", json=order_body(), headers=alice.headers)
    assert response.status_code == 201
    order = response.json()
    assert order["user_id"] == str(alice.id)
    assert order["status"] == "PENDING"
    assert order["version"] == 1
    assert order["total_price"] == "8.99"
    assert order["is_deleted"] is False
    assert order["items"][0] == {"name": "tea", "price": "2.50", "quantity": 2}
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/orders/{order['id']}"


async def test_creating_publishes_order_created_with_the_whole_order(
    client: httpx.AsyncClient, alice: Caller, servers: Servers
) -> None:
    async with capture(servers.rabbitmq, "orders.events", "order.created") as captured:
        order = (await client.post("/orders", json=order_body(), headers=alice.headers)).json()
        event = await captured.wait_for(lambda e: e["aggregate_id"] == order["id"])
    assert event["type"] == "order.created"
    assert event["version"] == 1
    assert event["payload"] == order


async def test_the_seed_aliases_create_too(client: httpx.AsyncClient, alice: Caller) -> None:
    legacy = await client.post(
        "/api/v1/orders/",
        json={"products": [{"name": "affe", "price": "42", "quantity": 1}], "status": "pending"},
        headers=alice.headers,
    )
    assert legacy.status_code == 201
    assert legacy.json()["order_id"] == legacy.json()["id"]
    assert [
        {k: v for k, v in product.items() if k != "product_id"}
        for product in legacy.json()["products"]
    ] == legacy.json()["items"]
    assert "user" in legacy.json()
    seed000 = await client.post(
        "/orders/create_new_order", json=order_body(total_price="8.99"), headers=alice.headers
    )
    assert seed000.status_code == 201


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (order_body(total_price="9.00"), "total_price does not match"),
        (order_body(status="PAID"), "a new order is PENDING"),
        (order_body(status="cancelled"), "a new order is PENDING"),
        (order_body(status="LOST"), "Input should be"),
        ({"items": []}, "at least 1 item"),
        ({"items": [{"name": "x", "price": "1.00", "quantity": 1}] * 101}, "at most 100 items"),
        ({"items": [{"name": "", "price": "1.00", "quantity": 1}]}, "at least 1 character"),
        ({"items": [{"name": "x" * 201, "price": "1.00", "quantity": 1}]}, "at most 200"),
        ({"items": [{"name": "x", "price": "0", "quantity": 1}]}, "greater than 0"),
        ({"items": [{"name": "x", "price": "1.001", "quantity": 1}]}, "2 decimal places"),
        ({"items": [{"name": "x", "price": "1.00", "quantity": 0}]}, "greater than or equal to 1"),
        ({"items": [{"name": "x", "price": "1.00", "quantity": "many"}]}, "valid integer"),
        ({"items": [{"name": "x", "price": "1.00"}]}, "Field required"),
        ({}, "Field required"),
        ({"items": "tea"}, "valid list"),
        (order_body(surprise=1), "Extra inputs"),
    ],
)
async def test_bad_orders_are_422_and_store_nothing(
    client: httpx.AsyncClient,
    alice: Caller,
    orders_db: asyncpg.Connection,
    body: dict[str, Any],
    says: str,
) -> None:
    before = await orders_db.fetchval("select count(*) from orders")
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert says in response.text
    assert await orders_db.fetchval("select count(*) from orders") == before


async def test_a_3_mb_body_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection
) -> None:
    """The service's own body limit (1 MiB), for a client that reaches its port directly."""
    before = await orders_db.fetchval("select count(*) from orders")
    huge = {"items": [{"name": "x" * 150, "price": "1.00", "quantity": 1}] * 15_000}
    response = await client.post("/orders", json=huge, headers=alice.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await orders_db.fetchval("select count(*) from orders") == before


async def test_a_chunked_body_past_the_limit_is_refused_too(
    client: httpx.AsyncClient, alice: Caller, orders_db: asyncpg.Connection
) -> None:
    """No Content-Length to refuse it by: the bytes are counted as they are read."""
    before = await orders_db.fetchval("select count(*) from orders")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"items": [' + b'{"name": "x", "price": "1.00", "quantity": 1},' * 30_000
        yield b'{"name": "x", "price": "1.00", "quantity": 1}]}'

    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/orders", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await orders_db.fetchval("select count(*) from orders") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [{"name": "tea\u0000", "price": "1.00", "quantity": 1}]}, "name"),
        ({"items": [{"name": "tea\ud800", "price": "1.00", "quantity": 1}]}, "name"),
        ({"products": [{"name": "\u0000", "price": "1.00", "quantity": 1}]}, "name"),
    ],
)
async def test_text_postgres_cannot_store_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    alice: Caller,
    orders_db: asyncpg.Connection,
    body: dict[str, Any],
    field: str,
) -> None:
    before = await orders_db.fetchval("select count(*) from orders")
    raw = json.dumps(body).replace("\\\\", "\\")  # the escapes as a client sends them
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/orders", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["details"]
    assert problem["loc"][-1] == field
    assert await orders_db.fetchval("select count(*) from orders") == before


async def test_without_a_token_nothing_is_created(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", json=order_body())
    assert response.status_code == 401


CreateOrder = Callable[..., Awaitable[dict[str, Any]]]


async def test_an_order_whose_event_cannot_be_written_is_not_written_either(
    orders_db: asyncpg.Connection,
    orders_db_url: str,
    alice: Caller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A create is one statement, with no transaction around it, as OrderService runs it: the
    order, its event and its idempotency key are written together or not at all. When the
    event's insert fails (here: an event id the log holds already), neither the order nor the
    key stays, with a key or without."""

    def new_order() -> Order:
        return Order.create(
            user_id=alice.id,
            items=[OrderItem(name="tea", price=Decimal("2.50"), quantity=1)],
            total_price=None,
            currency="USD",
            now=datetime.now(UTC),
        )

    first, second = new_order(), new_order()
    engine = create_engine(orders_db_url)
    work = unit_of_work.postgres(engine, key_ttl=timedelta(hours=1))
    try:
        async with work() as written:
            await written.orders.add(first)
        event_id = await orders_db.fetchval(
            "select event_id from event_log where aggregate_id = $1", first.id
        )
        monkeypatch.setattr(
            "order_command.repository.log_row",
            lambda envelope: {**log_row(envelope), "event_id": event_id},
        )
        key = IdempotentRequest(alice.id, "key-of-a-failed-create", b"{}")
        for claiming in (None, key):
            with pytest.raises(sa_exc.IntegrityError):
                async with work(one_statement=True) as refused:
                    await refused.orders.add(second, claiming)
    finally:
        await engine.dispose()
    assert await orders_db.fetchval("select count(*) from orders where id = $1", second.id) == 0
    assert not await orders_db.fetchval(
        "select count(*) from idempotency_keys where key = $1", key.key
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=210) | st.text(alphabet="\x00\ud800\udfff \t-a\u00e9", max_size=8))
@example(name="tea\x00")
@example(name="tea\ud800")
async def test_any_item_name_is_created_or_refused_never_a_500(
    client: httpx.AsyncClient, alice: Caller, name: str
) -> None:
    """Whatever text a client sends as a name (NUL, surrogates, only spaces, too long)."""
    body = json.dumps({"items": [{"name": name, "price": "1.00", "quantity": 1}]})
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/orders", content=body, headers=headers)
    assert response.status_code in (201, 422), response.text
