"""What counts as "a server we depend on did not answer", for HTTP (503) and consumers (wait)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc

from shared.errors import DependencyUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    redis_exc.BusyLoadingError,
    ConnectionError,
    OSError,  # includes TimeoutError
)


# SQLSTATE classes where Postgres answers but will not serve now: connection exceptions
# (08), insufficient resources such as "too many clients" (53), and operator intervention
# such as a shutdown under way (57P).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_unavailable(exc: BaseException | None) -> bool:
    """True if `exc`, or anything in its chain of causes, is a dependency fault (a
    `DependencyUnavailable` says so itself: another service did not answer)."""
    while exc is not None:
        if isinstance(exc, (*UNAVAILABLE_ERRORS, DependencyUnavailable)):
            return True
        if str(getattr(exc, "sqlstate", "") or "").startswith(_UNAVAILABLE_SQLSTATES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
                if not is_unavailable(exc):
                    raise
                log.warning("dependency down (%s); retrying in %.1f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    return wrapper
