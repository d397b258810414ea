"""The status worker's `order.advance_status` command, sent over the real broker: applied once,
only from the status it expects, and a poison message is dead-lettered without stopping the queue.

The queue delivers in the order published, so a "marker" command for another order, published
after the one under test and seen applied, shows the one before was delivered and handled (the
consumer runs deliveries as concurrent tasks, but the earlier one starts first and does less).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from order_command.consumers import ADVANCE_QUEUE, QUEUE_NAME
from shared.events import AdvanceStatus, Envelope, OrderStatus, Role
from shared.topology import dead_letter_queue
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tokens import Caller
from tests.support.waiting import eventually

CreateOrder = Callable[..., Awaitable[dict[str, Any]]]
SERVICE = Caller(Role.SERVICE)
DLQ = dead_letter_queue(QUEUE_NAME).name


@pytest.fixture
async def channel(servers: Servers) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(servers.rabbitmq)
    try:
        yield await connection.channel()  # publisher confirms on
    finally:
        await connection.close()


@pytest.fixture
async def consuming(client: httpx.AsyncClient, servers: Servers) -> None:
    """Wait until order_command consumes its command queue (the app starts it in the background)."""
    connection = await aio_pika.connect_robust(servers.rabbitmq)

    async def consumers() -> int:
        probe = await connection.channel()
        try:
            queue = await probe.declare_queue(ADVANCE_QUEUE.name, passive=True)
            count: int = queue.declaration_result.consumer_count or 0
            return count
        finally:
            await probe.close()

    try:
        await eventually(consumers, timeout=20, what="order_command consuming its command queue")
    finally:
        await connection.close()


def advance(order_id: str, expected: OrderStatus = OrderStatus.PENDING) -> Envelope[AdvanceStatus]:
    command = AdvanceStatus(order_id=uuid.UUID(order_id), expected_status=expected)
    return Envelope.wrap(command, aggregate_id=command.order_id, version=1)


async def publish(channel: aio_pika.abc.AbstractChannel, body: bytes) -> None:
    exchange = await channel.get_exchange(AdvanceStatus.EXCHANGE, ensure=True)
    await exchange.publish(
        aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=AdvanceStatus.ROUTING_KEY,
    )


async def send(channel: aio_pika.abc.AbstractChannel, envelope: Envelope[AdvanceStatus]) -> None:
    await publish(channel, envelope.model_dump_json().encode())


async def read(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/internal/orders/{order_id}", headers=SERVICE.headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def wait_until(
    client: httpx.AsyncClient, order_id: str, status: str, version: int, timeout: float = 10
) -> dict[str, Any]:
    return await eventually(
        lambda: read(client, order_id),
        until=lambda o: (o["status"], o["version"]) == (status, version),
        timeout=timeout,
        what=f"order {order_id} {status} at version {version}",
    )


async def a_later_command_applies(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
    timeout: float = 10,
) -> str:
    """A marker: a new order advanced by a command published now, seen applied. Its id."""
    marker = await create_order()
    await send(channel, advance(marker["id"]))
    await wait_until(client, marker["id"], "PAID", 2, timeout)
    marker_id: str = marker["id"]
    return marker_id


@pytest.mark.usefixtures("consuming")
async def test_a_command_advances_the_order_one_step_as_the_system(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
    servers: Servers,
) -> None:
    order = await create_order()
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        await send(channel, advance(order["id"]))
        await wait_until(client, order["id"], "PAID", 2)
        event = await captured.wait_for(
            lambda e: e["aggregate_id"] == order["id"] and e["type"] == "order.status_changed"
        )
    assert event["version"] == 2
    assert event["payload"] == {"from_status": "PENDING", "to_status": "PAID", "changed_by": None}


@pytest.mark.usefixtures("consuming")
async def test_a_redelivered_command_changes_nothing(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
    servers: Servers,
) -> None:
    order = await create_order()
    command = advance(order["id"])
    async with capture(servers.rabbitmq, "orders.events", "order.status_changed") as captured:
        await send(channel, command)
        await wait_until(client, order["id"], "PAID", 2)
        await send(channel, command)  # the same message again, as a redelivery brings it
        marker = await a_later_command_applies(client, channel, create_order)
        await captured.wait_for(lambda e: e["aggregate_id"] == marker)
    after = await read(client, order["id"])
    assert (after["status"], after["version"]) == ("PAID", 2)
    assert [e["version"] for e in captured.bodies() if e["aggregate_id"] == order["id"]] == [2]


@pytest.mark.usefixtures("consuming")
async def test_a_timer_that_fires_after_a_manual_change_does_nothing(
    client: httpx.AsyncClient,
    alice: Caller,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    order = await create_order()
    paid = await client.patch(
        f"/orders/{order['id']}/status", json={"status": "PAID"}, headers=alice.headers
    )
    assert paid.status_code == 200
    await send(channel, advance(order["id"], OrderStatus.PENDING))  # the timer set at creation
    await a_later_command_applies(client, channel, create_order)
    after = await read(client, order["id"])
    assert (after["status"], after["version"]) == ("PAID", 2)


@pytest.mark.usefixtures("consuming")
@pytest.mark.parametrize("expected", [OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELED])
async def test_a_command_expecting_another_status_does_nothing(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
    expected: OrderStatus,
) -> None:
    order = await create_order()  # PENDING
    await send(channel, advance(order["id"], expected))
    await a_later_command_applies(client, channel, create_order)
    after = await read(client, order["id"])
    assert (after["status"], after["version"]) == ("PENDING", 1)


@pytest.mark.usefixtures("consuming")
async def test_a_command_for_a_canceled_order_does_nothing(
    client: httpx.AsyncClient,
    alice: Caller,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    order = await create_order()
    await client.patch(
        f"/orders/{order['id']}/status", json={"status": "CANCELED"}, headers=alice.headers
    )
    await send(channel, advance(order["id"], OrderStatus.CANCELED))
    await a_later_command_applies(client, channel, create_order)
    after = await read(client, order["id"])
    assert (after["status"], after["version"]) == ("CANCELED", 2)


@pytest.mark.usefixtures("consuming")
async def test_a_command_for_a_deleted_order_does_nothing(
    client: httpx.AsyncClient,
    alice: Caller,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    order = await create_order()
    deleted = await client.delete(f"/orders/{order['id']}", headers=alice.headers)
    assert deleted.status_code == 200
    await send(channel, advance(order["id"]))
    await a_later_command_applies(client, channel, create_order)
    after = await read(client, order["id"])
    assert (after["status"], after["version"], after["is_deleted"]) == ("PENDING", 2, True)


async def _purged_dlq(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
    queue = await channel.get_queue(DLQ, ensure=True)
    await queue.purge()
    return queue


async def _dead_letters(queue: aio_pika.abc.AbstractQueue) -> list[bytes]:
    """Everything in the dead-letter queue now, taken off it."""
    bodies = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        bodies.append(message.body)
    return bodies


@pytest.mark.usefixtures("consuming")
async def test_a_command_for_an_unknown_order_is_acked_and_the_queue_keeps_flowing(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    dlq = await _purged_dlq(channel)
    unknown = advance(str(uuid.uuid4()))
    await send(channel, unknown)
    await a_later_command_applies(client, channel, create_order)
    assert await _dead_letters(dlq) == []  # handled, not failed and dead-lettered


@pytest.mark.usefixtures("consuming")
async def test_a_poison_message_is_dead_lettered_and_the_queue_keeps_flowing(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    dlq = await _purged_dlq(channel)
    await publish(channel, b"not json")
    await a_later_command_applies(client, channel, create_order)
    arrived: list[bytes] = []

    async def dead_lettered() -> list[bytes]:
        arrived.extend(await _dead_letters(dlq))
        return arrived

    await eventually(dead_lettered, timeout=20, what="the poison message in the dead-letter queue")
    assert arrived == [b"not json"]


@pytest.mark.usefixtures("consuming")
async def test_a_command_with_a_wrong_shape_is_dead_lettered(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    create_order: CreateOrder,
) -> None:
    dlq = await _purged_dlq(channel)
    order = await create_order()
    wrong = json.loads(advance(order["id"]).model_dump_json())
    wrong["payload"]["expected_status"] = "LOST"
    body = json.dumps(wrong).encode()
    await publish(channel, body)
    arrived: list[bytes] = []

    async def dead_lettered() -> list[bytes]:
        arrived.extend(await _dead_letters(dlq))
        return arrived

    await eventually(dead_lettered, timeout=20, what="the bad command in the dead-letter queue")
    assert arrived == [body]
    after = await read(client, order["id"])
    assert (after["status"], after["version"]) == ("PENDING", 1)


async def counted(client: httpx.AsyncClient) -> tuple[float, float]:
    """order_command's (applied, stale) advance_status commands, from its /metrics."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    by_outcome = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "advance_status_commands_total"
    }
    return by_outcome["applied"], by_outcome["stale"]


async def test_each_command_is_counted_applied_or_stale_and_an_old_reply_to_gets_no_answer(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    consuming: None,
    create_order: CreateOrder,
) -> None:
    """Whether a timer applied is counted where it is decided. A worker from before that
    (decision 107) sent `reply_to` and counted the answers: such a command gets none."""
    answers = await channel.declare_queue(exclusive=True)
    applied, stale = await counted(client)
    order = await create_order()
    for expected in (OrderStatus.PENDING, OrderStatus.PENDING):  # applied, then stale
        envelope = advance(order["id"], expected)
        exchange = await channel.get_exchange(AdvanceStatus.EXCHANGE, ensure=True)
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                content_type="application/json",
                reply_to=answers.name,
                correlation_id=str(envelope.event_id),
            ),
            routing_key=AdvanceStatus.ROUTING_KEY,
        )
    await eventually(
        lambda: counted(client),
        until=lambda now: now == (applied + 1, stale + 1),
        what="one command counted applied, the other stale",
    )
    await a_later_command_applies(client, channel, create_order)  # both handled long since
    assert await answers.get(no_ack=True, fail=False) is None
