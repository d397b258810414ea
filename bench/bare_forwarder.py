"""The `timers` benchmark's bare ceiling, as a process of its own: what the status worker does
with a due timer, in plain aio-pika with none of the service's code around it. Take it off the
due queue, publish it on as `order.advance_status` (persistent, confirmed), then ack it.

    python -m bench.bare_forwarder AMQP_URL DUE_QUEUE PREFETCH
"""

from __future__ import annotations

import asyncio
import sys

import aio_pika


async def forward(url: str, due_queue: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    commands = await channel.get_exchange("orders.commands", ensure=True)
    queue = await channel.get_queue(due_queue, ensure=True)

    async def on_due(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await commands.publish(
            aio_pika.Message(
                message.body,
                content_type="application/json",
                message_id=message.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="order.advance_status",
            mandatory=True,
        )
        await message.ack()

    await queue.consume(on_due)
    sys.stdout.write("forwarding\n")
    sys.stdout.flush()
    await asyncio.Future()  # until the benchmark stops it


if __name__ == "__main__":
    asyncio.run(forward(sys.argv[1], sys.argv[2], int(sys.argv[3])))
