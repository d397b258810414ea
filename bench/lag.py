"""Benchmark `lag`: how soon after a create its event is on the broker, and the order is
readable through the gateway, while creates arrive at a steady rate.

`wrk` sends POST /orders through the gateway at a steady rate: Poisson arrivals, as from
independent users (bench/load.py; a pacer that sends every worker's request on the same tick
measures its own bursts instead). Meanwhile this process
- consumes `order.created` from a queue of its own bound to `orders.events`: the **commit to
  confirm** lag of a create is the moment its event arrives here minus the order's
  `created_at`;
- for a sample of the creates, asks `GET /orders?created_from=T&created_to=T` (T its
  `created_at`) through the gateway every few milliseconds until the order is listed: the
  **projection lag**. A list is read from the projection only; `GET /orders/{id}` would not
  do, as a miss there is repaired from the command side. The polls go through
  bench/poller.py, which costs a tenth of httpx's CPU a request: the watching must take as
  little as it can from the two cores it measures.

`created_at` is stamped by order_command before its transaction, and the broker delivers an
event to its consumers once the relay's publish is routed, around the confirm: both lags
include the write's own transaction and the delivery, upper bounds of "commit to confirm"
and "commit to readable". (The event log keeps no publish time: the relay's bookkeeping row
is deleted on the confirm; its `event_log_publish_lag_seconds` histogram is for operators.)
The ceiling, in the same run before the load: a bare aio-pika publisher sending
timestamped persistent messages with confirms into a quorum queue at the same rate, and a
consumer of that queue: the least time any event takes through RabbitMQ on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
from bench import deployment, servers
from bench.creates import ORDER
from bench.load import LoadResult, Requests, drive, wrk_binary
from bench.machine import (
    group_cpu_seconds,
    machine_busy_seconds,
    own_cpu_seconds,
    server_cpu_seconds,
    wait_until_quiet,
)
from bench.measure import percentile
from bench.poller import Poller
from bench.report import Section, table

POLL_EVERY = 0.005  # seconds between two reads of the list, for a sampled order
GIVE_UP_AFTER = 10.0  # seconds: a sampled order not listed by then counts as missing
DRAIN_WITHIN = 15.0  # seconds after the load for the last events to arrive
QUIET_WITHIN = 60.0  # seconds to wait for a quiet machine before each level's load


@dataclass(frozen=True)
class Budget:
    rate: int  # creates per second
    seconds: float
    warmup_seconds: float
    samples_per_second: int  # sampled orders whose projection lag is measured

    @property
    def clients(self) -> int:
        """wrk's connections, each 5 creates/s on average (a 200 ms mean gap, so an answer's
        few milliseconds hardly slow a connection's pace)."""
        return max(4, self.rate // 5)


# Rising rates up to the target's (500/s), to show where this 2-core machine, which runs the
# whole platform, its servers and the load generator, stops keeping up.
FULL = tuple(
    Budget(rate=rate, seconds=20, warmup_seconds=5, samples_per_second=20)
    for rate in (200, 300, 400, 500)
)
QUICK = (Budget(rate=100, seconds=6, warmup_seconds=2, samples_per_second=10),)
# charged per create, with the servers
CPU_OF = ("order_command", "order_command_relay", "order_query", "status_worker")


@dataclass
class Lags:
    """Seconds, in arrival order."""

    values: list[float] = field(default_factory=list)
    missing: int = 0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.values)
        return {
            "count": len(ordered),
            "missing": self.missing,
            "p50_ms": 1000 * percentile(ordered, 50),
            "p90_ms": 1000 * percentile(ordered, 90),
            "p99_ms": 1000 * percentile(ordered, 99),
            "max_ms": 1000 * ordered[-1] if ordered else float("nan"),
        }


@dataclass
class CpuPerCreate:
    """Milliseconds of CPU per answered create, over the whole load, warm-up included."""

    machine: float
    servers: float  # Postgres, RabbitMQ, Redis
    observer: float  # this process (its consumer, its polls) and wrk
    services: dict[str, float]
    busy_cores: float  # the whole machine's, on average


class CpuMeter:
    def __init__(self, up: deployment.Platform) -> None:
        self.groups = {name: up.services[name].pgid for name in CPU_OF}
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {
            "machine": machine_busy_seconds(),
            "servers": server_cpu_seconds(),
            "observer": own_cpu_seconds(),
            "wall": time.monotonic(),
            **{name: group_cpu_seconds(pgid) for name, pgid in self.groups.items()},
        }

    def per_create(self, creates: int) -> CpuPerCreate:
        end = self._read()
        spent = {k: end[k] - self.start[k] for k in end}
        ms = {k: 1000 * v / max(1, creates) for k, v in spent.items()}
        return CpuPerCreate(
            machine=ms["machine"],
            servers=ms["servers"],
            observer=ms["observer"],
            services={name: ms[name] for name in self.groups},
            busy_cores=spent["machine"] / spent["wall"],
        )


def _wrk_binary() -> str:
    wrk = wrk_binary()
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (it paces the creates)")
    return wrk


def _created_at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["payload"]["created_at"]).timestamp()


async def _platform_lags(
    up: deployment.Platform, token: str, budget: Budget
) -> tuple[Lags, Lags, LoadResult, CpuPerCreate, int]:
    confirmed, projection = Lags(), Lags()
    measure_from = time.time() + budget.warmup_seconds
    sample_every = max(1, budget.rate // budget.samples_per_second)
    seen = 0
    expected: int | None = None  # creates answered 201: known once the load is over
    all_seen = asyncio.Event()
    polls: set[asyncio.Task[None]] = set()
    sampling = True  # off once the load and its drain are over: no poll starts after that
    headers = {"Authorization": f"Bearer {token}"}

    async def listed(poller: Poller, event: dict[str, Any], created: float) -> None:
        stamp = event["payload"]["created_at"]
        params: dict[str, str | int] = {"created_from": stamp, "created_to": stamp, "limit": 5}
        while time.time() < created + GIVE_UP_AFTER:
            status, body = await poller.get("/orders", params)
            if status == 200 and any(
                o["id"] == event["aggregate_id"] for o in json.loads(body)["items"]
            ):
                projection.values.append(time.time() - created)
                return
            await asyncio.sleep(POLL_EVERY)
        projection.missing += 1

    connection = await aio_pika.connect_robust(up.rabbitmq_url)
    async with connection, Poller(up.url, headers) as poller:
        channel = await connection.channel()
        exchange = await channel.get_exchange("orders.events")
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "order.created")

        async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            arrived = time.time()
            event = json.loads(message.body)
            created = _created_at(event)
            seen += 1
            if expected is not None and seen >= expected:
                all_seen.set()
            if created < measure_from:
                return
            confirmed.values.append(arrived - created)
            if sampling and len(confirmed.values) % sample_every == 0:
                poll = asyncio.create_task(listed(poller, event, created))
                polls.add(poll)
                poll.add_done_callback(polls.discard)

        await queue.consume(on_event, no_ack=True)
        seconds = budget.warmup_seconds + budget.seconds
        meter = CpuMeter(up)
        load = await asyncio.to_thread(
            drive,
            up.url,
            Requests.json_post("/orders", json.dumps(ORDER), headers),
            clients=budget.clients,
            seconds=seconds,
            max_requests=round(2 * budget.rate * seconds) + 100,
            generator="wrk",
            work_dir=servers.RUN_DIR,
            pace=budget.rate,
        )
        cpu = meter.per_create(load.ok)
        expected = load.ok
        if seen >= expected:
            all_seen.set()
        with contextlib.suppress(TimeoutError):  # the last events may still be on their way
            await asyncio.wait_for(all_seen.wait(), DRAIN_WITHIN)
        sampling = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*polls), GIVE_UP_AFTER)
        confirmed.missing = max(0, expected - seen)
    return confirmed, projection, load, cpu, seen


async def _bare_broker_hop(url: str, budget: Budget) -> Lags:
    """Timestamped persistent messages, with confirms, through a quorum queue at the rate."""
    lags = Lags()
    connection = await aio_pika.connect_robust(url)
    async with connection:
        publishing = await connection.channel(publisher_confirms=True)
        consuming = await connection.channel()
        queue = await consuming.declare_queue(
            "bench.bare_hop", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.purge()
        measure_from = time.time() + budget.warmup_seconds
        total = round(budget.rate * (budget.warmup_seconds + budget.seconds))
        received = 0
        all_received = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            sent = float(message.body)
            if sent >= measure_from:
                lags.values.append(time.time() - sent)
            received += 1
            if received == total:
                all_received.set()

        await queue.consume(on_message, no_ack=True)
        start = time.monotonic()
        confirms = []
        for n in range(total):
            pause = start + n / budget.rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            message = aio_pika.Message(
                str(time.time()).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            confirms.append(
                asyncio.ensure_future(
                    publishing.default_exchange.publish(message, routing_key=queue.name)
                )
            )
        await asyncio.gather(*confirms)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_received.wait(), DRAIN_WITHIN)
        lags.missing = total - received
        await queue.delete(if_unused=False, if_empty=False)
    return lags


@dataclass
class Level:
    budget: Budget
    bare: Lags
    confirmed: Lags
    projection: Lags
    load: LoadResult
    cpu: CpuPerCreate
    seen: int

    def rows(self) -> dict[str, Lags]:
        return {
            "bare broker hop": self.bare,
            "commit to confirm": self.confirmed,
            "projection": self.projection,
        }


def run(*, quick: bool) -> Section:
    _wrk_binary()
    levels = []
    with deployment.running() as up:
        token = up.log_in()
        for budget in QUICK if quick else FULL:
            bare = asyncio.run(_bare_broker_hop(up.rabbitmq_url, budget))
            # RabbitMQ goes on tidying the hop's queue, and the last level's backlog may still
            # be draining: neither belongs to this level's figures.
            wait_until_quiet(QUIET_WITHIN)
            lags = asyncio.run(_platform_lags(up, token, budget))
            levels.append(Level(budget, bare, *lags))
            up.require_alive()
    return _section(levels)


def _section(levels: list[Level]) -> Section:
    section = Section("lag", "Outbox and projection lag at a steady rate of creates")
    section.raw = {
        "levels": [
            {
                "budget": vars(level.budget),
                "load": level.load.as_dict(),
                "cpu_ms_per_create": vars(level.cpu),
                "events_seen": level.seen,
                **{name: lags.summary() for name, lags in level.rows().items()},
            }
            for level in levels
        ]
    }
    samples = levels[0].budget.samples_per_second
    section.add(
        "The whole platform as in `creates`. At each rate, `wrk` sends POST /orders through "
        "the gateway as Poisson arrivals at that rate (connections at 5 creates/s each on "
        "average, waiting an exponential time before each request); the first "
        f"{levels[0].budget.warmup_seconds:g} s are not counted.",
        "",
        "- **commit to confirm**: a create's `order.created` arriving at a consumer of the "
        "benchmark's own, minus the order's `created_at` (stamped before the write's "
        "transaction): an upper bound, as the broker delivers around its confirm.",
        f"- **projection**: for about {samples} creates a second, the first time "
        "`GET /orders?created_from=T&created_to=T` through the gateway lists the order (asked "
        f"every {1000 * POLL_EVERY:g} ms, so up to that much late), minus its `created_at`.",
        "- **bare broker hop** (the ceiling, same run, before each rate's load): a timestamped "
        "persistent message published with confirms into a quorum queue, at the same rate, "
        "until its consumer has it.",
        "",
    )
    rows = []
    for level in levels:
        for name, lags in level.rows().items():
            s = lags.summary()
            rows.append(
                [
                    level.budget.rate,
                    level.load.ok_per_second,
                    name,
                    int(s["count"]),
                    int(s["missing"]),
                    s["p50_ms"],
                    s["p90_ms"],
                    s["p99_ms"],
                    s["max_ms"],
                ]
            )
    section.add(
        *table(
            [
                "asked creates/s",
                "reached",
                "lag",
                "measured",
                "missing",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
            ],
            rows,
        )
    )
    section.add(*(_load_note(level) for level in levels), "")
    return section


def _load_note(level: Level) -> str:
    cpu, load = level.cpu, level.load
    services = ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.services.items())
    return (
        f"- At {level.budget.rate}/s asked: {load.ok_per_second:.0f} creates/s answered "
        f"({load.failed} failed), p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; "
        f"{cpu.busy_cores:.2f} of 2 cores busy, {cpu.machine:.2f} ms of CPU per create on the "
        f"whole machine (Postgres, RabbitMQ and Redis {cpu.servers:.2f}; {services}; the "
        f"benchmark's own consumer and polls, and wrk, {cpu.observer:.2f})."
    )
