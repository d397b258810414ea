"""Alembic, run the same way by every service: `<service> migrate`; each `env.py` is two lines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import asyncpg_dsn


async def ensure_database(url: str) -> bool:
    """Create the URL's database if it is missing. True if it was created."""
    parsed = make_url(url)
    admin = await asyncpg.connect(asyncpg_dsn(str(parsed.set(database="postgres"))), timeout=5)
    try:
        exists = await admin.fetchval(
            "select 1 from pg_database where datname = $1", parsed.database
        )
        if not exists:
            await admin.execute(f'create database "{parsed.database}"')
        return not exists
    finally:
        await admin.close()


def upgrade(migrations: Path, url: str) -> None:
    """Create the database if needed and run the Alembic history in `migrations` to head."""
    asyncio.run(ensure_database(url))
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def run_env(metadata: MetaData) -> None:
    """The body of a service's `env.py`: online migrations over asyncpg."""
    url = context.config.attributes["database_url"]

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
