"""The reads, each path's answer and its refusals: an order, a user's orders, the history,
and seed004's paths, from the projection that order_command's events keep."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from order_query.projection import LIVE
from shared import seed004
from shared.events import OrderStatus
from tests.integration.order_query.conftest import (
    Query,
    Rabbit,
    create,
    held,
    lose_order,
    projected,
    publish_user,
    until_projected,
)
from tests.support.tokens import Caller
from tests.support.waiting import eventually

READ_PATHS = ["/orders/{id}", "/orders/{id}/history", "/api/v1/orders/{id}/"]


async def test_the_owner_reads_the_order_as_order_command_answered_it(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    order = await create(command, alice, "2.50", "3.99")
    await until_projected(redis, order)

    response = await query.get(f"/orders/{order['id']}", alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == order

    legacy = await query.get(f"/api/v1/orders/{order['id']}/", alice)
    assert legacy.status_code == 200
    assert legacy.json() == seed004.order(order, None)  # no user.registered heard: no name


async def test_an_order_missing_from_the_projection_is_repaired_from_order_command(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    order = await create(command, alice)
    await until_projected(redis, order)
    await lose_order(redis, order["id"])  # lost

    response = await query.get(f"/orders/{order['id']}", alice)

    assert response.status_code == 200
    assert response.json() == order
    assert await projected(redis, order["id"]) == order  # written back, not only served
    history = (await query.get(f"/orders/{order['id']}/history", alice)).json()
    # Until its events come again, the repaired version shows as the state order_command held.
    assert [(e["version"], e["type"], e["actor"]) for e in history] == [(1, "order.snapshot", None)]
    assert history[0]["details"] == {
        "status": "PENDING",
        "total_price": "2.50",
        "is_deleted": False,
    }


async def test_an_order_repaired_as_a_rebuild_switches_generations_is_still_answered(
    query: Query,
    command: httpx.AsyncClient,
    redis: Redis,
    alice: Caller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The repair writes the order to the live generation; a rebuild's switch right after
    makes a generation live that does not hold it yet: the read still answers the order."""
    order = await create(command, alice)
    await until_projected(redis, order)
    await lose_order(redis, order["id"])
    projection = query.app.state.queries.projection
    put, live = projection.put, await redis.get(LIVE)

    async def put_then_switch(fetched: dict[str, object]) -> bool:
        stored: bool = await put(fetched)
        await redis.set(LIVE, 999_999)  # a rebuild's new generation, still empty
        return stored

    monkeypatch.setattr(projection, "put", put_then_switch)
    try:
        response = await query.get(f"/orders/{order['id']}", alice)
    finally:
        await (redis.set(LIVE, live) if live is not None else redis.delete(LIVE))
    assert response.status_code == 200
    assert response.json() == order


@pytest.mark.parametrize("path", READ_PATHS)
async def test_another_users_order_is_a_404_but_an_admin_reads_it(
    query: Query,
    command: httpx.AsyncClient,
    redis: Redis,
    alice: Caller,
    bob: Caller,
    admin: Caller,
    path: str,
) -> None:
    order = await create(command, alice)
    await until_projected(redis, order)

    refused = await query.get(path.format(id=order["id"]), bob)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert (await query.get(path.format(id=order["id"]), admin)).status_code == 200


@pytest.mark.parametrize("path", READ_PATHS)
async def test_a_deleted_order_is_a_404_even_for_its_owner_and_an_admin(
    query: Query,
    command: httpx.AsyncClient,
    redis: Redis,
    alice: Caller,
    admin: Caller,
    path: str,
) -> None:
    order = await create(command, alice)
    deleted = (await command.delete(f"/orders/{order['id']}", headers=alice.headers)).json()
    await until_projected(redis, deleted)

    for caller in (alice, admin):
        response = await query.get(path.format(id=order["id"]), caller)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_a_deleted_order_leaves_every_list(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller, admin: Caller
) -> None:
    kept, gone = await create(command, alice), await create(command, alice)
    deleted = (await command.delete(f"/orders/{gone['id']}", headers=alice.headers)).json()
    await until_projected(redis, kept)
    await until_projected(redis, deleted)

    lists = [
        await query.get("/orders", alice),
        await query.get(f"/orders/user/{alice.id}", alice),
        await query.get("/orders", admin, user_id=str(alice.id)),
    ]
    for response in lists:
        assert response.status_code == 200
        assert [o["id"] for o in response.json()["items"]] == [kept["id"]]
    seed004_list = await query.get("/api/v1/orders/", alice)
    assert [o["order_id"] for o in seed004_list.json()] == [kept["id"]]  # a bare list


@pytest.mark.parametrize("path", READ_PATHS)
async def test_an_order_nobody_made_is_a_404_and_a_malformed_id_a_422(
    query: Query, alice: Caller, path: str
) -> None:
    unknown = await query.get(path.format(id=uuid.uuid4()), alice)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"

    malformed = await query.get(path.format(id="not-an-id"), alice)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "path",
    [*READ_PATHS, "/orders", "/orders/user/{id}", "/api/v1/orders/"],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6cHc="}],
)
async def test_every_read_needs_a_valid_access_token(
    query: Query, path: str, headers: dict[str, str]
) -> None:
    response = await query.http.get(path.format(id=uuid.uuid4()), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_user_lists_their_own_orders_only_newest_first(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller, bob: Caller
) -> None:
    mine = [await create(command, alice, price) for price in ("1.00", "2.00", "3.00")]
    theirs = await create(command, bob)
    for order in (*mine, theirs):
        await until_projected(redis, order)

    response = await query.get("/orders", alice)

    assert response.status_code == 200
    assert response.json() == {"items": mine[::-1], "next_cursor": None}
    legacy = await query.get("/api/v1/orders/", alice)
    assert legacy.json() == [seed004.order(o, None) for o in mine[::-1]]  # seed004's bare list
    assert "link" not in legacy.headers  # no next page
    # Naming yourself is allowed, and the same list.
    assert (await query.get("/orders", alice, user_id=str(alice.id))).json() == response.json()


async def test_an_admin_lists_one_users_orders_or_everybodys(
    query: Query,
    command: httpx.AsyncClient,
    redis: Redis,
    alice: Caller,
    bob: Caller,
    admin: Caller,
) -> None:
    hers, his = await create(command, alice), await create(command, bob)
    await until_projected(redis, hers)
    await until_projected(redis, his)

    one = await query.get("/orders", admin, user_id=str(alice.id))
    assert [o["id"] for o in one.json()["items"]] == [hers["id"]]
    by_path = await query.get(f"/orders/user/{bob.id}", admin)
    assert [o["id"] for o in by_path.json()["items"]] == [his["id"]]

    everybody = await query.get("/orders", admin, created_from=hers["created_at"])
    assert [o["id"] for o in everybody.json()["items"]][:2] == [his["id"], hers["id"]]
    assert (await query.get("/orders", admin)).json()["items"][:2] == [his, hers]


async def test_a_users_orders_are_for_that_user_or_an_admin_only(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller, bob: Caller
) -> None:
    order = await create(command, alice)
    await until_projected(redis, order)

    assert (await query.get(f"/orders/user/{alice.id}", alice)).json()["items"] == [order]
    for refused in (
        await query.get(f"/orders/user/{alice.id}", bob),
        await query.get("/orders", bob, user_id=str(alice.id)),
        await query.get("/api/v1/orders/", bob, user_id=str(alice.id)),
    ):
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"

    mismatch = await query.get(f"/orders/user/{alice.id}", alice, user_id=str(bob.id))
    assert mismatch.status_code == 422
    malformed = await query.get("/orders/user/nobody", alice)
    assert malformed.status_code == 422


async def test_the_history_says_who_did_what_and_when(
    query: Query,
    command: httpx.AsyncClient,
    command_app: FastAPI,
    redis: Redis,
    rabbit: Rabbit,
    alice: Caller,
    admin: Caller,
) -> None:
    alice_name, admin_name = f"alice_{alice.id.hex[:8]}", f"admin_{admin.id.hex[:8]}"
    await publish_user(rabbit, alice, alice_name)
    await publish_user(rabbit, admin, admin_name)
    order = await create(command, alice, "2.50")
    items = [{"name": "cake", "price": "3.99", "quantity": 2}]
    updated = await command.put(
        f"/orders/{order['id']}", json={"items": items}, headers=alice.headers
    )
    paid = await command.patch(
        f"/orders/{order['id']}/status", json={"status": "PAID"}, headers=admin.headers
    )
    # The status worker's timer, as its command reaches order_command's service layer.
    shipped = await command_app.state.orders.advance(uuid.UUID(order["id"]), OrderStatus.PAID)
    assert shipped is not None
    await until_projected(redis, await held(command, order["id"]))

    async def history() -> list[dict[str, object]]:
        response = await query.get(f"/orders/{order['id']}/history", alice)
        assert response.status_code == 200
        entries: list[dict[str, object]] = response.json()
        return entries

    entries = await eventually(
        history,
        until=lambda found: all(e["actor"] and e["actor"]["username"] for e in found),  # type: ignore[index]
        what="the users' names in the history",
    )
    assert [(e["version"], e["type"], e["actor"]) for e in entries] == [
        (1, "order.created", {"kind": "user", "id": str(alice.id), "username": alice_name}),
        (2, "order.updated", {"kind": "user", "id": str(alice.id), "username": alice_name}),
        (3, "order.status_changed", {"kind": "user", "id": str(admin.id), "username": admin_name}),
        (4, "order.status_changed", {"kind": "system", "id": None, "username": "status_worker"}),
    ]
    assert [e["occurred_at"] for e in entries] == [
        order["created_at"],
        updated.json()["updated_at"],
        paid.json()["updated_at"],
        (await held(command, order["id"]))["updated_at"],
    ]
    assert [e["details"] for e in entries] == [
        {"status": "PENDING", "total_price": "2.50", "items": order["items"]},
        {"total_price": "7.98", "items": items},
        {"from_status": "PENDING", "to_status": "PAID"},
        {"from_status": "PAID", "to_status": "SHIPPED"},
    ]
    assert all(uuid.UUID(str(e["event_id"])) for e in entries)
