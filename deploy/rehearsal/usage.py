"""What each container used, read from its cgroup (v1 or v2): the figures deploy/k8s's
resource requests and limits come from (docs/kubernetes.md, "Resources")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.rehearsal.podman import Podman

CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    memory_mb: float  # resident now: anonymous memory, no page cache
    peak_mb: float | None  # the most it has used since it started (page cache included)
    cpu_seconds: float  # CPU time since it started, every process of it


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _stat(text: str | None, key: str) -> float | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return float(value)
    return None


def read(podman: Podman, container: str) -> Usage | None:
    """The container's usage now; None where its cgroup cannot be read."""
    path = str(podman.inspect(container)["State"].get("CgroupPath", "")).lstrip("/")
    if not path:
        return None
    v2 = CGROUP / path
    if (v2 / "cpu.stat").exists():
        anon = _stat(_read(v2 / "memory.stat"), "anon")
        peak = _read(v2 / "memory.peak")
        cpu_us = _stat(_read(v2 / "cpu.stat"), "usage_usec")
        if anon is None or cpu_us is None:
            return None
        return Usage(anon / 2**20, float(peak) / 2**20 if peak else None, cpu_us / 1e6)
    rss = _stat(_read(CGROUP / "memory" / path / "memory.stat"), "total_rss")
    peak = _read(CGROUP / "memory" / path / "memory.max_usage_in_bytes")
    cpu_ns = _read(CGROUP / "cpuacct" / path / "cpuacct.usage")
    if rss is None or cpu_ns is None:
        return None
    return Usage(rss / 2**20, float(peak) / 2**20 if peak else None, float(cpu_ns) / 1e9)


def table(before: dict[str, Usage], after: dict[str, Usage], seconds: float) -> str:
    """Per container: memory now and at its peak, and the CPU it took between two readings."""
    lines = [f"  {'container':<44} {'RSS MB':>7} {'peak MB':>8} {'CPU s':>6} {'cores':>6}"]
    for name, now in sorted(after.items()):
        then = before.get(name)
        cpu = now.cpu_seconds - then.cpu_seconds if then else now.cpu_seconds
        peak = f"{now.peak_mb:8.0f}" if now.peak_mb is not None else f"{'?':>8}"
        lines.append(f"  {name:<44} {now.memory_mb:7.0f} {peak} {cpu:6.1f} {cpu / seconds:6.2f}")
    return "\n".join(lines)
