"""The event log's relay against real Postgres and RabbitMQ: nothing lost while the broker is down,
several relays share the work without publishing a row twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from deploy.stack.databases import fresh_database
from deploy.stack.rabbit_node import free_port
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.cli import MIGRATIONS
from auth_service.models import event_log
from auth_service.settings import AuthSettings
from shared.db import asyncpg_dsn, create_engine
from shared.event_log import LogRelay, append_events
from shared.event_log.catch_up import read_page
from shared.event_log.serving import relay_app
from shared.events import Envelope, Role, UserRegistered
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


@pytest.fixture
def log_db(servers: Servers) -> str:
    # The auth service's history creates an event log like every writer's; a new one each
    # test, since the log cannot be emptied.
    return fresh_database(servers.database("event_log_it"), MIGRATIONS)


@pytest.fixture
async def engine(log_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(log_db)
    yield engine
    await engine.dispose()


async def _write_events(engine: AsyncEngine, n: int, tag: str) -> list[str]:
    """n events, each in a transaction of its own, as a service writes them."""
    ids = []
    for i in range(n):
        payload = UserRegistered(
            id=uuid.uuid4(), username=f"{tag}-{i}", email=f"{tag}{i}@x.org", role=Role.USER
        )
        envelope = Envelope.wrap(payload, aggregate_id=payload.id, version=1)
        async with engine.begin() as conn:
            await append_events(conn, event_log, [envelope])
        ids.append(str(envelope.event_id))
    return ids


@contextlib.asynccontextmanager
async def _relaying(
    amqp_url: str, database_url: str, publish_timeout: float = 1.0
) -> AsyncIterator[LogRelay]:
    relay = LogRelay(
        database_url=database_url,
        amqp_url=amqp_url,
        poll_interval=0.2,
        publish_timeout=publish_timeout,
        retry_every=0.2,
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _unpublished(log_db: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(log_db))
    try:
        value: int = await conn.fetchval("select count(*) from unpublished_events")
        return value
    finally:
        await conn.close()


async def test_events_written_while_the_broker_is_down_arrive_when_it_returns(
    servers: Servers, engine: AsyncEngine, log_db: str
) -> None:
    amqp = urlsplit(servers.rabbitmq)
    proxy = await TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672).start()
    proxied = urlunsplit(
        amqp._replace(netloc=f"{amqp.username}:{amqp.password}@127.0.0.1:{proxy.port}")
    )
    tag = uuid.uuid4().hex[:8]
    try:
        async with (
            capture(servers.rabbitmq, "auth.events", "user.registered") as captured,
            _relaying(proxied, log_db),
        ):
            before = await _write_events(engine, 5, tag)
            await captured.wait_for(lambda e: str(e["event_id"]) == before[-1])
            # Confirmed and marked sent (the mark commits just after the broker's confirm).
            await eventually(
                lambda: _unpublished(log_db),
                until=lambda n: n == 0,
                what="the first events marked sent",
            )

            await proxy.cut()
            during = await _write_events(engine, 20, tag)
            # Held, not lost: the events wait to be sent while nothing can be confirmed.
            assert await _unpublished(log_db) == 20

            await proxy.restore()
            await eventually(
                lambda: _unpublished(log_db),
                until=lambda n: n == 0,
                timeout=30,
                what="the log's unsent events draining after the broker returned",
            )
            for event_id in during:
                await captured.wait_for(lambda e, i=event_id: e["event_id"] == i)
    finally:
        await proxy.close()


async def test_several_relays_share_the_log_without_publishing_an_event_twice(
    servers: Servers, engine: AsyncEngine, log_db: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
        ids = await _write_events(engine, 300, tag)
        async with (
            # A confirm that takes longer than the timeout is published again (at least once,
            # by design): give the confirms time, so a row published twice means two relays.
            _relaying(servers.rabbitmq, log_db, publish_timeout=30),
            _relaying(servers.rabbitmq, log_db, publish_timeout=30),
            _relaying(servers.rabbitmq, log_db, publish_timeout=30),
        ):
            await eventually(
                lambda: _unpublished(log_db),
                until=lambda n: n == 0,
                timeout=30,
                what="three relays draining the unsent events",
            )
            await captured.wait_for(lambda e: e["event_id"] == ids[-1])
        seen = [
            e["event_id"] for e in captured.bodies() if e["payload"]["username"].startswith(tag)
        ]
    assert sorted(seen) == sorted(ids)


async def test_the_log_keeps_every_event_and_refuses_to_change_or_lose_one(
    engine: AsyncEngine, log_db: str
) -> None:
    ids = await _write_events(engine, 3, "kept")
    conn = await asyncpg.connect(asyncpg_dsn(log_db))
    try:
        for statement in (
            "update event_log set payload = '{}'::jsonb",
            "delete from event_log",
            "truncate event_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        kept = [str(r["event_id"]) for r in await conn.fetch("select event_id from event_log")]
    finally:
        await conn.close()
    assert kept == ids


async def test_a_reader_catching_up_while_many_write_misses_no_event(
    engine: AsyncEngine, log_db: str
) -> None:
    """Writers that take a while between their append and their commit, twenty at once, and a
    reader that keeps asking for what comes after the last position it saw: it sees every
    event (positions are handed out in commit order, so none appears behind the reader)."""
    written: list[str] = []

    async def writer(n: int) -> None:
        for i in range(10):
            payload = UserRegistered(
                id=uuid.uuid4(), username=f"w{n}-{i}", email=f"w{n}{i}@x.org", role=Role.USER
            )
            envelope = Envelope.wrap(payload, aggregate_id=payload.id, version=1)
            async with engine.begin() as conn:
                await append_events(conn, event_log, [envelope])
                await conn.execute(text("select pg_sleep(:s)"), {"s": random.uniform(0, 0.01)})
            written.append(str(envelope.event_id))

    seen: list[str] = []
    after = 0

    async def read_once() -> None:
        nonlocal after
        page = json.loads(await read_page(engine, after, 50))
        seen.extend(event["event_id"] for event in page["events"])
        after = page["next"]

    writers = asyncio.gather(*(writer(n) for n in range(20)))
    while not writers.done():
        await read_once()
    await writers
    await read_once()
    assert sorted(seen) == sorted(written)
    assert len(seen) == len(set(seen)) == 200


# --- the relay's process: `auth-service relay` serves relay_app ---------------------------


@contextlib.asynccontextmanager
async def _relay_process(log_db: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = AuthSettings(environment="test", auth_database_url=log_db, rabbitmq_url=amqp_url)
    app = relay_app(settings, name="auth_service", database_url=settings.auth_database_url)
    async with LifespanManager(app, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            yield http


async def _metrics(http: httpx.AsyncClient) -> dict[str, float]:
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    return {
        sample.name + "".join(f"[{v}]" for v in sample.labels.values()): sample.value
        for family in text_string_to_metric_families(answer.text)
        if family.name.startswith("event_log_")
        for sample in family.samples
    }


async def test_the_relay_process_is_ready_publishes_and_reports_it(
    log_db: str, engine: AsyncEngine, servers: Servers
) -> None:
    async with _relay_process(log_db, servers.rabbitmq) as http:
        ready = await eventually(
            lambda: http.get("/readyz"), until=lambda r: r.status_code == 200, what="ready"
        )
        assert ready.json()["checks"] == {"postgres": "ok", "relay": "ok"}
        async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
            ids = await _write_events(engine, 5, "process")
            await eventually(
                lambda: asyncio.sleep(0, result={m.message_id for m in captured.messages}),
                until=lambda seen: set(ids) <= seen,
                what="the events at the broker",
            )
        figures = await eventually(
            lambda: _metrics(http),
            until=lambda m: m.get("event_log_published_total[user.registered]") == 5,
            what="the published count",
        )
        assert figures["event_log_unpublished_events"] == 0
        assert figures["event_log_publish_lag_seconds_count"] == 5


async def test_the_relay_process_without_a_broker_is_not_ready_and_shows_the_backlog(
    log_db: str, engine: AsyncEngine
) -> None:
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"  # nothing listens there
    async with _relay_process(log_db, closed) as http:
        await _write_events(engine, 3, "waiting")
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"]["details"] == {"postgres": "ok", "relay": "unavailable"}
        figures = await _metrics(http)
        assert figures["event_log_unpublished_events"] == 3
        assert figures["event_log_oldest_unpublished_age_seconds"] > 0
        assert "event_log_published_total[user.registered]" not in figures
