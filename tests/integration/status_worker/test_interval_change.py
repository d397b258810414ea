"""A new interval is a new wait queue (its TTL is in its name): the worker starts with it, and
timers set under the old interval still come due, on the old one's time."""

from __future__ import annotations

from tests.integration.status_worker.conftest import (
    INTERVAL,
    Orders,
    consumer_count,
    occurred_at,
    running_worker,
    steps,
    until_worker_consumes,
    worker_settings,
)
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.waiting import eventually

from shared.events import OrderStatus
from status_worker.topology import TimerTopology

LONGER = INTERVAL * 1.5


async def test_timers_set_before_an_interval_change_still_come_due(
    orders: Orders, servers: Servers
) -> None:
    url = servers.rabbitmq
    async with capture(url, "orders.events", "order.*") as captured:
        async with running_worker(worker_settings(url)) as before:
            await until_worker_consumes(url)
            order_id = await orders.create()
            await eventually(
                before.metrics,
                until=lambda m: m.get("timers_scheduled_total", 0) >= 1,
                what="the first timer set",
            )
        async with running_worker(worker_settings(url, status_advance_interval=LONGER)):
            await orders.until(order_id, OrderStatus.SHIPPED, 3, timeout=LONGER * 10)
        events = steps(captured.bodies(), order_id)

    created, paid, shipped = events[:3]
    for earlier, later, interval in ((created, paid, INTERVAL), (paid, shipped, LONGER)):
        took = (occurred_at(later) - occurred_at(earlier)).total_seconds()
        assert interval <= took < 2 * interval, (took, interval)
    for wait in (
        TimerTopology.for_interval(INTERVAL).wait,
        TimerTopology.for_interval(LONGER).wait,
    ):
        assert await consumer_count(url, wait.name) == 0  # it exists; nothing consumes it
