"""One level of closed-loop load against a target, and what it cost each server's CPU."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bench.load import LoadResult, Requests, drive, wrk_binary
from bench.machine import group_cpu_seconds, machine_busy_seconds, server_cpu_by_server
from bench.servers import RUN_DIR, require_alive
from deploy.stack.launcher import Child


class Budget(Protocol):
    @property
    def warmup_seconds(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def max_requests(self) -> int: ...


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    servers: dict[str, Child]  # what serves it, by label: we charge their CPU

    def require_alive(self) -> None:
        require_alive(self.servers.values())


@dataclass(frozen=True)
class Point:
    target: str
    load: LoadResult
    wall_seconds: float
    cpu_seconds: dict[str, float]  # by server label, the load generator, the whole machine
    ceiling: float = float("nan")  # the ceiling's rate to compare with (nan: none)
    # After the load stopped, until the pipeline had carried every create (its CPU counts).
    drain_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        return self.load.ok_per_second / self.ceiling

    def cores(self, what: str) -> float:
        return self.cpu_seconds.get(what, float("nan")) / (self.wall_seconds + self.drain_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            **self.load.as_dict(),
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "ceiling_per_second": self.ceiling,
            "drain_seconds": self.drain_seconds,
        }


def measure(
    target: Target,
    requests: Requests,
    clients: int,
    budget: Budget,
    generator: str,
    *,
    drained: Callable[[], float] | None = None,
) -> Point:
    """A warm-up, then the measured run; the CPU each of the target's servers spent on it.
    `drained` waits until the target has finished what the run handed it and says how long
    that took after the load stopped: that time's CPU is the run's too."""

    def run(seconds: float, max_requests: int) -> LoadResult:
        return drive(
            target.base_url,
            requests,
            clients=clients,
            seconds=seconds,
            max_requests=max_requests,
            generator=generator,
            work_dir=RUN_DIR,
        )

    groups = {label: child.pgid for label, child in target.servers.items()}
    try:
        run(budget.warmup_seconds, budget.max_requests)  # connections, pools, caches: discarded
        before = {label: group_cpu_seconds(pgid) for label, pgid in groups.items()}
        machine_before = machine_busy_seconds()
        servers_before = server_cpu_by_server()
        start = time.perf_counter()
        load = run(budget.seconds, budget.max_requests)
        wall = time.perf_counter() - start
        drain = drained() if drained is not None else 0.0
    finally:
        target.require_alive()  # a server that died explains any error above
    cpu = {label: group_cpu_seconds(pgid) - before[label] for label, pgid in groups.items()}
    cpu["load generator"] = load.generator_cpu_s
    cpu |= {s: t - servers_before[s] for s, t in server_cpu_by_server().items()}
    cpu["machine"] = machine_busy_seconds() - machine_before
    return Point(target.name, load, wall, cpu, drain_seconds=drain)


def pick_generator(requested: str) -> str:
    if requested == "auto":
        return "wrk" if wrk_binary() else "httpx"
    if requested == "wrk" and not wrk_binary():
        raise RuntimeError("--client wrk: wrk is not installed (apt-get install -y wrk)")
    return requested
