"""A worker started where the worker before decision 107 ran takes over its queues: the order
events queue unbound, what waits in it passed into the wait queue, then deleted; the answers
queue deleted; a timer the old worker set still comes due and is sent on."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractChannel
from tests.integration.status_worker.conftest import (
    TOPOLOGY,
    Orders,
    ready_messages,
    running_worker,
    until_worker_consumes,
    worker_settings,
)
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.waiting import eventually

from shared.events import AdvanceStatus, Envelope, OrderStatus
from shared.topology import ORDERS_EVENTS, consumer_queue, dead_letter_queue
from status_worker import retired
from status_worker.topology import STEP_EVENTS

OLD_EVENTS = consumer_queue(retired.EVENTS, "")
OLD_RESULTS = consumer_queue(retired.RESULTS, "")


@contextlib.asynccontextmanager
async def channel_to(url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def exists(url: str, queue: str) -> bool:
    async with channel_to(url) as channel:
        try:
            await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def test_a_new_worker_retires_the_old_queues_and_loses_no_timer(
    orders: Orders, servers: Servers
) -> None:
    url = servers.rabbitmq
    async with channel_to(url) as channel:
        # Before the upgrade, nothing fed the wait queue but the old worker.
        wait = await channel.declare_queue(
            TOPOLOGY.wait.name, durable=True, arguments=TOPOLOGY.wait.arguments
        )
        for key in STEP_EVENTS:
            await wait.unbind(ORDERS_EVENTS.name, key)
        # An order whose timer the old worker had set: the command itself, waiting.
        async with capture(url, "orders.events", "order.created") as captured:
            waited = await orders.create()
            await captured.wait_for(lambda event: event["aggregate_id"] == waited)
        waited_id = uuid.UUID(waited)
        timer = Envelope.wrap(
            AdvanceStatus(order_id=waited_id, expected_status=OrderStatus.PENDING),
            aggregate_id=waited_id,
            version=1,
        )
        await channel.default_exchange.publish(
            aio_pika.Message(timer.model_dump_json().encode(), content_type="application/json"),
            routing_key=TOPOLOGY.wait.name,
        )
        # The old worker's queues, as it declared them; one order's event waiting in them.
        events = await channel.declare_queue(
            OLD_EVENTS.name, durable=True, arguments=OLD_EVENTS.arguments
        )
        for key in STEP_EVENTS:
            await events.bind(ORDERS_EVENTS.name, key)
        for name in (
            dead_letter_queue(retired.EVENTS).name,
            dead_letter_queue(retired.RESULTS).name,
        ):
            await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        answers = await channel.declare_queue(
            OLD_RESULTS.name, durable=True, arguments=OLD_RESULTS.arguments
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"applied": true}'), routing_key=answers.name
        )
        pending = await orders.create()
        await eventually(
            lambda: ready_messages(url, OLD_EVENTS.name),
            until=lambda n: n >= 1,
            what="an order's event waiting in the old events queue",
        )

    async with running_worker(worker_settings(url)):
        await until_worker_consumes(url)
        for order_id in (waited, pending):
            await orders.until(order_id, OrderStatus.CANCELED, 4)

    for old in (
        OLD_EVENTS.name,
        dead_letter_queue(retired.EVENTS).name,
        OLD_RESULTS.name,
        dead_letter_queue(retired.RESULTS).name,
    ):
        assert not await exists(url, old), f"{old} is still there"
