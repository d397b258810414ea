"""Bounded timing loops: every loop stops at a count or a deadline, whichever comes first."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`count` calls finished in `seconds` of wall time."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def ms_per_call(self) -> float:
        return 1000 * self.seconds / self.count if self.count else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "seconds": self.seconds, "per_second": self.per_second}


def run_bounded(fn: Callable[[], object], *, max_count: int, max_seconds: float) -> Rate:
    start = time.perf_counter()
    deadline = start + max_seconds
    count = 0
    while count < max_count and time.perf_counter() < deadline:
        fn()
        count += 1
    return Rate(count, time.perf_counter() - start)


async def run_bounded_async(
    fn: Callable[[], Awaitable[object]], *, max_count: int, max_seconds: float
) -> Rate:
    start = time.perf_counter()
    deadline = start + max_seconds
    count = 0
    while count < max_count and time.perf_counter() < deadline:
        await fn()
        count += 1
    return Rate(count, time.perf_counter() - start)


def run_threaded(
    fn: Callable[[], object], *, threads: int, max_count: int, max_seconds: float
) -> Rate:
    """`fn` called from `threads` threads at once (for work that releases the GIL)."""
    lock = threading.Lock()
    started = threading.Barrier(threads + 1)
    issued = 0
    deadline = 0.0

    def take_ticket() -> bool:
        nonlocal issued
        with lock:
            if issued >= max_count or time.perf_counter() >= deadline:
                return False
            issued += 1
            return True

    def worker() -> None:
        started.wait()
        while take_ticket():
            fn()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    start = time.perf_counter()
    deadline = start + max_seconds
    started.wait()
    for thread in workers:
        thread.join()
    return Rate(issued, time.perf_counter() - start)


def median_ms(fn: Callable[[], object], *, max_count: int, max_seconds: float) -> float:
    """The median time of one call, in milliseconds (at least one call is made)."""
    samples: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while not samples or (len(samples) < max_count and time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - start))
    return statistics.median(samples)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of values sorted in ascending order."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]
