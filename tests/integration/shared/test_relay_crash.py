"""A relay (`auth-service relay`, the process the platform runs) killed in the middle of a
batch and started again loses no event."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from deploy.stack.databases import fresh_database
from deploy.stack.rabbit_node import free_port

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
    """`auth-service relay` over `relay_db`, once it says it is ready."""
    port = free_port()
    settings = {
        "ENVIRONMENT": "test",
        "AUTH_DATABASE_URL": relay_db,
        "RABBITMQ_URL": servers.rabbitmq,
        "AUTH_RELAY_HOST": "127.0.0.1",
        "AUTH_RELAY_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        Path(sys.executable).with_name("auth-service"),
        "relay",
        env={**os.environ, **settings},
        stdout=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
    )

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, timeout=30, what="the relay ready")
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
