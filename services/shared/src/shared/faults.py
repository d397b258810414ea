"""What counts as "a server we depend on did not answer", for HTTP (503) and consumers (wait).

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
# Errors that carry a driver's error as their cause, which decides (SQLAlchemy's DBAPIError):
# the app answers them itself (never the server), a 503 or a 500 as their cause says.
WRAPPERS: set[type[Exception]] = set()


@dataclass(frozen=True)
class DriverFaults:
    """A driver's errors: those that mean its server is away, and those that wrap them."""

    unavailable: tuple[type[Exception], ...]
    wrappers: tuple[type[Exception], ...] = ()


def recognise(*drivers: DriverFaults) -> None:
    """From now on, these drivers' errors count (shared.app.create_app calls it)."""
    for driver in drivers:
        UNAVAILABLE.update(driver.unavailable)
        WRAPPERS.update(driver.wrappers)


def is_unavailable(exc: BaseException | None) -> bool:
    """True if `exc`, or anything in its chain of causes, is a dependency fault."""
    known = tuple(UNAVAILABLE)
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
