"""The queues of the worker before its wait queue was bound to orders.events (decision 107),
retired at start so a running deployment upgrades in place:

- `status_worker.order_events.dl5` (order events, bound to orders.events): unbound (the wait
  queue, bound first, takes those events now), the events waiting in it passed into the wait
  queue (each waits one interval from then, as the old worker would have set its timer on
  taking it), then deleted once nothing consumes it: an old worker still running (a rolling
  upgrade) drains what it holds, and the next start deletes the queue. Its dead-letter queue
  goes if empty; dead letters in it are left for an operator (logged).
- `status_worker.advance_results.dl5` and its dead-letter queue (order_command's answers,
  only ever counted): deleted once nothing consumes them, answers and all; order_command
  counts what it decides itself now.

Timers the old worker set (an `order.advance_status` envelope in a wait queue) come due into
the same due queue and are sent on as they are (`timers.command_for`).
"""

from __future__ import annotations

import logging

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractQueue
from faststream.rabbit import RabbitQueue

from shared.dead_letters import republish
from shared.topology import ORDERS_EVENTS, consumer_queue, dead_letter_queue
from status_worker.topology import STEP_EVENTS

log = logging.getLogger(__name__)

EVENTS = "status_worker.order_events"
RESULTS = "status_worker.advance_results"


async def retire(connection: AbstractConnection, wait: RabbitQueue) -> None:
    """Retire the old queues that exist. Call once `wait` is bound."""
    events = consumer_queue(EVENTS, "").name
    if (queue := await _existing(connection, events)) is not None:
        for key in STEP_EVENTS:
            await queue.unbind(ORDERS_EVENTS.name, routing_key=key)
        moved = await _move(queue, wait.name)
        log.info("%d waiting event(s) moved from %s into %s", moved, events, wait.name)
        await _delete_unused(connection, events, only_empty=True)
    await _delete_unused(connection, dead_letter_queue(EVENTS).name, only_empty=True)
    for name in (consumer_queue(RESULTS, "").name, dead_letter_queue(RESULTS).name):
        await _delete_unused(connection, name, only_empty=False)


async def _existing(connection: AbstractConnection, name: str) -> AbstractQueue | None:
    """`name` on a channel of its own (a missing queue closes the channel), or None."""
    channel = await connection.channel(on_return_raises=True)
    try:
        return await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return None


async def _move(queue: AbstractQueue, into: str) -> int:
    """Pass every ready message of `queue` into the queue `into`: each acked once the broker
    confirmed its copy (a crash in between copies one twice: its second timer is stale). The
    copy keeps the event's own headers (its trace context), not the broker's `x-` ones: a
    delivery count carried over would count against the due queue's limit."""
    moved = 0
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        await republish(queue.channel, message, into)
        await message.ack()
        moved += 1
    return moved


async def _delete_unused(connection: AbstractConnection, name: str, *, only_empty: bool) -> None:
    """Delete `name` if it exists and nothing consumes it (and, `only_empty`, it holds
    nothing). Quorum queues refuse delete's if-unused and if-empty flags: checked first."""
    if (queue := await _existing(connection, name)) is None:
        return
    declared = queue.declaration_result
    consumers, messages = declared.consumer_count or 0, declared.message_count or 0
    if consumers:
        log.warning("%s kept: %d consumer(s) still use it (an older worker)", name, consumers)
    elif only_empty and messages:
        log.warning("%s kept: it holds %d message(s) to look at, then delete", name, messages)
    else:
        await queue.channel.queue_delete(name)
        log.info("%s deleted (it held %d message(s))", name, messages)
