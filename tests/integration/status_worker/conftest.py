"""status_worker against real RabbitMQ and the real order_command (the session's app, in
process): the worker in process too, or as a `status-worker serve` process a test can kill.

Timers wait INTERVAL seconds here (the wait queue `status_worker.wait.2000ms`, apart from the
60 s one of a local stack or the e2e stack)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager
from deploy.stack.databases import fresh_database
from deploy.stack.launcher import spawn
from deploy.stack.rabbit_node import free_port
from deploy.stack.stopping import stop
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.conftest import make_settings
from tests.support.relaying import relayed
from tests.support.servers import Servers
from tests.support.tokens import TEST_KEYS, Caller
from tests.support.vhosts import own_vhost
from tests.support.waiting import eventually

from order_command.cli import MIGRATIONS
from order_command.consumers import ADVANCE_QUEUE
from order_command.main import create_app as create_command_app
from shared.events import OrderStatus, Role
from status_worker.main import create_app
from status_worker.settings import StatusWorkerSettings
from status_worker.topology import TimerTopology

INTERVAL = 2.0  # seconds: STATUS_ADVANCE_INTERVAL for these tests
TOPOLOGY = TimerTopology.for_interval(INTERVAL)
SERVICE = Caller(Role.SERVICE)
CHAIN = [OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELED]
ROOT = Path(__file__).resolve().parents[3]


def worker_settings(rabbitmq_url: str, **overrides: Any) -> StatusWorkerSettings:
    values: dict[str, Any] = {"status_advance_interval": INTERVAL, **overrides}
    return StatusWorkerSettings(environment="test", rabbitmq_url=rabbitmq_url, **values)


async def consumer_count(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.consumer_count or 0
    finally:
        await connection.close()


async def until_consumed(amqp_url: str, queue: str, *, by: int = 1, timeout: float = 30) -> None:
    await eventually(
        lambda: consumer_count(amqp_url, queue),
        until=lambda n: n >= by,
        timeout=timeout,
        what=f"{by} consumer(s) on {queue}",
    )


async def until_worker_consumes(amqp_url: str, *, by: int = 1) -> None:
    """The worker has started: its wait queue bound (before it consumes), its due queue
    consumed."""
    await until_consumed(amqp_url, TOPOLOGY.due.name, by=by)


async def ready_messages(amqp_url: str, queue: str) -> int:
    """Messages in `queue` that no consumer holds (in a wait queue: events waiting it out)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


@pytest.fixture(scope="package")
def servers(servers: Servers) -> Iterator[Servers]:
    """The session's servers, but a RabbitMQ vhost of this package's own (fresh each run):
    the wait queue is bound to orders.events, so in a shared vhost it would hold every order
    event the other packages' tests publish, and a worker that started on that backlog would
    run hundreds of other orders' chains beside these tests."""
    with own_vhost(servers.rabbitmq, "status-worker") as url:
        yield dataclasses.replace(servers, rabbitmq=url)


@pytest.fixture(scope="package")
def orders_db_url(servers: Servers) -> str:
    return fresh_database(servers.database("orders_status_worker_it"), MIGRATIONS)


@pytest.fixture(scope="package")
async def command_app(servers: Servers, orders_db_url: str) -> AsyncIterator[FastAPI]:
    """order_command in the package's vhost, the one app consuming its command queue there,
    with its relay."""
    settings = make_settings(servers, orders_db_url)
    app = create_command_app(settings, keys=TEST_KEYS)
    async with relayed(app, settings, settings.orders_database_url):
        yield app


# --- the worker -------------------------------------------------------------------------


@dataclass
class Worker:
    app: FastAPI
    http: httpx.AsyncClient

    async def metrics(self) -> dict[str, float]:
        """The worker's counters by sample name (`timers_fired_total`)."""
        response = await self.http.get("/metrics")
        assert response.status_code == 200
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            if family.name.startswith("timers_")
            for sample in family.samples
            if sample.name.endswith("_total")
        }


@contextlib.asynccontextmanager
async def running_worker(settings: StatusWorkerSettings) -> AsyncIterator[Worker]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            yield Worker(app, http)


@pytest.fixture
async def worker(servers: Servers, command_app: FastAPI) -> AsyncIterator[Worker]:
    """A worker in process, consuming its queues, beside the order_command that consumes its
    commands."""
    async with running_worker(worker_settings(servers.rabbitmq)) as running:
        await until_worker_consumes(servers.rabbitmq)
        await until_consumed(servers.rabbitmq, ADVANCE_QUEUE.name)
        yield running


class WorkerProcess:
    """`status-worker serve` in a session of its own, as `make run` starts it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            argv = [str(Path(sys.executable).with_name("status-worker")), "serve"]
            self.process = spawn(argv, self.env, out)

    async def kill(self) -> None:
        """SIGKILL: no chance to finish, ack or close anything."""
        await self._stop(signal.SIGKILL)

    async def stop(self) -> None:
        await self._stop(signal.SIGTERM)

    async def freeze(self) -> None:
        """SIGSTOP: the process holds its connection and what was delivered, and does nothing."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    async def _stop(self, signum: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is not None:
            await asyncio.to_thread(stop, [(process, signum)], 30)


@pytest.fixture
async def worker_process(servers: Servers, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "RABBITMQ_URL": servers.rabbitmq,
        "STATUS_ADVANCE_INTERVAL": str(INTERVAL),
        "STATUS_WORKER_HOST": "127.0.0.1",
        "STATUS_WORKER_PORT": str(free_port()),
        "OTEL_TRACES_EXPORTER": "none",
    }
    process = WorkerProcess(env, tmp_path / "status_worker.log")
    try:
        yield process
    finally:
        await process.stop()


# --- orders, through order_command ------------------------------------------------------


class Orders:
    """order_command's HTTP API, as a user and as the query side sees it."""

    def __init__(self, client: httpx.AsyncClient, owner: Caller) -> None:
        self.client = client
        self.owner = owner

    @classmethod
    @contextlib.asynccontextmanager
    async def over(cls, command_app: FastAPI) -> AsyncIterator[Orders]:
        """Orders of a new user, through `command_app` in process."""
        transport = httpx.ASGITransport(app=command_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield cls(client, Caller())

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """As a client does: a 503 (Postgres is shared, and may run out of connections while
        other work runs) is tried again, for a while."""
        return await eventually(
            lambda: self.client.request(method, url, **kwargs),
            until=lambda response: response.status_code != 503,
            timeout=30,
            interval=0.5,
            what=f"{method} {url} answered without a 503",
        )

    async def create(self) -> str:
        body = {"items": [{"name": "tea", "price": "2.50", "quantity": 2}]}
        response = await self._send("POST", "/orders", json=body, headers=self.owner.headers)
        assert response.status_code == 201, response.text
        order_id: str = response.json()["id"]
        return order_id

    async def change_status(self, order_id: str, status: OrderStatus) -> dict[str, Any]:
        response = await self._send(
            "PATCH",
            f"/orders/{order_id}/status",
            json={"status": status.value},
            headers=self.owner.headers,
        )
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def delete(self, order_id: str) -> None:
        response = await self._send("DELETE", f"/orders/{order_id}", headers=self.owner.headers)
        assert response.status_code == 200, response.text

    async def advances(self) -> dict[str, float]:
        """order_command's advance_status commands by outcome (`applied`, `stale`)."""
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        return {
            sample.labels["outcome"]: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == "advance_status_commands_total"
        }

    async def read(self, order_id: str) -> dict[str, Any]:
        response = await self._send("GET", f"/internal/orders/{order_id}", headers=SERVICE.headers)
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def until(
        self, order_id: str, status: OrderStatus, version: int, timeout: float = 30
    ) -> dict[str, Any]:
        return await eventually(
            lambda: self.read(order_id),
            until=lambda o: (o["status"], o["version"]) == (status.value, version),
            timeout=timeout,
            what=f"order {order_id} {status.value} at version {version}",
        )


@pytest.fixture
async def orders(command_app: FastAPI) -> AsyncIterator[Orders]:
    async with Orders.over(command_app) as orders:
        yield orders


# --- what the events say ----------------------------------------------------------------


def occurred_at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def steps(events: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    """One order's order.created and order.status_changed events, in version order, one per
    version (the outbox may publish one twice)."""
    mine = {
        e["version"]: e
        for e in events
        if e["aggregate_id"] == order_id and e["type"] in ("order.created", "order.status_changed")
    }
    return [mine[v] for v in sorted(mine)]


def late_by(earlier: dict[str, Any], later: dict[str, Any]) -> float:
    """How much longer than INTERVAL passed between two events, in seconds."""
    return (occurred_at(later) - occurred_at(earlier)).total_seconds() - INTERVAL


def the_next_step(earlier: dict[str, Any], later: dict[str, Any]) -> bool:
    """`later` came from the timer `earlier` set: never before the interval has passed, and
    before a second one would have (how late within it depends on the machine's load)."""
    return 0 <= late_by(earlier, later) < INTERVAL
