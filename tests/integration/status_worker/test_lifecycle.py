"""An order walks its lifecycle on the worker's timers, one step per interval; a manual change
makes the timer set before it do nothing, and the chain goes on from the new state; a deleted
order's chain stops. Through real RabbitMQ and the real order_command."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

from tests.integration.status_worker.conftest import (
    CHAIN,
    INTERVAL,
    Orders,
    Worker,
    late_by,
    running_worker,
    steps,
    the_next_step,
    until_worker_consumes,
    worker_settings,
)
from tests.support.rabbit import Captured, capture
from tests.support.servers import Servers
from tests.support.waiting import eventually

from shared.events import OrderStatus

TIMER = None  # `changed_by` of a change the worker's timer made


def transitions(events: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [
        (e["payload"]["from_status"], e["payload"]["to_status"], e["payload"]["changed_by"])
        for e in events
        if e["type"] == "order.status_changed"
    ]


async def all_steps(captured: Captured, order_id: str, count: int) -> list[dict[str, Any]]:
    timeout = (count + 2) * INTERVAL * 3
    return await eventually(
        lambda: asyncio.sleep(0, result=steps(captured.bodies(), order_id)),
        until=lambda found: len(found) >= count,
        timeout=timeout,
        what=f"{count} events of order {order_id}",
    )


async def test_an_order_walks_pending_paid_shipped_canceled_one_step_per_interval(
    worker: Worker, orders: Orders, servers: Servers
) -> None:
    async with capture(servers.rabbitmq, "orders.events", "order.*") as captured:
        order_id = await orders.create()
        events = await all_steps(captured, order_id, 4)
    await orders.until(order_id, OrderStatus.CANCELED, 4)

    assert [e["type"] for e in events] == ["order.created"] + ["order.status_changed"] * 3
    assert transitions(events) == [
        (before.value, after.value, TIMER) for before, after in pairwise(CHAIN)
    ]
    assert all(the_next_step(a, b) for a, b in pairwise(events)), (
        f"each step should come {INTERVAL} s after the last, before a second interval ends; "
        f"they were late by {[late_by(a, b) for a, b in pairwise(events)]} s"
    )


async def test_a_manual_change_makes_the_earlier_timer_do_nothing_and_the_chain_goes_on(
    worker: Worker, orders: Orders, servers: Servers
) -> None:
    before = await orders.advances()
    async with capture(servers.rabbitmq, "orders.events", "order.*") as captured:
        order_id = await orders.create()
        # Paid by hand before the timer set at creation comes due: that one finds the order
        # no longer PENDING and does nothing.
        paid = await orders.change_status(order_id, OrderStatus.PAID)
        events = await all_steps(captured, order_id, 4)
    await orders.until(order_id, OrderStatus.CANCELED, 4)
    after = await eventually(
        orders.advances,
        until=lambda m: m["stale"] >= before["stale"] + 1,
        what="order_command counting the stale timer",
    )

    assert transitions(events) == [
        ("PENDING", "PAID", str(orders.owner.id)),  # by hand
        ("PAID", "SHIPPED", TIMER),
        ("SHIPPED", "CANCELED", TIMER),
    ]
    assert paid["version"] == 2
    # The timer set at creation came due (stale) and changed nothing; SHIPPED came from the
    # payment's own timer, and CANCELED from SHIPPED's.
    manual, shipped, canceled = events[1:]
    assert the_next_step(manual, shipped)
    assert the_next_step(shipped, canceled)
    assert after["stale"] >= before["stale"] + 1
    assert after["applied"] >= before["applied"] + 2


async def test_a_deleted_orders_timer_finds_it_gone_and_its_chain_stops(
    worker: Worker, orders: Orders
) -> None:
    before, counted_before = await worker.metrics(), await orders.advances()
    order_id = await orders.create()
    await orders.delete(order_id)
    # Timers come due in the order they were set: once a later order's first timer has moved
    # it on, the deleted order's timer has been handled.
    marker = await orders.create()
    await orders.until(marker, OrderStatus.PAID, 2, timeout=INTERVAL * 10)

    await eventually(
        orders.advances,
        until=lambda m: m["stale"] >= counted_before["stale"] + 1,
        what="order_command counting the deleted order's timer as stale",
    )
    order = await orders.read(order_id)
    assert (order["status"], order["version"], order["is_deleted"]) == ("PENDING", 2, True)
    after = await worker.metrics()
    assert after["timers_fired_total"] >= before["timers_fired_total"] + 2  # its, the marker's
    # Nothing was set for it after its timer found it gone: two intervals on, the marker's
    # chain has ended and the deleted order is as it was.
    await orders.until(marker, OrderStatus.CANCELED, 4, timeout=INTERVAL * 10)
    assert (await orders.read(order_id))["version"] == 2


async def test_metrics_show_timers_waiting_fired_and_their_outcome_in_order_command(
    worker: Worker, orders: Orders
) -> None:
    response = await worker.http.get("/metrics")
    assert response.status_code == 200
    for sample in ("timers_waiting ", "timers_fired_total "):
        assert f"\n{sample}" in response.text, sample
    assert set(await orders.advances()) == {"applied", "stale"}


async def test_the_asyncapi_document_names_every_queue_and_the_command(worker: Worker) -> None:
    response = await worker.http.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.text
    for queue in (
        f"status_worker.wait.{round(INTERVAL * 1000)}ms",
        "status_worker.due.dl5",
        "order.advance_status",
        "orders.commands",
    ):
        assert queue in document, queue
    for retired in ("status_worker.order_events", "status_worker.advance_results"):
        assert retired not in document, retired


async def test_two_workers_share_the_timers_and_every_step_happens_once(
    orders: Orders, servers: Servers
) -> None:
    url, count = servers.rabbitmq, 20
    async with (
        running_worker(worker_settings(url)) as one,
        running_worker(worker_settings(url)) as two,
    ):
        await until_worker_consumes(url, by=2)
        counted_before = await orders.advances()
        order_ids = [await orders.create() for _ in range(count)]
        for order_id in order_ids:
            await orders.until(order_id, OrderStatus.CANCELED, 4, timeout=INTERVAL * 15)

        def summed(figures: list[dict[str, float]]) -> dict[str, float]:
            return {name: sum(f.get(name, 0) for f in figures) for name in figures[0]}

        async def both() -> list[dict[str, float]]:
            return [await one.metrics(), await two.metrics()]

        steps_taken = 3 * count
        figures = await eventually(
            both,
            until=lambda f: summed(f)["timers_fired_total"] >= steps_taken,
            what="every step's timer sent on",
        )
    counted = await orders.advances()
    assert summed(figures)["timers_fired_total"] == steps_taken  # none for CANCELED
    assert (counted["applied"] - counted_before["applied"], counted["stale"]) == (
        steps_taken,
        counted_before["stale"],
    )
    assert all(f["timers_fired_total"] > 0 for f in figures), "both should have taken part"
