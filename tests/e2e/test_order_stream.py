"""`GET /orders/stream` through the gateway: a snapshot, then the caller's changes as they
happen (an admin's: everybody's), resumed after `Last-Event-ID`. On the main stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.e2e.accounts import Account, sign_up
from tests.support.sse import Event, open_stream
from tests.support.waiting import eventually

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


@pytest.fixture
async def other(gateway_url: str) -> AsyncIterator[Account]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        yield await sign_up(http)


async def _create(account: Account) -> str:
    created = await account.http.post("/orders", json={"items": ITEMS})
    assert created.status_code == 201, created.text
    order_id: str = created.json()["id"]
    return order_id


async def _listed(account: Account, order_id: str) -> None:
    """Wait until the read side lists the order (the projection is asynchronous)."""

    async def ids() -> list[str]:
        return [o["id"] for o in (await account.http.get("/orders")).json()["items"]]

    await eventually(ids, until=lambda listed: order_id in listed, what=f"{order_id} listed")


def _is(order_id: str, version: int) -> Callable[[Event], bool]:
    def wanted(event: Event) -> bool:
        if event.type != "order":
            return False
        order = event.json()
        return bool(order["id"] == order_id and order["version"] == version)

    return wanted


async def test_a_user_gets_a_snapshot_then_each_change_of_their_own_orders_only(
    main_user: Account, other: Account
) -> None:
    mine = await _create(main_user)
    await _listed(main_user, mine)
    async with open_stream(main_user.http) as stream:
        snapshot = await stream.next()
        assert snapshot.type == "snapshot", snapshot
        assert [o["id"] for o in snapshot.json()["orders"]] == [mine]
        assert snapshot.id is not None

        theirs = await _create(other)
        second = await _create(main_user)
        paid = await main_user.http.patch(f"/orders/{second}/status", json={"status": "PAID"})
        assert paid.status_code == 200, paid.text
        seen = await stream.until(_is(second, 2), what=f"order {second} at v2")

    shown = [(e.json()["id"], e.json()["version"], e.json()["status"]) for e in seen]
    assert shown == [(second, 1, "PENDING"), (second, 2, "PAID")], shown
    assert theirs not in {e.json()["id"] for e in seen}
    assert all(e.id for e in seen)


async def test_an_admin_sees_every_users_orders_change(admin: Account, other: Account) -> None:
    async with open_stream(admin.http) as stream:
        assert (await stream.next()).type == "snapshot"
        theirs = await _create(other)
        await stream.until(_is(theirs, 1), what="another user's order on the admin's stream")


async def test_a_stream_resumed_with_last_event_id_gets_what_it_missed_and_nothing_twice(
    main_user: Account,
) -> None:
    first = await _create(main_user)
    async with open_stream(main_user.http) as stream:
        await stream.next()  # the snapshot
        second = await _create(main_user)
        await stream.until(_is(second, 1))
        resume_from = stream.last_id
    assert resume_from is not None

    # While nobody listens: one order moves on, another is created.
    await main_user.http.patch(f"/orders/{first}/status", json={"status": "SHIPPED"})
    third = await _create(main_user)

    async with open_stream(main_user.http, last_event_id=resume_from) as stream:
        seen = await stream.until(_is(third, 1), what="the missed changes")
    assert [(e.type, e.json()["id"], e.json()["version"]) for e in seen] == [
        ("order", first, 2),
        ("order", third, 1),
    ]


async def test_a_last_event_id_the_feed_no_longer_holds_starts_over_with_a_snapshot(
    main_user: Account,
) -> None:
    mine = await _create(main_user)
    await _listed(main_user, mine)
    async with open_stream(main_user.http, last_event_id="1-0") as stream:
        snapshot = await stream.next()
    assert snapshot.type == "snapshot"
    assert [o["id"] for o in snapshot.json()["orders"]] == [mine]


async def test_the_stream_refuses_no_token_and_a_malformed_last_event_id(
    gateway_url: str, main_user: Account
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as anonymous:
        refused = await anonymous.get("/orders/stream")
    assert refused.status_code == 401, refused.text
    bad = await main_user.http.get("/orders/stream", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "validation_error"
