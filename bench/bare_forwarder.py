"""The `timers` benchmark's bare ceiling, as a process of its own: what the status worker does
with a due order event, in plain aio-pika with none of the service's code around it. Take it
off the due queue, make its `order.advance_status` (from the status the event left the order
in, with an id derived from the event's), publish it (persistent, confirmed), then ack it.

    python -m bench.bare_forwarder AMQP_URL DUE_QUEUE PREFETCH
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika

TIMER_IDS = uuid.UUID("5b0e7d1c-2f0a-4a51-9d83-6f2d9c1e7a40")


def command_of(event: dict[str, Any]) -> tuple[str, bytes]:
    """The command's id and body."""
    payload = event["payload"]
    status = payload.get("status") or payload.get("to_status")
    command_id = str(uuid.uuid5(TIMER_IDS, str(event["event_id"])))
    return command_id, json.dumps(
        {
            "event_id": command_id,
            "type": "order.advance_status",
            "schema_version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "aggregate_id": event["aggregate_id"],
            "version": event["version"],
            "payload": {"order_id": event["aggregate_id"], "expected_status": status},
        }
    ).encode()


async def forward(url: str, due_queue: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    commands = await channel.get_exchange("orders.commands", ensure=True)
    queue = await channel.get_queue(due_queue, ensure=True)

    async def on_due(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        command_id, command = command_of(json.loads(message.body))
        await commands.publish(
            aio_pika.Message(
                command,
                content_type="application/json",
                message_id=command_id,
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
