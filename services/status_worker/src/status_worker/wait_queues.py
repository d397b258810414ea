"""Which wait queue orders.events feeds: the one of the interval the last worker started with.

RabbitMQ cannot list a queue's bindings over AMQP, so the wait queues ever bound are recorded
in a stream (`status_worker.wait_queues`: append-only, replicated, read by every start without
taking anything from it). At start a worker records its own wait queue, binds it, reads the
records up to its own, and unbinds every other wait queue recorded before it. So the last
worker to record wins; its queue is bound before it unbinds another, so some wait queue is
always bound and no event goes without a timer. Timers already waiting in an unbound queue
still come due. Two workers of different intervals recording at the same moment may both
stay bound until the next start (each event then sets two timers: the later one is stale).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from faststream.rabbit import RabbitBroker, RabbitQueue

from shared.topology import ORDERS_EVENTS
from status_worker import retired
from status_worker.topology import STEP_EVENTS, TimerTopology

log = logging.getLogger(__name__)

RECORDS = "status_worker.wait_queues"
READ_WITHIN = 30.0  # seconds to read the records up to one's own


async def declare(broker: RabbitBroker, topology: TimerTopology, amqp_url: str) -> None:
    """The worker's queues, then its wait queue bound in place of any older one, then the
    old design's queues retired (on a connection of its own: a queue that is not there
    closes the channel that asked for it)."""
    await topology.declare(broker)
    async with await aio_pika.connect(amqp_url) as connection:
        await bind_newest(connection, topology.wait)
        try:
            await retired.retire(connection, topology.wait)
        except aio_pika.exceptions.AMQPError:  # housekeeping: timers flow without it
            log.exception("the old queues were not all retired; the next start tries again")


async def bind_newest(connection: AbstractConnection, wait: RabbitQueue) -> list[str]:
    """Bind `wait` to the events that start a step, and unbind every wait queue recorded
    before it. Returns the names unbound."""
    channel = await connection.channel(on_return_raises=True)  # publisher confirms on
    await channel.set_qos(prefetch_count=100)  # a stream is read with a prefetch
    # A record is a queue's name (tens of bytes, one per start): the stream keeps the newest
    # ~10 MB. Dropping an old record is safe: every start after it has unbound its queue.
    records = await channel.declare_queue(
        RECORDS,
        durable=True,
        arguments={
            "x-queue-type": "stream",
            "x-max-length-bytes": 10_000_000,
            "x-stream-max-segment-size-bytes": 1_000_000,
        },
    )
    mine = str(uuid.uuid4())
    await channel.default_exchange.publish(
        aio_pika.Message(wait.name.encode(), message_id=mine),
        routing_key=RECORDS,
        mandatory=True,
    )
    queue = await channel.get_queue(wait.name, ensure=False)
    for key in STEP_EVENTS:
        await queue.bind(ORDERS_EVENTS.name, routing_key=key)

    older: set[str] = set()
    read = asyncio.get_running_loop().create_future()

    async def on_record(record: AbstractIncomingMessage) -> None:
        # Every delivery is acked, those after one's own too: a stream refuses a nack or a
        # reject (and closes the connection), which an iterator that stops early sends.
        await record.ack()
        if record.message_id == mine:
            read.set_result(None)
        elif not read.done():
            older.add(record.body.decode())

    tag = await records.consume(on_record, arguments={"x-stream-offset": "first"})
    async with asyncio.timeout(READ_WITHIN):
        await read
    await records.cancel(tag)
    await channel.close()
    older.discard(wait.name)
    return [name for name in sorted(older) if await _unbind(connection, name)]


async def _unbind(connection: AbstractConnection, name: str) -> bool:
    """Unbind the wait queue `name` (False: it is gone, deleted by hand)."""
    channel = await connection.channel()  # a missing queue closes the channel
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    for key in STEP_EVENTS:
        await queue.unbind(ORDERS_EVENTS.name, routing_key=key)
    await channel.close()
    log.info("wait queue %s unbound: its timers still come due, it takes no new ones", name)
    return True
