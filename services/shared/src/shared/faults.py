"""What counts as "a server we depend on did not answer", or "this process is full", for HTTP
(503) and consumers (wait).

The errors that mean it depend on the drivers a service uses, and a service imports only its
own: each composition root names its drivers (`create_app(drivers=...)`: shared.db.DATABASE,
order_query's REDIS), so a service without a database never loads SQLAlchemy just to know its
exceptions (a process's memory is mostly the libraries it has imported).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from shared.failures import DependencyUnavailable

log = logging.getLogger(__name__)

# Every service's: another service did not answer (DependencyUnavailable says so itself), a
# socket failed or timed out (OSError includes TimeoutError and ConnectionError).
UNAVAILABLE: set[type[Exception]] = {DependencyUnavailable, ConnectionError, OSError}
# A driver's own capacity used up while its server is up (a pool with no connection free in
# time): the request is shed, and named for that, not for an outage.
BUSY: set[type[Exception]] = set()
# Errors that carry a driver's error as their cause, which decides (SQLAlchemy's DBAPIError):
# the app answers them itself (never the server), a 503 or a 500 as their cause says.
WRAPPERS: set[type[Exception]] = set()


@dataclass(frozen=True)
class DriverFaults:
    """A driver's errors: those that mean its server is away, those that mean the driver has
    nothing free for one more call (its pool), and those that wrap them."""

    unavailable: tuple[type[Exception], ...]
    busy: tuple[type[Exception], ...] = ()
    wrappers: tuple[type[Exception], ...] = ()


def recognise(*drivers: DriverFaults) -> None:
    """From now on, these drivers' errors count (shared.app.create_app calls it)."""
    for driver in drivers:
        UNAVAILABLE.update(driver.unavailable)
        BUSY.update(driver.busy)
        WRAPPERS.update(driver.wrappers)


def is_unavailable(exc: BaseException | None) -> bool:
    """True if `exc`, or anything in its chain of causes, is a dependency fault."""
    return _in_chain(exc, tuple(UNAVAILABLE))


def is_busy(exc: BaseException | None) -> bool:
    """True if `exc`, or anything in its chain of causes, says a driver had nothing free."""
    return _in_chain(exc, tuple(BUSY))


def _in_chain(exc: BaseException | None, known: tuple[type[Exception], ...]) -> bool:
    while exc is not None:
        if isinstance(exc, known):
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
    """Retry a message handler while a dependency is down or the process is full, holding the
    message unacked, so neither loses it nor spends its bounded redeliveries. Any other
    error propagates (nack: redelivered up to the limit, then dead-lettered)."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        delay = 0.1
        while True:
            try:
                return await handler(*args, **kwargs)
            except Exception as exc:
                if stopping():
                    raise asyncio.CancelledError from exc
                if is_busy(exc):
                    fault = "no connection free"
                elif is_unavailable(exc):
                    fault = "dependency down"
                else:
                    raise
                log.warning("%s (%s); retrying in %.1f s", fault, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    return wrapper
