"""Fresh databases (for a test session, a benchmark, the fault suite), migrated by a service's
own Alembic history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

from shared.db import asyncpg_dsn
from shared.migrations import upgrade


async def drop_database(url: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(asyncpg_dsn(str(parsed.set(database="postgres"))))
    try:
        await conn.execute(f'drop database if exists "{parsed.database}" with (force)')
    finally:
        await conn.close()


def fresh_database(url: str, migrations: Path) -> str:
    """Drop the database, create it and migrate it to head. Blocking: call outside the loop."""
    asyncio.run(drop_database(url))
    upgrade(migrations, url)
    return url
