"""What counts as "a server we depend on did not answer", for HTTP (503) and consumers (wait)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asyncpg import exceptions as pg_exc
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc

from shared.errors import DependencyUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    # Postgres answering that it cannot serve now (they reach us wrapped in a DBAPIError):
    pg_exc.PostgresConnectionError,  # class 08
    pg_exc.InsufficientResourcesError,  # class 53: too many connections, out of memory or disk
    pg_exc.CannotConnectNowError,  # starting up
    pg_exc.AdminShutdownError,
    pg_exc.CrashShutdownError,
    # asyncpg's own state machine, on a connection whose server went away mid-operation
    # ("cannot switch to state ...; another operation is in progress"): a dead connection.
    pg_exc.InternalClientError,
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    redis_exc.BusyLoadingError,
    ConnectionError,
    OSError,  # includes TimeoutError
)


def is_unavailable(exc: BaseException | None) -> bool:
    """True if `exc`, or anything in its chain of causes, is a dependency fault (a
    `DependencyUnavailable` says so itself: another service did not answer)."""
    while exc is not None:
        if isinstance(exc, (*UNAVAILABLE_ERRORS, DependencyUnavailable)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def stopping() -> bool:
    """True once the current task has been asked to stop. A client library may turn the
    cancellation of a call into an error of its own (aio-pika: a connection error): a loop
    that waits out faults must not take that for one, or it would never stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


P = ParamSpec("P")
R = TypeVar("R")


def wait_out_faults(
    handler: Callable[P, Awaitable[R]], *, max_delay: float = 5.0
) -> Callable[P, Awaitable[R]]:
    """Retry a message handler while a dependency is down, holding the message unacked, so
    an outage neither loses it nor spends its bounded redeliveries. Any other error
    propagates (nack: redelivered up to the limit, then dead-lettered)."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        delay = 0.1
        while True:
            try:
                return await handler(*args, **kwargs)
            except Exception as exc:
                if stopping():
                    raise asyncio.CancelledError from exc
                if not is_unavailable(exc):
                    raise
                log.warning("dependency down (%s); retrying in %.1f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    return wrapper
