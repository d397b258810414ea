"""Benchmark `reads`: GET /orders/{id} and GET /orders per second through the gateway.

The whole platform runs as in `creates`. One user creates orders through the gateway and waits
until the projection lists them all; then closed-loop clients read: `GET /orders/{id}` over
those orders in turn, and `GET /orders?limit=50` (the user's newest page). Every read checks
the access token, reads Redis and answers the stored JSON.

The ceiling, in the same run and interleaved with the platform: the same nginx config with
order_query's upstream pointed at `bench/bare_app.py`, whose two reads are one Redis GET each
of a blob holding the platform's own answer (so the same bytes cross the wire).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import httpx
import redis
from bench import deployment
from bench.bare_app import ORDER_KEY, PAGE_KEY
from bench.creates import ORDER
from bench.load import Requests
from bench.points import Point, Target, measure, pick_generator
from bench.report import Section, table

PAGE = 50
PLATFORM, CEILING = "platform", "bare ceiling"


@dataclass(frozen=True)
class Budget:
    orders: int
    clients: tuple[int, ...]
    warmup_seconds: float
    seconds: float
    max_requests: int


FULL = Budget(orders=500, clients=(64,), warmup_seconds=3, seconds=20, max_requests=500_000)
QUICK = Budget(orders=100, clients=(64,), warmup_seconds=1, seconds=4, max_requests=100_000)


def _seed(up: deployment.Platform, token: str, count: int) -> list[str]:
    """`count` orders of the user, listed by the projection; the bare app's blobs."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=up.url, headers=headers, timeout=30) as client:
        ids = []
        for _ in range(count):
            made = client.post("/orders", json=ORDER)
            if made.status_code != 201:
                raise RuntimeError(f"create: {made.status_code} {made.text}")
            ids.append(made.json()["id"])
        deadline = time.monotonic() + 60
        while True:
            listed = client.get("/orders", params={"limit": 500}).json()["items"]
            if {o["id"] for o in listed} >= set(ids[-min(count, 500) :]):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the projection did not list the benchmark's orders in 60 s")
            time.sleep(0.2)  # the projection is asynchronous: a bounded wait for it
        one = client.get(f"/orders/{ids[0]}")
        page = client.get("/orders", params={"limit": PAGE})
    store = redis.Redis.from_url(up.env["REDIS_URL"])
    store.set(ORDER_KEY, one.content)
    store.set(PAGE_KEY, page.content)
    return ids


def run(*, quick: bool, client: str = "auto") -> Section:
    budget = QUICK if quick else FULL
    generator = pick_generator(client)
    with deployment.running() as up:
        token = up.log_in()
        ids = _seed(up, token, budget.orders)
        auth = {"Authorization": f"Bearer {token}"}
        reads = {
            "GET /orders/{id}": Requests("GET", [f"/orders/{i}" for i in ids], headers=auth),
            f"GET /orders?limit={PAGE}": Requests("GET", [f"/orders?limit={PAGE}"], headers=auth),
        }
        ours = Target(PLATFORM, up.url, {**up.services, "nginx": up.gateway})
        bare = Target(CEILING, up.ceiling_url, {"bare app": up.bare, "nginx": up.ceiling_gateway})
        points: dict[str, list[Point]] = {}
        for name, requests in reads.items():
            for clients in budget.clients:
                level = [measure(t, requests, clients, budget, generator) for t in (ours, bare)]
                ceiling = level[1].load.ok_per_second
                points.setdefault(name, []).extend(replace(p, ceiling=ceiling) for p in level)
        up.require_alive()
    return _section(points, budget, generator)


def _section(points: dict[str, list[Point]], budget: Budget, generator: str) -> Section:
    section = Section("reads", "GET /orders/{id} and GET /orders: reads per second")
    section.raw = {
        "generator": generator,
        "orders": budget.orders,
        "points": {name: [p.as_dict() for p in level] for name, level in points.items()},
    }
    section.add(
        f"The whole platform as in `creates`; one user with {budget.orders} orders, all "
        f"projected before the reads start. {generator} drives closed-loop clients for "
        f"{budget.seconds:g} s after a {budget.warmup_seconds:g} s warm-up: `GET /orders/{{id}}` "
        f"over the user's orders in turn, and `GET /orders?limit={PAGE}`. The platform and the "
        "ceiling take turns.",
        "",
        "**Ceiling**, same run: the same nginx config with order_query's upstream pointed at "
        "`bench/bare_app.py` (FastAPI under uvicorn; each read is one Redis GET of a blob "
        "holding the platform's own answer; no token check). ÷ ceiling: reads/s ÷ the "
        "ceiling's, same path and clients.",
        "",
    )
    section.add(
        *table(
            [
                "read",
                "target",
                "clients",
                "reads/s",
                "p50 ms",
                "p99 ms",
                "failed",
                "÷ ceiling",
                "CPU: order_query",
                "CPU: bare app",
                "CPU: nginx",
                "load generator",
                "whole machine",
            ],
            [
                [
                    name,
                    p.target,
                    p.load.clients,
                    p.load.ok_per_second,
                    p.load.p50_ms,
                    p.load.p99_ms,
                    p.load.failed,
                    p.ratio,
                    p.cores("order_query"),
                    p.cores("bare app"),
                    p.cores("nginx"),
                    p.cores("load generator"),
                    p.cores("machine"),
                ]
                for name, level in points.items()
                for p in level
            ],
        )
    )
    notes = ["- CPU columns are in cores (1.00 = one core busy for the whole run)."]
    for name, level in points.items():
        for p in level:
            if p.target == PLATFORM and p.load.ok:
                ms = 1000 * p.cpu_seconds["order_query"] / p.load.ok
                notes.append(f"- {name}: order_query spent {ms:.2f} ms of CPU per read.")
    section.add(*notes, "")
    return section
