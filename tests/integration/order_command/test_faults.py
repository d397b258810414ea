"""Faults: with RabbitMQ down orders are still taken and their events wait in the log until
the broker is back; with Postgres down or hanging the answer is a fast 503, and the service
recovers by itself. The service reaches the server under test through a proxy the test cuts.

These tests use a database of their own, so that no other relay (the session's app) publishes
the events this one must keep unsent while the broker is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from deploy.stack.databases import fresh_database
from sqlalchemy import make_url

from order_command.cli import MIGRATIONS
from order_command.main import create_app
from order_command.settings import OrderCommandSettings
from shared.db import asyncpg_dsn
from tests.integration.order_command.conftest import make_settings, order_body
from tests.support.rabbit import capture
from tests.support.relaying import relayed
from tests.support.servers import Servers
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TEST_KEYS, Caller
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def faults_db_url(servers: Servers) -> str:
    return fresh_database(servers.database("orders_faults_it"), MIGRATIONS)


@pytest.fixture
async def faults_db(faults_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(faults_db_url))
    yield conn
    await conn.close()


async def _proxy_to(url: str, default_port: int) -> TcpProxy:
    parts = urlsplit(url)
    return await TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port).start()


@pytest.fixture
async def mq_proxy(servers: Servers) -> AsyncIterator[TcpProxy]:
    proxy = await _proxy_to(servers.rabbitmq, 5672)
    yield proxy
    await proxy.close()


@pytest.fixture
async def pg_proxy(servers: Servers) -> AsyncIterator[TcpProxy]:
    proxy = await _proxy_to(servers.postgres, 5432)
    yield proxy
    await proxy.close()


@contextlib.asynccontextmanager
async def _serve(
    settings: OrderCommandSettings, proxy: TcpProxy
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on `settings`, with its relay; on the way out the proxy is restored, so the
    shutdown does not wait on a server that is away."""
    app = create_app(settings, keys=TEST_KEYS)
    async with relayed(app, settings, settings.orders_database_url):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
            try:
                yield http
            finally:
                await proxy.restore()


@pytest.fixture
async def mq_proxied_client(
    servers: Servers, faults_db_url: str, mq_proxy: TcpProxy
) -> AsyncIterator[httpx.AsyncClient]:
    """order_command reaching RabbitMQ only through a proxy the test can cut."""
    parts = urlsplit(servers.rabbitmq)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{mq_proxy.port}"
    proxied = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
    # make_settings(..., rabbitmq_url=...) clashes with the URL it sets itself: swap the server
    settings = make_settings(dataclasses.replace(servers, rabbitmq=proxied), faults_db_url)
    async with _serve(settings, mq_proxy) as http:
        yield http


@pytest.fixture
async def pg_proxied_client(
    servers: Servers, faults_db_url: str, pg_proxy: TcpProxy
) -> AsyncIterator[httpx.AsyncClient]:
    """order_command reaching Postgres only through a proxy the test can cut."""
    url = make_url(faults_db_url).set(host="127.0.0.1", port=pg_proxy.port)
    settings = make_settings(servers, url.render_as_string(hide_password=False))
    async with _serve(settings, pg_proxy) as http:
        yield http


async def _ready(http: httpx.AsyncClient) -> None:
    await eventually(
        lambda: http.get("/readyz"),
        until=lambda r: r.status_code == 200,
        timeout=20,
        what="order_command ready",
    )


async def _sent(db: asyncpg.Connection, order_id: str) -> bool:
    """Whether the order's event was confirmed by the broker (it is in the log either way)."""
    unsent: bool = await db.fetchval(
        "select exists (select from unpublished_events u join event_log e using (position)"
        " where e.aggregate_id = $1)",
        uuid.UUID(order_id),
    )
    logged: bool = await db.fetchval(
        "select exists (select from event_log where aggregate_id = $1)", uuid.UUID(order_id)
    )
    assert logged
    return not unsent


async def test_with_rabbitmq_down_orders_are_taken_and_their_events_follow_when_it_is_back(
    mq_proxied_client: httpx.AsyncClient,
    mq_proxy: TcpProxy,
    faults_db: asyncpg.Connection,
    servers: Servers,
    alice: Caller,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http = mq_proxied_client
    await _ready(http)
    async with capture(servers.rabbitmq, "orders.events", "order.created") as captured:
        before = await http.post("/orders", json=order_body(), headers=alice.headers)
        await captured.wait_for(lambda e: e["aggregate_id"] == before.json()["id"], timeout=15)

        await mq_proxy.cut()
        answers = [
            await http.post("/orders", json=order_body(), headers=alice.headers) for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [201] * 3
        ids = [a.json()["id"] for a in answers]
        # the relay tries, fails, and keeps every event
        caplog.clear()

        async def relay_failed() -> bool:
            return any(r.name == "shared.event_log.relay" for r in caplog.records)

        await eventually(relay_failed, timeout=15, what="the relay failing to reach the broker")
        for order_id in ids:
            assert not await _sent(faults_db, order_id)
        assert not any(e["aggregate_id"] in ids for e in captured.bodies())

        await mq_proxy.restore()
        for order_id in ids:
            await captured.wait_for(lambda e, order_id=order_id: e["aggregate_id"] == order_id, 30)
    for order_id in ids:
        await eventually(
            functools.partial(_sent, faults_db, order_id), what="the event marked sent"
        )


async def _timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await request
    return response, time.monotonic() - start


@pytest.mark.parametrize("fault", ["down", "hanging"])
async def test_postgres_fault_is_a_503_within_2_s_and_the_service_recovers(
    pg_proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy, alice: Caller, fault: str
) -> None:
    http = pg_proxied_client
    first = await http.post("/orders", json=order_body(), headers=alice.headers)
    assert first.status_code == 201
    await (pg_proxy.cut() if fault == "down" else pg_proxy.hang())

    response, took = await _timed(http.post("/orders", json=order_body(), headers=alice.headers))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert took < 2.0

    change, took = await _timed(
        http.patch(
            f"/orders/{first.json()['id']}/status", json={"status": "PAID"}, headers=alice.headers
        )
    )
    assert change.status_code == 503
    assert took < 2.0

    ready, took = await _timed(http.get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["postgres"] == "unavailable"
    assert took < 2.0

    await pg_proxy.restore()
    await eventually(
        lambda: http.post("/orders", json=order_body(), headers=alice.headers),
        until=lambda r: r.status_code == 201,
        what="an order taken after Postgres came back",
    )
    paid = await http.patch(
        f"/orders/{first.json()['id']}/status", json={"status": "PAID"}, headers=alice.headers
    )
    assert (paid.status_code, paid.json()["version"]) == (200, 2)


async def test_many_requests_during_a_postgres_outage_all_fail_fast(
    pg_proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy, alice: Caller
) -> None:
    """A burst while Postgres hangs does not queue up behind the pool: each is a 503 in time."""
    http = pg_proxied_client
    assert (await http.post("/orders", json=order_body(), headers=alice.headers)).is_success
    await pg_proxy.hang()
    start = time.monotonic()
    answers = await asyncio.gather(
        *(http.post("/orders", json=order_body(), headers=alice.headers) for _ in range(30))
    )
    took = time.monotonic() - start
    assert [a.status_code for a in answers] == [503] * 30
    assert took < 4.0
    await pg_proxy.restore()
    await eventually(
        lambda: http.post("/orders", json=order_body(), headers=alice.headers),
        until=lambda r: r.status_code == 201,
        what="an order taken after Postgres came back",
    )


async def test_a_request_no_pooled_connection_frees_in_time_for_is_shed_as_overloaded(
    servers: Servers, faults_db_url: str, alice: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    """Postgres is up and every connection of the pool busy: the request waits at most
    DEPENDENCY_TIMEOUT, then is a 503 that says the service is full, not that Postgres is away."""
    settings = make_settings(servers, faults_db_url, order_command_db_pool_size=1)
    app = create_app(settings, keys=TEST_KEYS)
    async with relayed(app, settings, settings.orders_database_url):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
            assert (await http.post("/orders", json=order_body(), headers=alice.headers)).is_success
            caplog.clear()
            async with app.state.event_log_engine.connect():  # the pool's one connection
                shed, took = await _timed(
                    http.post("/orders", json=order_body(), headers=alice.headers)
                )
            assert shed.status_code == 503
            assert shed.json()["error"]["code"] == "overloaded"
            assert shed.headers["Retry-After"] == "2"
            assert took < 2.0
            logged = [r.getMessage() for r in caplog.records if r.name == "shared.app"]
            assert any(m.startswith("overloaded") for m in logged), logged
            assert not any("unavailable" in m for m in logged), logged
            taken = await http.post("/orders", json=order_body(), headers=alice.headers)
            assert taken.status_code == 201
