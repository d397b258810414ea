"""A new interval is a new wait queue (its TTL is in its name): the worker starts with it bound
to orders.events in place of the old one, and timers already waiting in the old one still
come due, on the old one's time."""

from __future__ import annotations

from tests.integration.status_worker.conftest import (
    INTERVAL,
    Orders,
    consumer_count,
    occurred_at,
    ready_messages,
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
OLD, NEW = TimerTopology.for_interval(INTERVAL).wait, TimerTopology.for_interval(LONGER).wait


async def test_timers_set_before_an_interval_change_still_come_due_and_the_old_queue_takes_no_more(
    orders: Orders, servers: Servers
) -> None:
    url = servers.rabbitmq
    async with capture(url, "orders.events", "order.*") as captured:
        async with running_worker(worker_settings(url)):
            await until_worker_consumes(url)
            before = await orders.create()
            await eventually(
                lambda: ready_messages(url, OLD.name),
                until=lambda n: n >= 1,
                what="the first order's event waiting in the old wait queue",
            )
        async with running_worker(worker_settings(url, status_advance_interval=LONGER)):
            await until_worker_consumes(url)
            after = await orders.create()  # its event waits in the new queue only
            await orders.until(before, OrderStatus.SHIPPED, 3, timeout=LONGER * 10)
            await orders.until(after, OrderStatus.PAID, 2, timeout=LONGER * 10)
        events = steps(captured.bodies(), before)
        late = steps(captured.bodies(), after)

    created, paid, shipped = events[:3]
    for earlier, later, interval in (
        (created, paid, INTERVAL),  # set before the change: the old queue's time
        (paid, shipped, LONGER),
        (late[0], late[1], LONGER),  # were the old queue still bound, this took INTERVAL
    ):
        took = (occurred_at(later) - occurred_at(earlier)).total_seconds()
        assert interval <= took < 2 * interval, (took, interval)
    for wait in (OLD, NEW):
        assert await consumer_count(url, wait.name) == 0  # it exists; nothing consumes it
