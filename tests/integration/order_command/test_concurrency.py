"""Concurrent writers to one order take turns: no lost update, one gap-free version chain,
one logged event per version."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from shared.events import Role
from tests.support.tokens import Caller

CreateOrder = Callable[..., Awaitable[dict[str, Any]]]
SERVICE = Caller(Role.SERVICE)


async def logged_versions(orders_db: asyncpg.Connection, order_id: str) -> list[int]:
    rows = await orders_db.fetch(
        "select version from event_log where aggregate_id = $1 order by position", order_id
    )
    return [row["version"] for row in rows]


async def stored(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/internal/orders/{order_id}", headers=SERVICE.headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_50_concurrent_status_changes_leave_one_gap_free_version_chain(
    client: httpx.AsyncClient,
    alice: Caller,
    bob: Caller,
    admin: Caller,
    create_order: CreateOrder,
    orders_db: asyncpg.Connection,
) -> None:
    order = await create_order()
    callers = itertools.cycle([alice, admin, alice, bob, admin])
    targets = itertools.cycle(["PAID", "SHIPPED", "paid", "CANCELED", "PENDING", "SHIPPED", "X"])
    requests = [(next(callers), next(targets)) for _ in range(50)]

    answers = await asyncio.gather(
        *(
            client.patch(
                f"/orders/{order['id']}/status", json={"status": target}, headers=by.headers
            )
            for by, target in requests
        )
    )

    for (by, target), answer in zip(requests, answers, strict=True):
        if target == "X":
            assert answer.status_code == 422, answer.text
        elif by is bob:
            assert answer.status_code == 404, answer.text
        else:
            assert answer.status_code in (200, 409), answer.text
    ok = [a.json() for a in answers if a.status_code == 200]
    assert ok, "at least the first forward change must succeed"
    versions = [a["version"] for a in ok]
    assert len(set(versions)) == len(versions)
    final = await stored(client, order["id"])
    assert final["version"] == 1 + len(ok)
    assert sorted(versions) == list(range(2, final["version"] + 1))
    assert await logged_versions(orders_db, order["id"]) == list(range(1, final["version"] + 1))
    # the 200 answers form the chain: each moved on from the one before it
    chain = [a["status"] for a in sorted(ok, key=lambda a: a["version"])]
    order_of = ["PENDING", "PAID", "SHIPPED", "CANCELED"]
    assert [order_of.index(s) for s in chain] == sorted({order_of.index(s) for s in chain})
    assert final["status"] == chain[-1]
    # a 409 tells the state it met, which is never ahead of the final one
    for answer in answers:
        if answer.status_code == 409:
            details = answer.json()["error"]["details"]
            assert 1 <= details["version"] <= final["version"]


async def test_20_concurrent_item_replacements_each_get_their_own_version(
    client: httpx.AsyncClient,
    alice: Caller,
    admin: Caller,
    create_order: CreateOrder,
    orders_db: asyncpg.Connection,
) -> None:
    order = await create_order()
    bodies = [
        {"items": [{"name": f"item-{n}", "price": f"{n + 1}.00", "quantity": n + 1}]}
        for n in range(20)
    ]

    answers = await asyncio.gather(
        *(
            client.put(
                f"/orders/{order['id']}", json=body, headers=(alice if n % 2 else admin).headers
            )
            for n, body in enumerate(bodies)
        )
    )

    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
    versions = Counter(a.json()["version"] for a in answers)
    assert sorted(versions) == list(range(2, 22))
    assert set(versions.values()) == {1}
    last = max((a.json() for a in answers), key=lambda a: a["version"])
    final = await stored(client, order["id"])
    assert final["version"] == 21
    assert final["items"] == last["items"]
    assert final["total_price"] == last["total_price"]
    # each answer is what that request wrote: its own items
    for body, answer in zip(bodies, answers, strict=True):
        assert answer.json()["items"] == body["items"]
    assert await logged_versions(orders_db, order["id"]) == list(range(1, 22))
