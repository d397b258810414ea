"""What the figures were measured on, and how busy the machine was while they were."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    python: str
    kernel: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"`nproc` = {self.nproc}, CPU: {self.cpu_model}; "
            f"Python {self.python}, Linux {self.kernel}"
        )


def machine() -> Machine:
    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        python=platform.python_version(),
        kernel=platform.release(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float:
    """The one-minute load average (2.0 on this 2-core machine means both cores busy)."""
    return os.getloadavg()[0]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _group_stats(pgid: int) -> Iterator[list[str]]:
    """The /proc/<pid>/stat fields after "pid (comm)" of every live process in group `pgid`
    (state ppid pgrp ...: utime is the 12th, stime the 13th, rss the 22nd, 0-based 11, 12, 21)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[2]) == pgid:
            yield fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in the process group `pgid`.

    A process group started with its own session (the auth service, nginx and its workers)
    is the unit we charge CPU to; reading it before and after a run gives that run's share.
    """
    return sum(int(f[11]) + int(f[12]) for f in _group_stats(pgid)) / CLOCK_TICKS


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every live process in the process group `pgid` (a RabbitMQ node's:
    the Erlang VM and its helpers)."""
    return sum(int(f[21]) for f in _group_stats(pgid)) * os.sysconf("SC_PAGE_SIZE")


# The servers the benchmarks drive, by their processes' names: their CPU is the benchmark's work.
SERVER_PROCESSES = {
    "postgres": "Postgres",
    "beam.smp": "RabbitMQ",
    "erl_child_setup": "RabbitMQ",
    "epmd": "RabbitMQ",
    "redis-server": "Redis",
}


def server_cpu_by_server() -> dict[str, float]:
    """User + system CPU time of the live Postgres, RabbitMQ and Redis processes, by server."""
    ticks = dict.fromkeys(SERVER_PROCESSES.values(), 0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        server = SERVER_PROCESSES.get(text[text.index("(") + 1 : text.rindex(")")])
        if server is not None:
            fields = text.rsplit(")", 1)[1].split()
            ticks[server] += int(fields[11]) + int(fields[12])
    return {server: n / CLOCK_TICKS for server, n in ticks.items()}


def server_cpu_seconds() -> float:
    """User + system CPU time of the live Postgres, RabbitMQ and Redis processes."""
    return sum(server_cpu_by_server().values())


def machine_busy_seconds() -> float:
    """CPU time spent busy by the whole machine, all cores together (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (wrk, the servers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def wait_until_quiet(max_wait: float, *, window: float = 5.0, busy_below: float = 0.15) -> bool:
    """Wait, at most `max_wait` seconds, for a `window` in which the machine's cores were
    busy less than `busy_below` on average. True if one came."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(window)  # a measuring window, not a wait for readiness
        if (machine_busy_seconds() - before) / window < busy_below:
            return True
        if time.monotonic() + window > deadline:
            return False
