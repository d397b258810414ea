"""Replay a consumer's dead-letter queue into the consumer's queue, once the cause is fixed.

Only the messages in the DLQ when the replay starts are moved, so a message that fails
again goes back to the DLQ after its deliveries rather than round and round.
"""

from __future__ import annotations

from collections.abc import Callable

import aio_pika

from shared.topology import consumer_queue, dead_letter_queue


async def replay(amqp_url: str, name: str, *, report: Callable[[str], None]) -> int:
    """Move the messages of `<name>.dlq` back to `name`'s consumer queue; returns how many."""
    target = consumer_queue(name, "").name
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        dlq = await channel.declare_queue(dead_letter_queue(name).name, passive=True)
        waiting = dlq.declaration_result.message_count or 0
        report(f"{dlq.name}: {waiting} message(s) to replay into {target}")
        moved = 0
        while moved < waiting:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=target,
            )
            await message.ack()
            moved += 1
            if moved % 100 == 0 or moved == waiting:
                report(f"  {moved}/{waiting} replayed")
        report(f"done: {moved} message(s) moved from {dlq.name} to {target}")
        return moved
    finally:
        await connection.close()
