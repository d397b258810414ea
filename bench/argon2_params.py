"""Benchmark `argon2`: what one argon2id hash and verify cost for a few candidate parameter sets.

argon2-cffi is called directly (no service), so these are the bare costs; the verifies/s on
the auth service's hashing threads is the ceiling for its logins/s (see `logins`).
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, Type, profiles
from bench.measure import Rate, median_ms, run_threaded
from bench.report import Section, table

from auth_service.settings import AuthSettings

PASSWORD = "correct horse 42"  # noqa: S105 (a sample, hashed here)


@dataclass(frozen=True)
class Budget:
    samples: int  # single-thread timings per set (median taken)
    sample_seconds: float
    threaded_count: int
    threaded_seconds: float


FULL = Budget(samples=15, sample_seconds=3.0, threaded_count=1000, threaded_seconds=5.0)
QUICK = Budget(samples=3, sample_seconds=0.5, threaded_count=100, threaded_seconds=1.0)


@dataclass(frozen=True)
class Params:
    label: str
    memory_kib: int
    time_cost: int
    parallelism: int
    source: str

    @property
    def key(self) -> tuple[int, int, int]:
        return self.memory_kib, self.time_cost, self.parallelism

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )

    def short(self) -> str:
        return f"m={_mib(self.memory_kib)} t={self.time_cost} p={self.parallelism}"


def chosen(settings: AuthSettings) -> Params:
    return Params(
        "chosen",
        settings.auth_argon2_memory_kib,
        settings.auth_argon2_time_cost,
        settings.auth_argon2_parallelism,
        "AuthSettings (OWASP's stated minimum for argon2id)",
    )


RFC = profiles.RFC_9106_LOW_MEMORY
CANDIDATES = [
    Params("OWASP 46 MiB", 46 * 1024, 1, 1, "OWASP, of equal strength to 19 MiB t=2"),
    Params("OWASP 12 MiB", 12 * 1024, 3, 1, "OWASP, of equal strength to 19 MiB t=2"),
    Params("OWASP 7 MiB", 7 * 1024, 5, 1, "OWASP, of equal strength to 19 MiB t=2"),
    Params(
        "RFC 9106 second",
        RFC.memory_cost,
        RFC.time_cost,
        RFC.parallelism,
        "RFC 9106 §4 second recommendation; argon2-cffi's default",
    ),
    Params("cheap", 1024, 1, 1, "below every recommendation (for comparison only)"),
]


@dataclass(frozen=True)
class Cost:
    params: Params
    hash_ms: float
    verify_ms: float
    faults_per_verify: float
    threaded: Rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.params.label,
            "memory_kib": self.params.memory_kib,
            "time_cost": self.params.time_cost,
            "parallelism": self.params.parallelism,
            "hash_ms": self.hash_ms,
            "verify_ms": self.verify_ms,
            "page_faults_per_verify": self.faults_per_verify,
            "threaded_verifies": self.threaded.count,
            "threaded_seconds": self.threaded.seconds,
            "threaded_verifies_per_s": self.threaded.per_second,
        }


def measure(params: Params, budget: Budget, threads: int) -> Cost:
    hasher = params.hasher()
    hashed = hasher.hash(PASSWORD)

    def verify() -> None:
        hasher.verify(hashed, PASSWORD)

    hash_ms = median_ms(
        lambda: hasher.hash(PASSWORD), max_count=budget.samples, max_seconds=budget.sample_seconds
    )
    verify_ms = median_ms(verify, max_count=budget.samples, max_seconds=budget.sample_seconds)
    faults = _faults_per_call(verify, calls=3)
    threaded = run_threaded(
        verify,
        threads=threads,
        max_count=budget.threaded_count,
        max_seconds=budget.threaded_seconds,
    )
    return Cost(params, hash_ms, verify_ms, faults, threaded)


def _faults_per_call(fn: Callable[[], object], *, calls: int) -> float:
    """Minor page faults of this process per call of `fn` (memory touched for the first time)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def run(*, quick: bool) -> Section:
    budget = QUICK if quick else FULL
    settings = AuthSettings()
    threads = settings.auth_hash_threads
    mine = chosen(settings)
    sets = [mine, *(p for p in CANDIDATES if p.key != mine.key)]
    costs = [measure(p, budget, threads) for p in sets]

    section = Section("argon2", "argon2id parameters: the cost of one login's hash check")
    section.raw = {"hash_threads": threads, "sets": [c.as_dict() for c in costs]}
    section.add(
        f"argon2-cffi called directly, no service. One thread times a hash and a verify "
        f"(median of up to {budget.samples}); then {threads} threads (AUTH_HASH_THREADS) verify "
        f"at once for up to {budget.threaded_seconds:g} s: that rate is the most logins/s one "
        "auth process can reach with that set on this machine.",
        "",
    )
    section.add(
        *table(
            [
                "set",
                "parameters",
                "from",
                "hash ms",
                "verify ms",
                f"verifies/s on {threads} threads",
                f"memory, {threads} at once",
                "page faults per verify",
            ],
            [
                [
                    f"**{c.params.label}**" if c.params is mine else c.params.label,
                    c.params.short(),
                    c.params.source,
                    c.hash_ms,
                    c.verify_ms,
                    c.threaded.per_second,
                    _mib(threads * c.params.memory_kib),
                    c.faults_per_verify,
                ]
                for c in costs
            ],
        )
    )
    section.add(*_why(costs[0], costs[1:], threads))
    return section


def _why(mine: Cost, others: list[Cost], threads: int) -> list[str]:
    sentences = [
        f"**Why {mine.params.short()}.** OWASP's Password Storage Cheat Sheet gives "
        "m=19 MiB t=2 p=1 as the minimum for argon2id (its other sets trade memory for passes "
        "at the same strength on paper), so that is the security floor.",
        f"On this machine one verify costs {mine.verify_ms:.0f} ms of one core, and the "
        f"{threads} hashing threads reach {mine.threaded.per_second:.0f} verifies/s: that is "
        f"the most logins/s one auth process can serve on these {threads} cores, before any "
        "HTTP, database or token work.",
    ]
    by_label = {c.params.label: c for c in others}
    for label in ("OWASP 46 MiB", "RFC 9106 second"):
        if other := by_label.get(label):
            sentences.append(
                f"{other.params.label} ({other.params.short()}) costs {other.verify_ms:.0f} ms "
                f"per verify and allows {other.threaded.per_second:.0f}/s "
                f"({other.threaded.per_second / mine.threaded.per_second:.2f}x the chosen set)."
            )
    return [" ".join(sentences), "", _faults_note([mine, *others]), ""]


def _faults_note(costs: list[Cost]) -> str:
    note = (
        "Page faults per verify: minor faults of this process per verify, i.e. memory the "
        "kernel had to map in afresh, which costs time on top of the `m * t` work itself."
    )
    faulting = [c for c in costs if c.faults_per_verify > 100]
    if not faulting:
        return note
    names = ", ".join(f"{c.params.label} ({c.faults_per_verify:,.0f})" for c in faulting)
    return (
        f"{note} Here {names} fault in about its whole block (m / 4 KiB pages) on every "
        "verify, while the others reuse memory; likely because glibc's malloc serves blocks "
        "above its largest mmap threshold (32 MiB) with a fresh mmap each time."
    )


def _mib(kib: int) -> str:
    return f"{kib / 1024:g} MiB" if kib >= 1024 else f"{kib} KiB"
