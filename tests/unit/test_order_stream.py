"""The order stream's rules, with a feed and a projection in memory: a snapshot first, then the
changes the caller may see, never an older version of an order than one already sent, resumed
right after a Last-Event-ID the feed still holds, and ended when the token expires."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from order_query.changes import Change, Subscription
from order_query.queries import Page
from order_query.stream import events
from shared.events import Role
from shared.schemas import OrderOut
from shared.security import Principal

ALICE = Principal(uuid.uuid4(), Role.USER, "t1")
BOB = Principal(uuid.uuid4(), Role.USER, "t2")
ADMIN = Principal(uuid.uuid4(), Role.ADMIN, "t3")


def order(owner: Principal, version: int, order_id: str | None = None) -> dict[str, Any]:
    """An order's JSON, as the projection stores it."""
    return {
        "id": order_id or str(uuid.uuid4()),
        "user_id": str(owner.user_id),
        "items": [{"name": "tea", "price": "2.50", "quantity": 1}],
        "total_price": "2.50",
        "currency": "USD",
        "status": "PENDING",
        "version": version,
        "is_deleted": False,
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
    }


def change(entry: int, shown: dict[str, Any]) -> Change:
    return Change(f"{entry}-0", OrderOut.model_validate(shown), json.dumps(shown).encode())


@dataclass
class Feed:
    """The change feed's interface (order_query.changes.ChangeFeed), in memory."""

    entries: list[Change] = field(default_factory=list)
    page: int = 500
    subscription: Subscription | None = None

    async def subscribe(self, wants: Any) -> Subscription:
        self.subscription = Subscription(wants)
        return self.subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscription = None

    async def last_id(self) -> str:
        return self.entries[-1].id if self.entries else "0-0"

    async def holds(self, entry_id: str) -> bool:
        return any(entry.id == entry_id for entry in self.entries)

    async def since(self, after: str) -> list[Change]:
        ms = int(after.split("-")[0])
        return [e for e in self.entries if int(e.id.split("-")[0]) > ms][: self.page]

    def write(self, new: Change) -> None:
        self.entries.append(new)
        if self.subscription is not None:
            self.subscription.offer(new)


@dataclass
class Queries:
    orders_of: dict[str, list[dict[str, Any]]]

    async def orders(self, principal: Principal, **_: Any) -> Page:
        shown = [
            o
            for owner, orders in self.orders_of.items()
            for o in orders
            if principal.is_admin or owner == str(principal.user_id)
        ]
        return Page(",".join(json.dumps(o) for o in shown).encode(), None)


async def collect(stream: AsyncIterator[bytes], count: int) -> list[tuple[str, str, Any]]:
    """The first `count` events of `stream`: (type, id, data)."""
    got: list[tuple[str, str, Any]] = []
    async with asyncio.timeout(5):
        async for chunk in stream:
            fields = dict(
                line.split(": ", 1) for line in chunk.decode().strip().splitlines() if ": " in line
            )
            if "event" in fields:
                got.append((fields["event"], fields["id"], json.loads(fields["data"])))
            if len(got) == count:
                break
    return got


async def test_a_fresh_stream_sends_a_snapshot_then_only_the_callers_newer_changes() -> None:
    mine = order(ALICE, 2)
    feed = Feed([change(1, {**mine, "version": 1}), change(2, mine)])
    queries = Queries({str(ALICE.user_id): [mine], str(BOB.user_id): [order(BOB, 1)]})
    stream = events(feed, queries, ALICE, None)  # type: ignore[arg-type]
    first = await collect(stream, 1)
    feed.write(change(3, order(BOB, 1)))  # not hers
    feed.write(change(4, {**mine, "version": 2}))  # what she has already
    feed.write(change(5, {**mine, "version": 1}))  # older still
    feed.write(change(6, {**mine, "version": 3}))
    rest = await collect(stream, 1)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first == [("snapshot", "2-0", {"orders": [mine]})]
    assert rest == [("order", "6-0", {**mine, "version": 3})]


async def test_an_admin_sees_every_users_changes() -> None:
    feed = Feed()
    stream = events(feed, Queries({}), ADMIN, None)  # type: ignore[arg-type]
    assert (await collect(stream, 1))[0][0] == "snapshot"
    theirs = order(BOB, 1)
    feed.write(change(1, theirs))
    assert await collect(stream, 1) == [("order", "1-0", theirs)]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_stream_resumes_right_after_a_last_event_id_the_feed_holds() -> None:
    a, b = order(ALICE, 1), order(ALICE, 1)
    feed = Feed([change(1, a), change(2, b), change(3, {**a, "version": 2})])
    stream = events(feed, Queries({}), ALICE, "1-0")  # type: ignore[arg-type]
    got = await collect(stream, 2)
    await stream.aclose()  # type: ignore[attr-defined]
    assert got == [("order", "2-0", b), ("order", "3-0", {**a, "version": 2})]


async def test_a_last_event_id_the_feed_no_longer_holds_starts_with_a_snapshot() -> None:
    a = order(ALICE, 4)
    feed = Feed([change(9, a)])
    stream = events(feed, Queries({str(ALICE.user_id): [a]}), ALICE, "1-0")  # type: ignore[arg-type]
    got = await collect(stream, 1)
    await stream.aclose()  # type: ignore[attr-defined]
    assert got == [("snapshot", "9-0", {"orders": [a]})]


async def test_a_stream_ends_when_its_token_expires() -> None:
    expiring = Principal(ALICE.user_id, Role.USER, "t4", expires_at=time.time() - 1)
    chunks = [chunk async for chunk in events(Feed(), Queries({}), expiring, None)]  # type: ignore[arg-type]
    assert b"event: snapshot" in b"".join(chunks)  # and then it ended by itself
