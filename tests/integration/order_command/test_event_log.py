"""order_command's event log: every change appended with the order, read back by position at
/internal/events (service tokens only), and never changed or deleted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import Role
from tests.support.tokens import Caller

CreateOrder = Callable[..., Awaitable[dict[str, Any]]]
SERVICE = Caller(Role.SERVICE)


async def page(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/internal/events", params=params, headers=SERVICE.headers)


async def test_every_change_is_logged_with_who_did_it_in_position_order(
    client: httpx.AsyncClient, alice: Caller, admin: Caller, create_order: CreateOrder
) -> None:
    head = (await page(client, limit=1)).json()["head"]
    order = await create_order()
    path = f"/orders/{order['id']}"
    await client.patch(f"{path}/status", json={"status": "PAID"}, headers=admin.headers)
    await client.delete(path, headers=alice.headers)

    answer = await page(client, after=head)
    assert answer.status_code == 200
    body = answer.json()
    mine = [e for e in body["events"] if e["aggregate_id"] == order["id"]]
    assert [(e["type"], e["version"], e["actor"]) for e in mine] == [
        ("order.created", 1, str(alice.id)),
        ("order.status_changed", 2, str(admin.id)),
        ("order.deleted", 3, str(alice.id)),
    ]
    assert mine[0]["schema_version"] == 2 and mine[0]["payload"]["currency"] == "USD"
    positions = [e["position"] for e in body["events"]]
    assert positions == sorted(positions) and positions[0] > head
    assert body["next"] == positions[-1] and body["head"] >= positions[-1]


async def test_pages_go_on_from_next_with_no_event_missing_or_repeated(
    client: httpx.AsyncClient, create_order: CreateOrder
) -> None:
    head = (await page(client, limit=1)).json()["head"]
    made = {(await create_order())["id"] for _ in range(7)}
    seen: list[str] = []
    after = head
    while True:
        body = (await page(client, after=after, limit=3)).json()
        seen += [e["aggregate_id"] for e in body["events"] if e["aggregate_id"] in made]
        if len(body["events"]) < 3:
            break
        after = body["next"]
    assert sorted(seen) == sorted(made)


@pytest.mark.parametrize(
    "params",
    [{"after": "abc"}, {"after": "1.5"}, {"after": -1}, {"limit": 0}, {"limit": 5001}],
)
async def test_a_position_or_limit_out_of_range_is_a_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await page(client, **params)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "validation_error"


async def test_only_a_service_may_read_the_log(client: httpx.AsyncClient, alice: Caller) -> None:
    assert (await client.get("/internal/events")).status_code == 401
    as_user = await client.get("/internal/events", headers=alice.headers)
    assert as_user.status_code == 403


async def test_the_application_can_neither_change_nor_delete_a_logged_event(
    orders_db: asyncpg.Connection, create_order: CreateOrder
) -> None:
    order = await create_order()
    order_id = uuid.UUID(order["id"])
    for statement in (
        "update event_log set version = 9 where aggregate_id = $1",
        "delete from event_log where aggregate_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await orders_db.execute(statement, order_id)
    kept = await orders_db.fetchval(
        "select count(*) from event_log where aggregate_id = $1", order_id
    )
    assert kept == 1
