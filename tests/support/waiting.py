"""Wait on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call `probe` until `until(result)` holds; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        try:
            last = await probe()
            if until(last):
                return last
        except Exception as exc:  # the probe may fail while the system recovers
            last = exc  # type: ignore[assignment]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s; last: {last!r}")
        await asyncio.sleep(interval)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
    detail: Callable[[], str] = str,
) -> None:
    """`eventually` for a test that is not async: `condition` polled until it holds; after
    `timeout`, fail saying `what` and `detail()` (a log's tail, say)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s:\n{detail()}")
        time.sleep(interval)
