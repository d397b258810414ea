"""Faults lose no timer: the worker killed (SIGKILL) and started again mid-chain, and the broker
stopped and started while timers wait. Every order still takes every step, exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from deploy.stack.databases import fresh_database
from deploy.stack.rabbit_node import RabbitNode
from tests.integration.conftest import make_settings
from tests.integration.status_worker.conftest import (
    INTERVAL,
    TOPOLOGY,
    Orders,
    WorkerProcess,
    ready_messages,
    running_worker,
    until_consumed,
    until_worker_consumes,
    worker_settings,
)
from tests.support.relaying import relayed
from tests.support.servers import Servers
from tests.support.tokens import TEST_KEYS
from tests.support.waiting import eventually

from order_command.cli import MIGRATIONS
from order_command.consumers import ADVANCE_QUEUE
from order_command.main import create_app as create_command_app
from shared.events import OrderStatus

ORDERS = 30  # fewer than the worker's prefetch (32): frozen, it takes them all


async def create_orders(orders: Orders, count: int, at_once: int = 5) -> list[str]:
    """`count` orders, made within a fraction of the interval (a few at once: Postgres and
    its connections are shared)."""
    created: list[str] = []
    while len(created) < count:
        batch = min(at_once, count - len(created))
        created += await asyncio.gather(*(orders.create() for _ in range(batch)))
    return created


async def statuses(orders: Orders, order_ids: list[str]) -> list[tuple[str, int]]:
    found = [await orders.read(order_id) for order_id in order_ids]
    return [(order["status"], order["version"]) for order in found]


async def until_every_order_is(
    orders: Orders, order_ids: list[str], status: OrderStatus, version: int, timeout: float = 30
) -> None:
    """Every order in `status` at `version`: each step taken, none twice. Fails as soon as
    one order is past it."""
    expected = (status.value, version)
    found = await eventually(
        lambda: statuses(orders, order_ids),
        until=lambda found: all(f == expected or f[1] > version for f in found),
        timeout=timeout,
        interval=0.2,
        what=f"all {len(order_ids)} orders {status.value} at version {version}",
    )
    assert found == [expected] * len(order_ids)


async def test_a_worker_killed_mid_chain_and_started_again_loses_no_step(
    worker_process: WorkerProcess, orders: Orders, servers: Servers
) -> None:
    url = servers.rabbitmq
    await worker_process.start()
    await until_worker_consumes(url)
    await until_consumed(url, ADVANCE_QUEUE.name)
    order_ids = await create_orders(orders, ORDERS)
    await until_every_order_is(orders, order_ids, OrderStatus.PAID, 2)
    await eventually(
        lambda: ready_messages(url, TOPOLOGY.wait.name),
        until=lambda n: n >= ORDERS,
        what="every order's second timer waiting",
    )

    # Frozen, the worker still takes deliveries (up to its prefetch) but acks none: when the
    # timers come due, some are in its hands, unacked, when it is killed.
    await worker_process.freeze()
    await eventually(
        lambda: asyncio.gather(
            ready_messages(url, TOPOLOGY.wait.name), ready_messages(url, TOPOLOGY.due.name)
        ),
        until=lambda counts: counts[0] == 0 and counts[1] < ORDERS,
        timeout=INTERVAL * 10,
        what="the due timers in the frozen worker's hands",
    )
    await worker_process.kill()
    at_kill = await statuses(orders, order_ids)
    await worker_process.start()

    await until_every_order_is(orders, order_ids, OrderStatus.CANCELED, 4, timeout=INTERVAL * 20)
    assert ("PAID", 2) in at_kill, "the worker should be killed before it moved them all on"


@pytest.fixture(scope="module")
def broker_restart_db(servers: Servers) -> str:
    return fresh_database(servers.database("orders_broker_restart_it"), MIGRATIONS)


@pytest.fixture
async def private_node(tmp_path: Path) -> AsyncIterator[RabbitNode]:
    node = RabbitNode(tmp_path / "rabbitmq")
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def test_a_broker_restart_loses_no_timer(
    private_node: RabbitNode,
    broker_restart_db: str,
    servers: Servers,
    record_property: Callable[[str, object], None],
) -> None:
    """order_command and the worker on a RabbitMQ node of the test's own, stopped while every
    order's first timer waits in the wait queue, and started again after they are due."""
    on_node = dataclasses.replace(servers, rabbitmq=private_node.url)
    settings = make_settings(on_node, broker_restart_db, order_command_db_pool_size=4)
    command_app = create_command_app(settings, keys=TEST_KEYS)
    async with (
        relayed(command_app, settings, settings.orders_database_url),
        running_worker(worker_settings(private_node.url)),
    ):
        await until_worker_consumes(private_node.url)
        await until_consumed(private_node.url, ADVANCE_QUEUE.name)
        async with Orders.over(command_app) as orders:
            order_ids = await create_orders(orders, ORDERS)
            await eventually(
                lambda: ready_messages(private_node.url, TOPOLOGY.wait.name),
                until=lambda n: n >= ORDERS,
                what=f"{ORDERS} orders' events waiting out their first interval",
            )
            stopped_at = time.monotonic()
            stop_seconds = await private_node.stop()
            start_seconds = await private_node.start()
            down_seconds = time.monotonic() - stopped_at
            assert down_seconds > INTERVAL, "every first timer should be due by the restart"

            await until_every_order_is(orders, order_ids, OrderStatus.CANCELED, 4, timeout=90)
            recovered_seconds = time.monotonic() - stopped_at - down_seconds
    for name, value in (
        ("broker_stop_seconds", stop_seconds),
        ("broker_start_seconds", start_seconds),
        ("chains_done_after_restart_seconds", recovered_seconds),
    ):
        record_property(name, round(value, 2))
    print(  # noqa: T201 (with -s: how long the restart took)
        f"broker restart: stop {stop_seconds:.1f} s, start {start_seconds:.1f} s; every chain "
        f"done {recovered_seconds:.1f} s after the start (3 steps of {INTERVAL:g} s)"
    )
