"""Postgres: the engine every service builds the same way."""

from __future__ import annotations

from asyncpg import exceptions as pg_exc
from sqlalchemy import event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.faults import DriverFaults

# What means "Postgres is away", for the composition root of a service that builds an engine
# (`create_app(drivers=[DATABASE])`); a DBAPIError's cause decides whether it is one.
DATABASE = DriverFaults(
    unavailable=(
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        # Postgres answering that it cannot serve now (they reach us wrapped in a DBAPIError):
        pg_exc.PostgresConnectionError,  # class 08
        pg_exc.InsufficientResourcesError,  # class 53: too many connections, out of memory or disk
        pg_exc.CannotConnectNowError,  # starting up
        pg_exc.AdminShutdownError,
        pg_exc.CrashShutdownError,
        # asyncpg's own state machine, on a connection whose server went away mid-operation
        # ("cannot switch to state ...; another operation is in progress"): a dead connection.
        pg_exc.InternalClientError,
    ),
    # The pool had no connection free within its timeout: Postgres may be up and every
    # connection busy (a load past what the pool serves), so the request is shed as such.
    busy=(sa_exc.TimeoutError,),
    wrappers=(sa_exc.DBAPIError,),
)


def create_engine(url: str, *, timeout: float = 1.5, pool_size: int = 5) -> AsyncEngine:
    """An engine that gives up on a Postgres that does not answer within `timeout` seconds.

    A pool checkout waits at most `timeout` too, and a statement at most 10 s, so a request
    never hangs on a dead server or behind a full pool: the app turns the error into a 503
    (`dependency_unavailable` for the one, `overloaded` for the other).

    No pre-ping: it costs every transaction a round trip (a sixth of a create's CPU). After
    a Postgres restart (or its connections terminated), the request that meets a dead
    connection answers 503 instead, and SQLAlchemy then discards every pooled connection made
    before it, so the next ones reconnect. A dead connection also shows as asyncpg's
    `InternalClientError` (its state machine caught mid-operation), which SQLAlchemy does not
    take for a disconnect by itself: `_dead_connections` says it is one, or each pooled
    connection would answer one 503 of its own.
    """
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        # A fixed pool: with overflow, a steady load just above the pool opened and closed
        # connections all along (a Postgres backend forked for each; decision 109).
        max_overflow=0,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "command_timeout": 10},
        # An error's text names the statement, not its values: they may be a client's data.
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "handle_error", _dead_connections)
    return engine


def _dead_connections(context: ExceptionContext) -> None:
    cause: BaseException | None = context.original_exception
    while cause is not None:
        if isinstance(cause, (pg_exc.InternalClientError, pg_exc.PostgresConnectionError)):
            context.is_disconnect = True
            return
        cause = cause.__cause__ or cause.__context__


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("select 1"))


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain libpq DSN, for asyncpg used directly (LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
