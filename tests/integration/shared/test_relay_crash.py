"""A relay killed in the middle of a batch and started again loses no event."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
from deploy.stack.databases import fresh_database

from auth_service.cli import MIGRATIONS
from shared.db import asyncpg_dsn
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.waiting import eventually

EVENTS = 20_000


@pytest.fixture(scope="module")
def relay_db(servers: Servers) -> str:
    return fresh_database(servers.database("relay_crash_it"), MIGRATIONS)


@pytest.fixture
async def db(relay_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(relay_db))
    yield conn
    await conn.close()


async def _start_relay(relay_db: str, servers: Servers) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.run_relay",
        relay_db,
        servers.rabbitmq,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line == b"relaying\n"
    return process


async def test_a_relay_killed_mid_batch_and_restarted_delivers_every_event(
    db: asyncpg.Connection, relay_db: str, servers: Servers
) -> None:
    tag = "crash-" + str(await db.fetchval("select gen_random_uuid()"))[:8]
    await db.execute(
        """
        insert into event_log (event_id, aggregate_id, version, type, schema_version, payload,
                               actor, occurred_at)
        select id, id, 1, 'user.registered', 1,
               jsonb_build_object('id', id, 'username', $1 || '-' || n,
                                  'email', n || '@example.com', 'role', 'user'),
               id, now()
        from (select gen_random_uuid() as id, n from generate_series(1, $2) n) rows
        """,
        tag,
        EVENTS,
    )
    expected = {str(r["event_id"]) for r in await db.fetch("select event_id from event_log")}

    async def published() -> int:
        unsent: int = await db.fetchval("select count(*) from unpublished_events")
        return EVENTS - unsent

    async def arrived() -> set[str | None]:
        return {m.message_id for m in captured.messages}

    async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
        first = await _start_relay(relay_db, servers)
        await eventually(
            published,
            until=lambda n: n >= 1_000,
            timeout=30,
            what="the relay publishing its first batches",
        )
        first.send_signal(signal.SIGKILL)  # no chance to mark anything it has in flight
        await first.wait()
        done_before = await published()
        assert done_before < EVENTS, "the relay finished before it could be killed"

        second = await _start_relay(relay_db, servers)
        try:
            await eventually(
                published,
                until=lambda n: n == EVENTS,
                timeout=60,
                what="the restarted relay draining the unsent events",
            )
            await eventually(
                lambda: asyncio.sleep(0, result={m.message_id for m in captured.messages}),
                until=lambda seen: expected <= seen,
                timeout=30,
                what="every event arriving at the broker",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    received = [m.message_id for m in captured.messages]
    assert set(received) >= expected  # at least once; a few may come twice
