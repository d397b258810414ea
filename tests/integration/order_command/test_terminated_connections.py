"""Postgres connections terminated under a stream of requests (as a failover or an operator's
pg_terminate_backend does): every answer is a 201 or a 503, never a 500, and the service goes
on by itself. A pooled connection whose server went away mid-operation can fail with asyncpg's
own `InternalClientError` ("cannot switch to state ...; another operation is in progress"):
that is a dead connection too, not a bug."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from deploy.stack.databases import fresh_database
from sqlalchemy import make_url

from order_command.cli import MIGRATIONS
from order_command.main import create_app
from shared.db import asyncpg_dsn
from tests.integration.order_command.conftest import make_settings, order_body
from tests.support.servers import Servers
from tests.support.tokens import TEST_KEYS, Caller
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def terminated_db_url(servers: Servers) -> str:
    return fresh_database(servers.database("orders_terminated_it"), MIGRATIONS)


@pytest.fixture
async def client(servers: Servers, terminated_db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(servers, terminated_db_url), keys=TEST_KEYS)
    async with LifespanManager(app, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
            yield http


async def test_terminated_connections_answer_503_never_500(
    client: httpx.AsyncClient, terminated_db_url: str, alice: Caller
) -> None:
    database = make_url(terminated_db_url).database
    admin = await asyncpg.connect(asyncpg_dsn(terminated_db_url))
    answers: Counter[int] = Counter()
    terminations = 0

    async def create_orders() -> None:
        for _ in range(40):
            response = await client.post("/orders", json=order_body(), headers=alice.headers)
            answers[response.status_code] += 1

    async def terminate_every_few_answers() -> None:
        nonlocal terminations
        seen = 0
        while terminations < 15:
            # Wait for five more answers, then cut every connection of the service's database.
            target = min(seen + 5, 8 * 40)
            await eventually(
                lambda: asyncio.sleep(0, sum(answers.values())),
                until=lambda n: n >= target,  # noqa: B023 (read at once, in this iteration)
                timeout=30,
            )
            seen = sum(answers.values())
            await admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = $1 and pid <> pg_backend_pid()",
                database,
            )
            terminations += 1
            if seen >= 8 * 40:
                return

    try:
        await asyncio.gather(*(create_orders() for _ in range(8)), terminate_every_few_answers())
    finally:
        await admin.close()
    assert set(answers) <= {201, 503}, answers
    assert answers[201] > 0
    # ... and the service goes on by itself.
    await eventually(
        lambda: client.post("/orders", json=order_body(), headers=alice.headers),
        until=lambda r: r.status_code == 201,
        what="a create after the terminations",
    )
