"""Alembic, run the same way by every service: `<service> migrate`; each `env.py` is two lines."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import asyncpg
from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
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


log = logging.getLogger(__name__)


def _config(migrations: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["database_url"] = url
    return config


def upgrade(migrations: Path, url: str) -> None:
    """Create the database if needed and run the Alembic history in `migrations` to head."""
    asyncio.run(ensure_database(url))
    command.upgrade(_config(migrations, url), "head")


def is_migrated(migrations: Path, url: str) -> bool:
    """The database at `url` is at the head of the history in `migrations` (this code's)."""
    heads = set(ScriptDirectory.from_config(_config(migrations, url)).get_heads())

    async def current() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: set(MigrationContext.configure(sync).get_current_heads())
                )
        finally:
            await engine.dispose()

    return asyncio.run(current()) == heads


def wait_until_migrated(migrations: Path, url: str, *, timeout: float, every: float = 2.0) -> bool:
    """Wait (at most `timeout` seconds) until another process has migrated the database: a
    Kubernetes pod's init container, while the migration Job runs. True once it has."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if is_migrated(migrations, url):
                return True
            log.info("the database is not migrated to this version yet: waiting")
        except (OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
            log.info("the database cannot be read yet (%s): waiting", type(exc).__name__)
        if time.monotonic() + every > deadline:
            return False
        time.sleep(every)


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
