"""Benchmark `logins`: POST /auth/token per second through the real auth service.

The service runs as `auth-service serve` on 127.0.0.1:18101 against its own database
(`auth_bench`); when deploy/stack/gateway.py can render the nginx gateway, the same load also
goes through nginx on 127.0.0.1:18100 with the login rate limit lifted. The ceiling, measured
in the same run before and after the load: bare argon2 verifies/s with the service's own
parameters on as many threads as its hash pool (AUTH_HASH_THREADS).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import httpx
from bench import servers
from bench.argon2_params import PASSWORD as ARGON2_PASSWORD
from bench.argon2_params import Params, chosen
from bench.load import Requests
from bench.measure import Rate, run_threaded
from bench.points import Point, Target, measure, pick_generator
from bench.report import Section, table
from deploy.stack.launcher import Launcher

from auth_service.settings import AuthSettings

USERS = 8
PASSWORD = "bench-login-password-1"  # noqa: S105 (benchmark users only)
HASH_THREADS = 2
NOISE_TOLERANCE = 1.15  # highest ÷ lowest bare ceiling of a run that counts as undisturbed


@dataclass(frozen=True)
class Budget:
    clients: tuple[int, ...]
    warmup_seconds: float
    seconds: float
    max_requests: int
    ceiling_seconds: float
    ceiling_count: int


FULL = Budget(
    (1, 4, 16),
    warmup_seconds=3,
    seconds=20,
    max_requests=20_000,
    ceiling_seconds=6,
    ceiling_count=5_000,
)
QUICK = Budget(
    (4,), warmup_seconds=1, seconds=4, max_requests=2_000, ceiling_seconds=2, ceiling_count=1_000
)


@dataclass(frozen=True)
class Ceiling:
    """Bare argon2 verifies on the hash pool's number of threads, and the CPU they took."""

    rate: Rate
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.rate.per_second

    @property
    def cpu_ms_per_verify(self) -> float:
        """Independent of what else runs on the machine, unlike the rate."""
        return 1000 * self.cpu_seconds / max(1, self.rate.count)

    def as_dict(self) -> dict[str, float]:
        return {**self.rate.as_dict(), "cpu_seconds": self.cpu_seconds}


@dataclass
class Outcome:
    params: Params
    gateway: str
    ceilings: list[Ceiling] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)

    @property
    def verify_cpu_ms(self) -> float:
        return statistics.median(c.cpu_ms_per_verify for c in self.ceilings)

    @property
    def ceiling_spread(self) -> float:
        """Highest ÷ lowest ceiling of the run: near 1.0 when nothing else took the cores."""
        rates = [c.per_second for c in self.ceilings]
        return max(rates) / min(rates)


def usernames() -> list[str]:
    return [f"bench_login_{i}" for i in range(USERS)]


def register_users(base_url: str) -> None:
    """Create the benchmark's users; 409 (made by an earlier run) is as good as 201."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for name in usernames():
            body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            response = client.post("/auth/create_user", json=body)
            if response.status_code not in (201, 409):
                raise RuntimeError(f"create_user {name}: {response.status_code} {response.text}")
        check = client.post("/auth/token", data={"username": usernames()[0], "password": PASSWORD})
        if check.status_code != 200 or "access_token" not in check.json():
            raise RuntimeError(f"a benchmark login fails: {check.status_code} {check.text}")


def login_post() -> Requests:
    return Requests.form_post(
        "/auth/token",
        [urlencode({"username": name, "password": PASSWORD}) for name in usernames()],
    )


def bare_ceiling(params: Params, budget: Budget) -> Ceiling:
    hasher = params.hasher()
    hashed = hasher.hash(ARGON2_PASSWORD)
    cpu_before = time.process_time()
    rate = run_threaded(
        lambda: hasher.verify(hashed, ARGON2_PASSWORD),
        threads=HASH_THREADS,
        max_count=budget.ceiling_count,
        max_seconds=budget.ceiling_seconds,
    )
    return Ceiling(rate, time.process_time() - cpu_before)


def run(*, quick: bool, client: str = "auto") -> Section:
    budget = QUICK if quick else FULL
    generator = pick_generator(client)
    params = chosen(AuthSettings())
    argon2 = {
        "memory_kib": params.memory_kib,
        "time_cost": params.time_cost,
        "parallelism": params.parallelism,
    }
    plan = servers.plan_gateway()
    with Launcher(os.environ, log_dir=servers.RUN_DIR) as launcher:
        auth = servers.start_auth(launcher, servers.auth_env(argon2, HASH_THREADS))
        direct_url = f"http://{servers.HOST}:{servers.AUTH_PORT}"
        register_users(direct_url)
        targets = [Target("service directly", direct_url, {"auth service": auth})]
        gateway_note = plan.reason
        if plan.argv is not None:
            try:
                nginx = servers.start_gateway(launcher, plan.argv)
            except RuntimeError as exc:
                gateway_note = f"nginx did not start: {exc}"
            else:
                targets.append(
                    Target(
                        "through nginx",
                        f"http://{servers.HOST}:{servers.GATEWAY_PORT}",
                        {"auth service": auth, "nginx": nginx},
                    )
                )
        outcome = Outcome(params, gateway_note)
        outcome.ceilings.append(bare_ceiling(params, budget))
        for clients in budget.clients:
            level = [
                measure(target, login_post(), clients, budget, generator) for target in targets
            ]
            outcome.ceilings.append(bare_ceiling(params, budget))
            ceiling = statistics.mean(c.per_second for c in outcome.ceilings[-2:])
            outcome.points += [replace(point, ceiling=ceiling) for point in level]
    return _section(outcome, budget, generator, gateway_used=len(targets) > 1)


def _section(outcome: Outcome, budget: Budget, generator: str, *, gateway_used: bool) -> Section:
    section = Section("logins", "POST /auth/token: logins per second through the real service")
    section.raw = {
        "argon2": vars(outcome.params),
        "hash_threads": HASH_THREADS,
        "generator": generator,
        "gateway": outcome.gateway,
        "ceilings": [r.as_dict() for r in outcome.ceilings],
        "points": [p.as_dict() for p in outcome.points],
    }
    rates = ", ".join(f"{c.per_second:.1f}" for c in outcome.ceilings)
    section.add(
        f"`auth-service serve` on 127.0.0.1:{servers.AUTH_PORT} (database `auth_bench`, "
        f"AUTH_HASH_THREADS={HASH_THREADS}, argon2id {outcome.params.short()}); {USERS} users, "
        f"each client logs them in in turn with the password form. {generator} drives "
        f"closed-loop load: each client sends its next request when the last one is answered, "
        f"for {budget.seconds:g} s (at most {budget.max_requests:,} requests) after a "
        f"{budget.warmup_seconds:g} s warm-up.",
        "",
        f"**Ceiling**, same run: bare argon2-cffi verifies/s with the same parameters on "
        f"{HASH_THREADS} threads, in the benchmark process while the service idles, measured "
        f"before the first level of clients, between levels and after the last: {rates}/s. "
        "Each row's ÷ bare uses the mean of the two ceilings just before and after its level. "
        f"A bare verify took {outcome.verify_cpu_ms:.1f} ms of CPU (median; CPU time does not "
        "depend on what else runs, the rate does).",
        "",
        *_noise_warning(outcome),
        "**Gateway**: "
        + (
            f"measured through nginx too (config {outcome.gateway}, with "
            "GATEWAY_AUTH_RATE=100000r/s and GATEWAY_AUTH_BURST=100000)."
            if gateway_used
            else f"not measured ({outcome.gateway}); the figures are for the service directly."
        ),
        "",
    )
    section.add(
        *table(
            [
                "target",
                "clients",
                "logins/s",
                "p50 ms",
                "p99 ms",
                "failed",
                "÷ bare verify/s",
                "auth CPU ms per login",
                "CPU: auth service",
                "nginx",
                "load generator",
                "whole machine",
            ],
            [
                [
                    p.target,
                    p.load.clients,
                    p.load.ok_per_second,
                    p.load.p50_ms,
                    p.load.p99_ms,
                    p.load.failed,
                    p.ratio,
                    1000 * p.cpu_seconds["auth service"] / max(1, p.load.ok),
                    p.cores("auth service"),
                    p.cores("nginx"),
                    p.cores("load generator"),
                    p.cores("machine"),
                ]
                for p in outcome.points
            ],
        )
    )
    section.add(*_notes(outcome))
    section.disturbed = outcome.ceiling_spread > NOISE_TOLERANCE
    return section


def _notes(outcome: Outcome) -> list[str]:
    verify_ms = outcome.verify_cpu_ms
    notes = [
        f"- **Auth CPU ms per login**: the service's CPU time over the run ÷ logins. A bare "
        f"verify costs {verify_ms:.1f} ms of CPU; the rest is HTTP, SQL, JSON and the EdDSA "
        "signature. A login is one SELECT, one argon2 "
        "verify on the hash pool, one INSERT of the refresh token and one signature.",
    ]
    direct = [p for p in outcome.points if p.target == "service directly"]
    if busiest := max(direct, key=lambda p: p.load.clients, default=None):
        rate, cores = busiest.load.ok_per_second, busiest.cores("auth service")
        hashing = rate * verify_ms / 1000
        notes.append(
            f"- **Where the gap to the ceiling goes**: at {busiest.load.clients} clients the "
            f"service used {cores:.2f} cores for {rate:.1f} logins/s, of which about "
            f"{hashing:.2f} cores is argon2 (if a verify costs the service what it costs bare) "
            f"and {cores - hashing:.2f} cores everything else "
            f"({1000 * (cores - hashing) / rate:.1f} ms per login). That work shares the "
            f"{HASH_THREADS} cores with the hash threads, which is why logins/s stays at "
            f"{busiest.ratio:.2f} of the bare ceiling."
        )
    if single := next((p for p in direct if p.load.clients == 1), None):
        notes.append(
            f"- **1 client** keeps only one hash thread busy, so its ÷ bare is about half by "
            f"construction; its p50 ({single.load.p50_ms:.1f} ms, against {verify_ms:.1f} ms "
            "of CPU for a bare verify) is the latency of a login on an otherwise idle service."
        )
    notes += [
        "- **The load generator, nginx, Postgres and the service share the same 2 cores.** "
        'The CPU columns are in cores (1.00 = one core busy for the whole run); "whole '
        'machine" also counts Postgres and anything else running at the time.',
        "- Closed-loop clients: once the hash pool is saturated, latency grows with the number "
        "of clients (about clients ÷ logins/s), not logins/s.",
        "",
    ]
    return notes


def _noise_warning(outcome: Outcome) -> list[str]:
    if outcome.ceiling_spread <= NOISE_TOLERANCE:
        return []
    return [
        f"**Noisy run**: the bare ceiling moved by {outcome.ceiling_spread - 1:.0%} within "
        "this run, so something else was using the cores; the ratios are the figures to trust, "
        "and even they only roughly.",
        "",
    ]
