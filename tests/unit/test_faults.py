"""Which errors mean "a server we depend on is not serving now" (503 and wait, not 500), for a
service whose composition root names the drivers (`create_app(drivers=...)`)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc

from order_query.connections import REDIS
from shared.db import DATABASE
from shared.faults import is_busy, is_unavailable, recognise, wait_out_faults

recognise(DATABASE, REDIS)  # as auth_service, order_command and order_query's apps do


def wrapped(cause: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy raises a driver's error: a DBAPIError whose cause is the driver's."""
    try:
        raise sa_exc.DBAPIError("insert ...", {}, Exception("adapted")) from cause
    except sa_exc.DBAPIError as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed"),
        ConnectionRefusedError(),
        redis_exc.ConnectionError(),
    ],
    ids=type,
)
def test_a_server_that_does_not_serve_now_is_unavailable(error: Exception) -> None:
    assert is_unavailable(error)
    assert is_unavailable(wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.UndefinedTableError("relation does not exist"),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_a_bug_or_a_refused_statement_is_not_unavailability(error: Exception) -> None:
    assert not is_unavailable(error)
    assert not is_unavailable(wrapped(error))


def test_a_pool_with_no_connection_free_is_busy_not_an_outage() -> None:
    full = sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")
    assert is_busy(full)
    assert not is_unavailable(full)
    assert not is_busy(ConnectionRefusedError())


async def test_a_handler_waits_out_a_full_pool_holding_its_message() -> None:
    calls = 0

    @wait_out_faults
    async def handler() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")
        return "handled"

    assert await asyncio.wait_for(handler(), 2) == "handled"
    assert calls == 2


async def test_a_handler_asked_to_stop_stops_though_its_client_turns_the_cancel_into_an_error() -> (
    None
):
    started = asyncio.Event()

    @wait_out_faults
    async def handler() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:  # as aio-pika does with a call under way
            raise ConnectionError("channel closed") from exc

    task = asyncio.ensure_future(handler())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
