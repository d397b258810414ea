"""Benchmark `creates`: POST /orders per second through the gateway, the whole platform running.

Closed-loop clients (16 and 64) create orders through nginx as one signed-in user; every
create is validated, appended to its event log, published by the relay, projected by
order_query and given a timer by status_worker, all on this machine's 2 cores. The ceiling,
in the same run and interleaved level by level: the same nginx config with order_command's
upstream pointed at `bench/bare_app.py`, whose POST /orders is one asyncpg insert transaction.

Drain: once the load stops, how long until the projection holds every order made (its
everybody index counts as many as order_command's table): what the front accepted beyond
what the pipeline carries shows there. Its CPU counts as the run's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import asyncpg
import redis.asyncio as aioredis
from bench import deployment
from bench.load import Requests
from bench.points import Point, Target, measure, pick_generator
from bench.report import Section, table

from order_query.projection import LIVE, index_key, prefix
from shared.db import asyncpg_dsn

ORDER = {
    "items": [
        {"name": "green tea", "price": "2.50", "quantity": 2},
        {"name": "lemon cake", "price": "3.99", "quantity": 1},
    ]
}
PLATFORM, CEILING = "platform", "bare ceiling"
SERVICES = (
    "order_command",
    "order_command_relay",
    "order_query",
    "status_worker",
    "auth",
    "nginx",
)
SERVERS = ("Postgres", "RabbitMQ", "Redis")  # bench.machine.server_cpu_by_server's


@dataclass(frozen=True)
class Budget:
    clients: tuple[int, ...]
    warmup_seconds: float
    seconds: float
    max_requests: int


FULL = Budget((16, 64), warmup_seconds=3, seconds=20, max_requests=200_000)
QUICK = Budget((16,), warmup_seconds=1, seconds=4, max_requests=50_000)


def run(*, quick: bool, client: str = "auto") -> Section:
    budget = QUICK if quick else FULL
    generator = pick_generator(client)
    with deployment.running() as up:
        token = up.log_in()
        create = Requests.json_post(
            "/orders", json.dumps(ORDER), {"Authorization": f"Bearer {token}"}
        )
        ours = Target(
            PLATFORM,
            up.url,
            {**up.services, "nginx": up.gateway},
        )
        bare = Target(CEILING, up.ceiling_url, {"bare app": up.bare, "nginx": up.ceiling_gateway})
        points: list[Point] = []
        drained = lambda: asyncio.run(_drained(up.env))  # noqa: E731
        for clients in budget.clients:
            level = [
                measure(ours, create, clients, budget, generator, drained=drained),
                measure(bare, create, clients, budget, generator),
            ]
            ceiling = level[1].load.ok_per_second
            points += [replace(point, ceiling=ceiling) for point in level]
        up.require_alive()
    return _section(points, budget, generator)


async def _drained(env: Mapping[str, str], within: float = 300.0) -> float:
    """Seconds from now until the projection holds as many orders as order_command does."""
    started = time.perf_counter()
    db = await asyncpg.connect(asyncpg_dsn(env["ORDERS_DATABASE_URL"]))
    redis = aioredis.Redis.from_url(env["REDIS_URL"])
    try:
        made: int = await db.fetchval("select count(*) from orders")
        while time.perf_counter() - started < within:
            live = await redis.get(LIVE)
            index = prefix(None if live is None else int(live)) + index_key()
            if await redis.zcard(index) >= made:
                return time.perf_counter() - started
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the pipeline had not carried {made} orders after {within:g} s")
    finally:
        await db.close()
        await redis.aclose()


def _section(points: list[Point], budget: Budget, generator: str) -> Section:
    section = Section("creates", "POST /orders: creates per second through the gateway")
    section.raw = {"generator": generator, "points": [p.as_dict() for p in points]}
    section.add(
        "The whole platform as `make run` starts it (deploy/processes.toml: auth, order_command, "
        "order_query, status_worker; nginx rendered by deploy/stack/gateway.py with the rate "
        "limits lifted), on ports, databases, a RabbitMQ vhost and a Redis database of the "
        "benchmark's own. One user's access token; each request creates an order of 2 items. "
        f"{generator} drives closed-loop load for {budget.seconds:g} s after a "
        f"{budget.warmup_seconds:g} s warm-up; the platform and the ceiling take turns at each "
        "level of clients.",
        "",
        "**Ceiling**, same run: the same nginx config with order_command's upstream pointed at "
        "`bench/bare_app.py` (FastAPI under uvicorn, POST /orders = one asyncpg INSERT in a "
        "transaction, no auth, no validation, no events). ÷ ceiling: creates/s ÷ the "
        "ceiling's at the same number of clients.",
        "",
    )
    columns = [*SERVICES, "bare app", *SERVERS]
    section.add(
        *table(
            [
                "target",
                "clients",
                "creates/s",
                "p50 ms",
                "p99 ms",
                "failed",
                "drain s",
                "÷ ceiling",
                *(f"CPU: {c}" for c in columns),
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
                    p.drain_seconds if p.target == PLATFORM else float("nan"),
                    p.ratio,
                    *(p.cores(c) for c in columns),
                    p.cores("load generator"),
                    p.cores("machine"),
                ]
                for p in points
            ],
        )
    )
    section.add(*_notes(points))
    return section


def _notes(points: list[Point]) -> list[str]:
    notes = [
        "- CPU columns are in cores (1.00 = one core busy for the whole run); n/a where the "
        "process takes no part. Postgres, RabbitMQ and Redis: every process of each server "
        "(the machine's: whatever else uses them meanwhile counts too, which the header's "
        'figure of other processes shows); "whole machine" counts them, and the kernel.',
        "- Drain: once the load stopped, the seconds until the projection held every order "
        "made (what the front accepted beyond what the pipeline carried); its CPU is counted "
        "in the run's, and the cores are over the run and the drain together.",
    ]
    for p in points:
        if p.target != PLATFORM or not p.load.ok:
            continue
        per_create = {
            c: 1000 * p.cpu_seconds[c] / p.load.ok
            for c in (*SERVICES, *SERVERS)
            if c in p.cpu_seconds
        }
        machine = 1000 * p.cpu_seconds["machine"] / p.load.ok
        spent = ", ".join(f"{c} {ms:.2f}" for c, ms in per_create.items())
        notes.append(
            f"- At {p.load.clients} clients one create cost {machine:.2f} ms of CPU on the "
            f"whole machine; of it, ms per create: {spent}."
        )
    notes.append("")
    return notes
