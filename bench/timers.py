"""Benchmark `timers`: 100,000 orders' timers waiting at once, then all coming due.

Each path runs on a fresh RabbitMQ node of the benchmark's own (deploy/stack/rabbit_node.py:
its own ports and data under .run/bench/, no plugins), so nothing else's queues or memory are in
the figures and the machine's RabbitMQ is not touched. A timer is an `order.created` event
published to `orders.events`, as order_command's relay does, as fast as the broker confirms
them; a wait queue bound there holds each for the wait:

- **status_worker**: the real `status-worker serve` (STATUS_ADVANCE_INTERVAL = the wait), with
  the wait queue it binds and the due queue it consumes.
- **bare** (the ceiling): a wait queue and a due queue with the same arguments and binding,
  the due events passed on by plain aio-pika in a process of its own
  (bench/bare_forwarder.py): take, make the command, publish it confirmed, ack.

Both send each due timer on as `order.advance_status` to `orders.commands`, where the
benchmark's own queue takes it and notes when it came: how late it is = that time - (the time
its event was published + the wait). While every timer waits: the node's resident memory (all
its processes), the wait queue's own memory (`rabbitmqctl list_queues memory`) and the node's
data on disk.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
from bench import servers
from bench.machine import group_cpu_seconds, group_rss_bytes
from bench.measure import percentile
from bench.report import Section, table
from deploy.stack.launcher import Launcher
from deploy.stack.rabbit_node import RabbitNode, free_port

from shared.broker import build_broker
from shared.events import AdvanceStatus, Envelope, OrderCreated, OrderItem, OrderStatus
from shared.topology import ORDERS_EVENTS, consumer_queue, delay_queue
from status_worker.topology import TimerTopology

CAPTURE = "bench.advance_status"
PREFETCH: int = inspect.signature(build_broker).parameters["prefetch"].default
PUBLISH_WINDOW = 1_000  # timers published at once, each confirmed


@dataclass(frozen=True)
class Budget:
    timers: int
    wait_seconds: float  # the interval: longer than the fill takes, so all wait at once
    drain_within: float


FULL = Budget(timers=100_000, wait_seconds=60.0, drain_within=900.0)
QUICK = Budget(timers=2_000, wait_seconds=5.0, drain_within=120.0)


@dataclass
class Outcome:
    path: str
    timers: int
    fill_seconds: float
    all_waiting: bool  # the last timer was set before the first came due
    rss_before: int
    rss_waiting: int
    wait_queue_memory: int
    disk_bytes: int
    late_ms: list[float]
    drain_seconds: float  # from the first timer due to the last one sent on
    cpu_seconds: float  # of the process passing timers on, while it did

    @property
    def per_timer_bytes(self) -> float:
        return (self.rss_waiting - self.rss_before) / self.timers

    @property
    def fired_per_second(self) -> float:
        return self.timers / self.drain_seconds if self.drain_seconds > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.late_ms)
        raw = {k: v for k, v in asdict(self).items() if k != "late_ms"}
        return {
            **raw,
            "late_ms_p50": percentile(ordered, 50),
            "late_ms_p99": percentile(ordered, 99),
            "late_ms_max": ordered[-1] if ordered else float("nan"),
            "fired_per_second": self.fired_per_second,
            "per_timer_bytes": self.per_timer_bytes,
        }


def event_body() -> tuple[str, bytes]:
    """A timer as order_command's relay sets it: a new order's `order.created`. Its order id
    and its body."""
    now = datetime.now(UTC)
    order = OrderCreated(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        items=(OrderItem(name="tea", price=Decimal("2.50"), quantity=2),),
        total_price=Decimal("5.00"),
        currency="USD",
        status=OrderStatus.PENDING,
        version=1,
        is_deleted=False,
        created_at=now,
        updated_at=now,
    )
    event = Envelope.wrap(order, aggregate_id=order.id, version=1, occurred_at=now)
    return str(order.id), event.model_dump_json().encode()


class Arrivals:
    """The benchmark's queue on orders.commands: when each timer came, and how late."""

    def __init__(self, expected: int, wait_seconds: float) -> None:
        self.expected = expected
        self.wait_seconds = wait_seconds
        self.set_at: dict[str, float] = {}  # order id -> when its event was published
        self.late_ms: list[float] = []
        self.first_due = float("inf")
        self.last_at = 0.0
        self.done = asyncio.Event()

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        now = time.time()
        due = self.set_at[json.loads(message.body)["aggregate_id"]] + self.wait_seconds
        self.late_ms.append(1000 * (now - due))
        self.first_due, self.last_at = min(self.first_due, due), max(self.last_at, now)
        if len(self.late_ms) >= self.expected:
            self.done.set()


async def fill(channel: aio_pika.abc.AbstractChannel, arrivals: Arrivals, count: int) -> float:
    """Publish `count` order events to orders.events, each confirmed (noting when in
    `arrivals`); the seconds it took."""
    started = time.monotonic()
    exchange = await channel.get_exchange(ORDERS_EVENTS.name)

    async def publish() -> None:
        order_id, body = event_body()
        arrivals.set_at[order_id] = time.time()
        await exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=OrderCreated.ROUTING_KEY,
            mandatory=True,
        )

    for first in range(0, count, PUBLISH_WINDOW):
        window = min(PUBLISH_WINDOW, count - first)
        await asyncio.gather(*(publish() for _ in range(window)))
    return time.monotonic() - started


async def queue_memory(node: RabbitNode, name: str) -> int:
    rows = json.loads(await node.ctl("list_queues", "name", "memory", "--formatter", "json"))
    return next((int(row["memory"]) for row in rows if row["name"] == name), 0)


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


async def until(probe: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within:g} s")
        await asyncio.sleep(0.1)


async def consumed(connection: aio_pika.abc.AbstractConnection, queue: str) -> bool:
    """A consumer on `queue` (a channel of its own: a missing queue closes the channel)."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False  # not declared yet
    await channel.close()
    return (declared.declaration_result.consumer_count or 0) > 0


def worker_env(url: str, budget: Budget) -> dict[str, str]:
    return {
        **os.environ,
        "RABBITMQ_URL": url,
        "STATUS_ADVANCE_INTERVAL": str(budget.wait_seconds),
        "STATUS_WORKER_HOST": servers.HOST,
        "STATUS_WORKER_PORT": str(free_port()),
        "OTEL_TRACES_EXPORTER": "none",
    }


async def measure(path: str, budget: Budget) -> Outcome:
    """One path on a fresh node: start what passes timers on, fill, wait, drain."""
    directory = servers.RUN_DIR / f"rabbitmq-{path}"
    shutil.rmtree(directory, ignore_errors=True)
    node = RabbitNode(directory)
    await node.start()
    topology = TimerTopology.for_interval(budget.wait_seconds)
    try:
        connection = await aio_pika.connect(node.url)
        channel = await connection.channel(publisher_confirms=True)
        commands = await channel.declare_exchange(
            "orders.commands", aio_pika.ExchangeType.DIRECT, durable=True
        )
        events = await channel.declare_exchange(
            ORDERS_EVENTS.name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        capture = await channel.declare_queue(
            CAPTURE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await capture.bind(commands, AdvanceStatus.ROUTING_KEY)
        arrivals = Arrivals(budget.timers, budget.wait_seconds)
        await capture.consume(arrivals.on_message, no_ack=True)
        with Launcher(os.environ, log_dir=servers.RUN_DIR) as launcher:
            if path == "status_worker":
                env = worker_env(node.url, budget)
                argv = [str(Path(sys.executable).with_name("status-worker")), "serve"]
                passer = launcher.start("status_worker", argv, env=env)
                url = f"http://{servers.HOST}:{env['STATUS_WORKER_PORT']}/readyz"
                servers.wait_ready(launcher, passer, url)
                wait, due = topology.wait.name, topology.due.name
            else:
                due_queue = consumer_queue("bench.due", "bench.due")
                wait_queue = delay_queue("bench.wait", budget.wait_seconds, due=due_queue)
                for queue in (due_queue, wait_queue):
                    await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)
                bound = await channel.get_queue(wait_queue.name)
                await bound.bind(events, OrderCreated.ROUTING_KEY)
                wait, due = wait_queue.name, due_queue.name
                argv = [sys.executable, "-m", "bench.bare_forwarder", node.url, due, str(PREFETCH)]
                passer = launcher.start("bare_forwarder", argv)
            await until(lambda: consumed(connection, due), 60, f"a consumer on {due}")

            rss_before = group_rss_bytes(node.pgid)
            fill_seconds = await fill(channel, arrivals, budget.timers)
            rss_waiting, wait_memory = group_rss_bytes(node.pgid), await queue_memory(node, wait)
            on_disk = disk_bytes(directory / "mnesia")
            cpu_before = group_cpu_seconds(passer.pgid)
            try:
                await asyncio.wait_for(
                    arrivals.done.wait(), budget.wait_seconds + budget.drain_within
                )
            except TimeoutError:
                raise RuntimeError(
                    f"{path}: {len(arrivals.late_ms)} of {budget.timers} timers came; the end of "
                    f"{passer.log}:\n{passer.tail()}"
                ) from None
            cpu_seconds = group_cpu_seconds(passer.pgid) - cpu_before
        await connection.close()
    finally:
        await node.stop()
    return Outcome(
        path=path,
        timers=budget.timers,
        fill_seconds=fill_seconds,
        all_waiting=fill_seconds < budget.wait_seconds,
        rss_before=rss_before,
        rss_waiting=rss_waiting,
        wait_queue_memory=wait_memory,
        disk_bytes=on_disk,
        late_ms=arrivals.late_ms,
        drain_seconds=arrivals.last_at - arrivals.first_due,
        cpu_seconds=cpu_seconds,
    )


def run(*, quick: bool) -> Section:
    budget = QUICK if quick else FULL
    bare = asyncio.run(measure("bare", budget))
    worker = asyncio.run(measure("status_worker", budget))
    return _section(budget, bare, worker)


def _mib(value: float) -> float:
    return value / 2**20


def _section(budget: Budget, bare: Outcome, worker: Outcome) -> Section:
    section = Section("timers", f"{budget.timers:,} timers waiting at once, then all due")
    section.raw = {
        "budget": asdict(budget),
        "bare": bare.summary(),
        "status_worker": worker.summary(),
    }
    section.disturbed = not (bare.all_waiting and worker.all_waiting)
    section.add(
        f"{budget.timers:,} timers (order.created events, {len(event_body()[1])} bytes each) "
        "published to orders.events as fast as a fresh single RabbitMQ node confirms them "
        f"({PUBLISH_WINDOW:,} at a time), held by a quorum wait queue bound there with a "
        f"{budget.wait_seconds:g} s TTL, so all wait at once and come due within the time the "
        "fill took. Each path is passed on by one process with a prefetch of "
        f"{PREFETCH}: the real `status-worker serve`, or the bare ceiling (plain aio-pika: take, "
        "make the command, publish it confirmed, ack). Lateness: when the command reached the "
        "benchmark's queue on orders.commands, minus the time its event was published plus "
        "the wait.",
        "",
    )
    rows = []
    for outcome in (bare, worker):
        s = outcome.summary()
        rows.append(
            [
                outcome.path,
                outcome.timers / outcome.fill_seconds,
                _mib(outcome.rss_before),
                _mib(outcome.rss_waiting),
                outcome.per_timer_bytes,
                _mib(outcome.wait_queue_memory),
                _mib(outcome.disk_bytes),
                s["late_ms_p50"],
                s["late_ms_p99"],
                s["late_ms_max"],
                outcome.fired_per_second,
                1000 * outcome.cpu_seconds / outcome.timers,
            ]
        )
    section.add(
        *table(
            [
                "path",
                "set/s",
                "node RSS before MiB",
                "node RSS waiting MiB",
                "RSS per timer bytes",
                "wait queue memory MiB",
                "data on disk MiB",
                "late p50 ms",
                "late p99 ms",
                "late max ms",
                "fired/s",
                "CPU ms per timer",
            ],
            rows,
        )
    )
    ratio = worker.fired_per_second / bare.fired_per_second
    section.add(
        f"**status_worker ÷ bare**: fired/s {ratio:.2f}; late p99 "
        f"{worker.summary()['late_ms_p99'] / bare.summary()['late_ms_p99']:.2f}x the bare "
        f"one; CPU per timer {worker.cpu_seconds / max(bare.cpu_seconds, 1e-9):.2f}x.",
        "",
        "- Timers come due at the rate they were set (the wait queue is FIFO with one TTL), "
        "faster than one process passes them on, so lateness grows through the burst: p99 is "
        "about the time the passing process needs for all of them, not a delay of the broker.",
        "- The broker's memory for waiting timers is the same on both paths (the same messages "
        "in the same kind of queue); the worker adds nothing there.",
        *(
            []
            if not section.disturbed
            else [
                f"- **The fill took longer than the wait ({bare.fill_seconds:.1f} s, "
                f"{worker.fill_seconds:.1f} s)**: the first timers came due before the last "
                "were set, so the memory figures are below what all of them waiting takes."
            ]
        ),
        "",
    )
    return section
