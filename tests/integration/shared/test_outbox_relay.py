"""The outbox relay against real Postgres and RabbitMQ: nothing lost while the broker is down,
several relays share the work without publishing a row twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.cli import MIGRATIONS
from auth_service.models import outbox
from shared.db import asyncpg_dsn, create_engine
from shared.events import Envelope, Role, UserRegistered
from shared.outbox import OutboxRelay, add_to_outbox
from tests.support.databases import fresh_database
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def outbox_db(servers: Servers) -> str:
    # The auth service's history creates an outbox table like every service's.
    return fresh_database(servers.database("outbox_it"), MIGRATIONS)


@pytest.fixture
async def engine(outbox_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(outbox_db)
    async with engine.begin() as conn:
        await conn.execute(outbox.delete())
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
            await add_to_outbox(conn, outbox, envelope)
        ids.append(str(envelope.event_id))
    return ids


@contextlib.asynccontextmanager
async def _relaying(
    amqp_url: str, database_url: str, publish_timeout: float = 1.0
) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(
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


async def _unpublished(outbox_db: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(outbox_db))
    try:
        value: int = await conn.fetchval("select count(*) from outbox where published_at is null")
        return value
    finally:
        await conn.close()


async def test_events_written_while_the_broker_is_down_arrive_when_it_returns(
    servers: Servers, engine: AsyncEngine, outbox_db: str
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
            _relaying(proxied, outbox_db),
        ):
            before = await _write_events(engine, 5, tag)
            await captured.wait_for(lambda e: str(e["event_id"]) == before[-1])
            # Confirmed and marked sent (the mark commits just after the broker's confirm).
            await eventually(
                lambda: _unpublished(outbox_db),
                until=lambda n: n == 0,
                what="the first events marked sent",
            )

            await proxy.cut()
            during = await _write_events(engine, 20, tag)
            # Held, not lost: the rows wait in the outbox while nothing can be confirmed.
            assert await _unpublished(outbox_db) == 20

            await proxy.restore()
            await eventually(
                lambda: _unpublished(outbox_db),
                until=lambda n: n == 0,
                timeout=30,
                what="the outbox draining after the broker returned",
            )
            for event_id in during:
                await captured.wait_for(lambda e, i=event_id: e["event_id"] == i)
    finally:
        await proxy.close()


async def test_several_relays_share_the_outbox_without_publishing_a_row_twice(
    servers: Servers, engine: AsyncEngine, outbox_db: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
        ids = await _write_events(engine, 300, tag)
        async with (
            # A confirm that takes longer than the timeout is published again (at least once,
            # by design): give the confirms time, so a row published twice means two relays.
            _relaying(servers.rabbitmq, outbox_db, publish_timeout=30),
            _relaying(servers.rabbitmq, outbox_db, publish_timeout=30),
            _relaying(servers.rabbitmq, outbox_db, publish_timeout=30),
        ):
            await eventually(
                lambda: _unpublished(outbox_db),
                until=lambda n: n == 0,
                timeout=30,
                what="three relays draining the outbox",
            )
            await captured.wait_for(lambda e: e["event_id"] == ids[-1])
        seen = [
            e["event_id"] for e in captured.bodies() if e["payload"]["username"].startswith(tag)
        ]
    assert sorted(seen) == sorted(ids)


async def test_prune_deletes_only_rows_sent_before_the_retention(
    servers: Servers, engine: AsyncEngine, outbox_db: str
) -> None:
    await _write_events(engine, 3, "prune")
    conn = await asyncpg.connect(asyncpg_dsn(outbox_db))
    try:
        ids = [r["id"] for r in await conn.fetch("select id from outbox order by id")]
        await conn.execute(
            "update outbox set published_at = now() - interval '8 days' where id = $1", ids[0]
        )
        await conn.execute("update outbox set published_at = now() where id = $1", ids[1])
        relay = OutboxRelay(database_url=outbox_db, amqp_url=servers.rabbitmq)
        assert await relay.prune() == 1
        left = [r["id"] for r in await conn.fetch("select id from outbox order by id")]
    finally:
        await conn.close()
    assert left == ids[1:]
