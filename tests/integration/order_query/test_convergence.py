"""The projection converges to exactly what order_command holds: from a real event stream
delivered shuffled and with duplicates, by one consumer or two at once, and from nothing
after its Redis is lost, by the rebuild, while the service keeps answering."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from order_query.command_side import InternalApi
from order_query.projection import Outcome, Projection
from order_query.rebuild import Summary, rebuild
from shared.events import ORDER_EVENT, OrderEvent, OrderStatus
from tests.integration.order_query.conftest import (
    ADMIN,
    ORDERS,
    ORDERS_DLQ,
    Link,
    Query,
    Rabbit,
    StartQuery,
    create,
    held,
    live_keys,
    lose_projection,
    order_body,
    projected,
    publish_to_queue,
    register,
    until_projected,
    waiting_in,
)
from tests.support.factories import order_out
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tokens import Caller
from tests.support.waiting import eventually

USERS = [Caller() for _ in range(3)]


async def make_history(command: httpx.AsyncClient, command_app: FastAPI) -> list[str]:
    """Orders of three users, each taken along a different path: items replaced, statuses
    changed by the owner, by an admin and by the timer, some deleted. Their ids."""
    rng = random.Random(5)
    made: list[str] = []
    for n in range(24):
        owner = USERS[n % 3]
        order = await create(command, owner, f"{n + 1}.25", "0.50")
        path = f"/orders/{order['id']}"
        if n % 4 == 0:
            items = [{"name": "soup", "price": f"{n}.10", "quantity": 2}]
            await command.put(path, json={"items": items}, headers=owner.headers)
        if n % 3 != 2:
            by = rng.choice([owner, ADMIN])
            await command.patch(f"{path}/status", json={"status": "PAID"}, headers=by.headers)
            if n % 2:
                await command_app.state.orders.advance(uuid.UUID(order["id"]), OrderStatus.PAID)
        if n % 5 == 1:
            await command.patch(
                f"{path}/status", json={"status": "CANCELED"}, headers=owner.headers
            )
        if n % 6 == 3:
            await command.delete(path, headers=owner.headers)
        made.append(order["id"])
    return made


@pytest.fixture(scope="module")
async def stream(
    servers: Servers,
    command: httpx.AsyncClient,
    command_app: FastAPI,
    rabbit: Rabbit,
) -> AsyncIterator[tuple[list[str], list[bytes]]]:
    """A real event stream, as order_command's relay published it (order ids, event bodies).
    The copies that reached order_query's queue meanwhile (no order_query runs yet) are
    purged, so each test delivers the stream its own way."""
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        ids = await make_history(command, command_app)
        final = {order_id: (await held(command, order_id))["version"] for order_id in ids}

        async def published() -> dict[str, set[int]]:
            versions: dict[str, set[int]] = defaultdict(set)
            for event in captured.bodies():
                versions[event["aggregate_id"]].add(event["version"])
            return versions

        await eventually(
            published,
            until=lambda found: all(found[i] == set(range(1, v + 1)) for i, v in final.items()),
            what="every event published",
        )
        bodies = [m.body for m in captured.messages if json.loads(m.body)["aggregate_id"] in final]
    await (await rabbit.channel.declare_queue(ORDERS.name, passive=True)).purge()
    yield ids, bodies


def shuffled_with_duplicates(bodies: list[bytes], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    delivered = bodies + rng.choices(bodies, k=len(bodies))
    rng.shuffle(delivered)
    return delivered


async def assert_converged(
    redis: Redis, command: httpx.AsyncClient, ids: list[str], bodies: list[bytes]
) -> None:
    """Every order exactly as order_command holds it, with every event in its history."""
    for order_id in ids:
        expected = await held(command, order_id)
        await eventually(
            lambda order_id=order_id: projected(redis, order_id),  # type: ignore[misc]
            until=lambda found, expected=expected: found == expected,  # type: ignore[misc]
            timeout=30,
            what=f"order {order_id} as order_command holds it",
        )
    events = [json.loads(body) for body in bodies]
    by_order: dict[str, dict[int, str]] = defaultdict(dict)
    for event in events:
        by_order[event["aggregate_id"]][event["version"]] = event["event_id"]

    async def histories() -> dict[str, dict[int, str]]:
        found = {}
        for order_id in ids:
            entries = await Projection(redis).history(order_id)
            found[order_id] = {e.version: str(e.event_id) for e in entries}
        return found

    await eventually(histories, until=lambda found: found == by_order, timeout=30)


async def assert_lists_match(query: Query, command: httpx.AsyncClient, ids: list[str]) -> None:
    for user in USERS:
        live = [o for o in [await held(command, i) for i in ids] if o["user_id"] == str(user.id)]
        live = [o for o in live if not o["is_deleted"]]
        page = (await query.get("/orders", ADMIN, user_id=str(user.id), limit=500)).json()
        newest_first = sorted(live, key=lambda o: datetime.fromisoformat(o["created_at"]))[::-1]
        assert page["items"] == newest_first


async def outcomes(query: Query) -> dict[str, float]:
    """The app's `projection_events_total` by outcome."""
    text = (await query.http.get("/metrics")).text
    counts: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("projection_events_total{"):
            label, value = line.split("} ")
            counts[label.split('"')[1]] += float(value)
    return counts


async def test_a_shuffled_stream_with_duplicates_converges_to_what_order_command_holds(
    stream: tuple[list[str], list[bytes]],
    start_query: StartQuery,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
) -> None:
    ids, bodies = stream
    await lose_projection(redis)
    dead_before = await waiting_in(rabbit, ORDERS_DLQ)
    for body in shuffled_with_duplicates(bodies, seed=1):
        await publish_to_queue(rabbit, body)

    async with start_query() as query:
        await assert_converged(redis, command, ids, bodies)
        await assert_lists_match(query, command, ids)
        counted = await outcomes(query)
        assert counted["applied"] > 0 and counted["ignored"] > 0
    assert await waiting_in(rabbit, ORDERS_DLQ) == dead_before


async def test_two_consumers_at_once_converge_to_what_order_command_holds(
    stream: tuple[list[str], list[bytes]],
    start_query: StartQuery,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
) -> None:
    ids, bodies = stream
    await lose_projection(redis)
    dead_before = await waiting_in(rabbit, ORDERS_DLQ)

    async with start_query() as first, start_query() as second:
        # Each delivery twice or more, so both consumers meet the same versions at once.
        for body in shuffled_with_duplicates(bodies + bodies, seed=2):
            await publish_to_queue(rabbit, body)
        await assert_converged(redis, command, ids, bodies)
        await assert_lists_match(first, command, ids)
        for query in (first, second):
            assert sum((await outcomes(query)).values()) > 0, "both consumers took events"
    assert await waiting_in(rabbit, ORDERS_DLQ) == dead_before


async def _as_seen(query: Query, redis: Redis, ids: list[str]) -> dict[str, tuple[Any, Any]]:
    """Each order and its history as an admin reads them (a deleted one: as stored, with
    the names of the history's actors)."""
    projection, seen = Projection(redis), {}
    for order_id in ids:
        order = await query.get(f"/orders/{order_id}", ADMIN)
        if order.status_code == 200:
            history = (await query.get(f"/orders/{order_id}/history", ADMIN)).json()
            seen[order_id] = (order.json(), history)
            continue
        entries = await projection.history(order_id)
        actors = {str(e.actor.id) for e in entries if e.actor and e.actor.id}
        seen[order_id] = (
            await projected(redis, order_id),
            (entries, await projection.usernames(actors)),
        )
    return seen


async def test_after_redis_is_flushed_a_rebuild_restores_every_order_history_and_name(
    stream: tuple[list[str], list[bytes]],
    start_query: StartQuery,
    link: Link,
    command: httpx.AsyncClient,
    auth: httpx.AsyncClient,
    users_log: InternalApi,
    rabbit: Rabbit,
    redis: Redis,
) -> None:
    ids, bodies = stream
    named, username = await register(auth)
    mine = [await create(command, named) for _ in range(3)]
    for order in mine[:2]:
        path = f"/orders/{order['id']}"
        await command.put(path, json=order_body("1.00", "2.00"), headers=named.headers)
        await command.patch(f"{path}/status", json={"status": "PAID"}, headers=named.headers)
    await command.delete(f"/orders/{mine[2]['id']}", headers=named.headers)
    every = ids + [order["id"] for order in mine]
    async with start_query(link=link) as query:
        for body in bodies:
            await publish_to_queue(rabbit, body)
        await assert_converged(redis, command, ids, bodies)
        for order in mine:
            await until_projected(redis, await held(command, order["id"]))

        async def named_in_histories() -> bool:
            seen = await _as_seen(query, redis, [order["id"] for order in mine[:2]])
            return all(
                entry["actor"]["username"] == username
                for _, history in seen.values()
                for entry in history
                if entry["actor"] and entry["actor"]["kind"] == "user"
            )

        await eventually(named_in_histories, what="the user's name in their orders' histories")
        before = await _as_seen(query, redis, every)
        shown = [
            (order, history) for order, history in before.values() if isinstance(history, list)
        ]
        assert shown and all(len(history) == order["version"] for order, history in shown)

        await lose_projection(redis)
        visible = [
            order_id for order_id, (_, entries) in before.items() if isinstance(entries, list)
        ]
        reads: list[int] = []
        done = asyncio.Event()

        async def read_meanwhile() -> None:
            while not done.is_set():
                for order_id in visible[:20]:
                    reads.append((await query.get(f"/orders/{order_id}", ADMIN)).status_code)
                reads.append((await query.get("/orders", ADMIN)).status_code)

        async def rebuild_then_stop() -> Summary:
            try:
                return await rebuild(
                    redis, orders=link.command_side, users=users_log, report=lambda _: None
                )
            finally:
                done.set()

        _, summary = await asyncio.gather(read_meanwhile(), rebuild_then_stop())
        assert set(reads) == {200}, "every read answered while the rebuild ran"
        assert summary.users > 0 and summary.events >= len(bodies)
        assert await _as_seen(query, redis, every) == before


async def test_a_rebuild_under_a_stream_of_writes_ends_as_the_command_side_holds_every_order(
    start_query: StartQuery,
    link: Link,
    command: httpx.AsyncClient,
    users_log: InternalApi,
    redis: Redis,
) -> None:
    owner = Caller()
    done = asyncio.Event()
    made: list[str] = []
    reads: list[int] = []
    report: list[str] = []

    async def write_meanwhile() -> None:
        while not done.is_set() or len(made) < 10:
            order = await create(command, owner)
            made.append(order["id"])
            path = f"/orders/{order['id']}/status"
            await command.patch(path, json={"status": "PAID"}, headers=owner.headers)

    async def read_meanwhile() -> None:
        while not done.is_set():
            reads.append((await query.get("/orders", owner)).status_code)
            if made:
                reads.append((await query.get(f"/orders/{made[-1]}", owner)).status_code)

    async def rebuild_then_stop() -> Summary:
        try:
            return await rebuild(
                redis, orders=link.command_side, users=users_log, report=report.append
            )
        finally:
            done.set()

    async with start_query(link=link) as query:
        _, _, summary = await asyncio.gather(
            write_meanwhile(), read_meanwhile(), rebuild_then_stop()
        )
        assert set(reads) == {200}, "every read answered while the rebuild ran"
        assert report[-1].startswith("done: ") and "events/s" in report[-1]
        assert summary.generation == (summary.previous or 0) + 1
        for order_id in made:
            await until_projected(redis, await held(command, order_id))
        assert await redis.get("oq:generation") == str(summary.generation).encode()


async def test_an_event_never_overwrites_a_write_made_after_it_read_the_order(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another consumer applies v2 between this one's read (v1) and its write: this one's
    write is refused, its event judged again (now old), and v2 stays."""
    order_id, user_id, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(UTC).isoformat()
    created = order_out(id=order_id, user_id=user_id, created_at=now, updated_at=now)

    def changed(to_status: str) -> OrderEvent:
        return ORDER_EVENT.validate_python(
            {
                "event_id": str(uuid.uuid4()),
                "type": "order.status_changed",
                "aggregate_id": order_id,
                "version": 2,
                "occurred_at": now,
                "payload": {"from_status": "PENDING", "to_status": to_status, "changed_by": None},
            }
        )

    projection, other = Projection(redis), Projection(redis)
    assert await projection.put(created)
    read = projection.get_many
    raced = False

    async def read_then_race(order_ids: list[str]) -> list[bytes | None]:
        nonlocal raced
        raw = await read(order_ids)
        if not raced:
            raced = True
            assert await other.apply(changed("PAID")) is Outcome.APPLIED
        return raw

    monkeypatch.setattr(projection, "get_many", read_then_race)
    assert await projection.apply(changed("CANCELED")) is Outcome.IGNORED

    stored = await projected(redis, order_id)
    assert stored is not None and (stored["status"], stored["version"]) == ("PAID", 2)
    paid, canceled = await live_keys(redis, "orders:PAID", "orders:CANCELED")
    assert await redis.zscore(paid, order_id) is not None
    assert await redis.zscore(canceled, order_id) is None
