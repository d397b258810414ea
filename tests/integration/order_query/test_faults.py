"""Faults: Redis down or hanging (reads answer 503 within 2 s; the consumer holds its
messages, loses none, and catches up by itself), order_command down during a repair, a
poison message (dead-lettered after its deliveries while the queue flows on), and the
replay of the dead-letter queue once the cause is fixed.

Redis is reached through a proxy the test cuts: the shared server is never stopped."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis.asyncio import Redis

from shared.events import Role
from tests.integration.order_query.conftest import (
    ORDERS_DLQ,
    Link,
    Rabbit,
    StartQuery,
    create,
    dead_lettered,
    held,
    lose_order,
    projected,
    publish_to_queue,
    until_projected,
    waiting_in,
)
from tests.support.operator_cli import order_query_cli
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import Caller
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def redis_proxy(servers: Servers) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(servers.redis)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379).start()
    yield proxy
    await proxy.close()


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}"))


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await request
    return response, time.monotonic() - start


async def changed(
    command: httpx.AsyncClient, by: Caller, order: dict[str, object], status: str
) -> dict[str, object]:
    response = await command.patch(
        f"/orders/{order['id']}/status", json={"status": status}, headers=by.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("fault", ["down", "hanging"])
async def test_with_redis_away_reads_are_503_within_2_s_and_no_event_is_lost(
    start_query: StartQuery,
    redis_proxy: TcpProxy,
    servers: Servers,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
    alice: Caller,
    fault: str,
) -> None:
    dead_before = await waiting_in(rabbit, ORDERS_DLQ)
    async with start_query(redis_url=through(redis_proxy, servers.redis)) as query:
        before = await create(command, alice)
        await until_projected(redis, before)
        assert (await query.get(f"/orders/{before['id']}", alice)).status_code == 200

        await (redis_proxy.cut() if fault == "down" else redis_proxy.hang())
        # Orders change and are made while the projection cannot be written.
        during = [await create(command, alice) for _ in range(3)]
        paid = await changed(command, alice, before, "PAID")

        for path in (
            f"/orders/{before['id']}",
            f"/orders/{before['id']}/history",
            "/orders",
            f"/orders/user/{alice.id}",
            "/api/v1/orders/",
        ):
            response, took = await timed(query.get(path, alice))
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "dependency_unavailable"
            assert took < 2.0, (path, took)
        ready, took = await timed(query.http.get("/readyz"))
        assert ready.status_code == 503
        assert ready.json()["error"]["details"]["redis"] == "unavailable"
        assert took < 2.0

        await redis_proxy.restore()
        for order in (paid, *during):
            await until_projected(redis, order, timeout=30)
        await eventually(
            lambda: query.get(f"/orders/{before['id']}", alice),
            until=lambda r: r.status_code == 200 and r.json() == paid,
            what="reads answering again",
        )
    assert await waiting_in(rabbit, ORDERS_DLQ) == dead_before


async def test_with_order_command_down_a_repair_waits_and_completes_when_it_is_back(
    start_query: StartQuery,
    link: Link,
    servers: Servers,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
    alice: Caller,
) -> None:
    dead_before = await waiting_in(rabbit, ORDERS_DLQ)
    async with start_query(link=link) as query:
        async with capture(servers.rabbitmq, "orders.events", "order.status_changed") as events:
            order = await create(command, alice)
            paid = await changed(command, alice, order, "PAID")
            event = await events.wait_for(lambda e: e["aggregate_id"] == order["id"])
        await until_projected(redis, paid)
        other = await create(command, alice)
        await until_projected(redis, other)

        link.network.down = True
        await lose_order(redis, order["id"])  # lost
        await publish_to_queue(rabbit, json.dumps(event).encode())  # v2 again: a gap now

        # A read of a lost order needs order_command: a fast 503; the others are served.
        response, took = await timed(query.get(f"/orders/{order['id']}", alice))
        assert (response.status_code, response.json()["error"]["code"]) == (
            503,
            "dependency_unavailable",
        )
        assert took < 2.0
        assert (await query.get(f"/orders/{other['id']}", alice)).status_code == 200
        newer = await create(command, alice)  # the queue is held while the repair waits
        assert await projected(redis, order["id"]) is None

        link.network.down = False
        await until_projected(redis, paid, timeout=30)
        await until_projected(redis, newer, timeout=30)
        history = (await query.get(f"/orders/{order['id']}/history", alice)).json()
        assert history[-1]["event_id"] == event["event_id"]  # the event's own entry
    assert await waiting_in(rabbit, ORDERS_DLQ) == dead_before


POISON = [
    b"not json at all",
    b'["a list"]',
    json.dumps({"type": "order.shredded", "version": 1}).encode(),
    json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "order.status_changed",
            "occurred_at": "2026-01-01T00:00:00Z",
            "aggregate_id": str(uuid.uuid4()),
            "version": 2,
            "payload": {"from_status": "PENDING", "to_status": "LOST", "changed_by": None},
        }
    ).encode(),
    # Well formed, for an order order_command never heard of.
    json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "order.deleted",
            "occurred_at": "2026-01-01T00:00:00Z",
            "aggregate_id": str(uuid.uuid4()),
            "version": 3,
            "payload": {"deleted_by": str(uuid.uuid4())},
        }
    ).encode(),
]


async def test_a_poison_message_is_dead_lettered_after_its_deliveries_and_the_queue_flows_on(
    start_query: StartQuery,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
    alice: Caller,
) -> None:
    async with start_query():
        for body in POISON:
            await publish_to_queue(rabbit, body)
        after = await create(command, alice)
        await until_projected(redis, after)
        await eventually(
            lambda: dead_lettered(rabbit),
            until=lambda bodies: all(body in bodies for body in POISON),
            timeout=30,
            what="every poison message in the dead-letter queue",
        )
        later = await changed(command, alice, after, "PAID")
        await until_projected(redis, later)


async def replay_dead_letters(servers: Servers) -> list[str]:
    """`order-query replay-dead-letters`, as an operator runs it."""
    return (await order_query_cli(servers, "replay-dead-letters")).splitlines()


async def test_replay_moves_dead_letters_back_and_they_apply_once_the_cause_is_fixed(
    start_query: StartQuery,
    link: Link,
    servers: Servers,
    command: httpx.AsyncClient,
    redis: Redis,
    rabbit: Rabbit,
    alice: Caller,
) -> None:
    async with start_query(link=link):
        async with capture(servers.rabbitmq, "orders.events", "order.status_changed") as events:
            order = await create(command, alice)
            paid = await changed(command, alice, order, "PAID")
            event = await events.wait_for(lambda e: e["aggregate_id"] == order["id"])
        await until_projected(redis, paid)

        # A deployment whose service credentials order_command refuses: repairs fail.
        link.token.role = Role.USER
        await lose_order(redis, order["id"])
        body = json.dumps(event).encode()
        await publish_to_queue(rabbit, body)
        await eventually(
            lambda: dead_lettered(rabbit),
            until=lambda bodies: body in bodies,
            timeout=30,
            what="the unrepairable event in the dead-letter queue",
        )
        assert await projected(redis, order["id"]) is None

        link.token.role = Role.SERVICE  # fixed
        report = await replay_dead_letters(servers)

        assert report[-1].startswith("done: ")
        moved = int(report[-1].split()[1])
        assert moved >= 1
        await until_projected(redis, await held(command, order["id"]), timeout=30)
        await eventually(
            lambda: dead_lettered(rabbit),
            until=lambda bodies: body not in bodies,
            what="the event out of the dead-letter queue",
        )
