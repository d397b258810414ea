"""Dead letters an operator can inspect before acting, as `order-query dead-letters` shows them:
each with its type, order, error and attempts (the error recorded by the consumer on the last
delivery), one shown whole, the readable ones replayed, the unreadable one left, then
discarded. Against real RabbitMQ, with a real order_query consuming."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from shared.topology import DELIVERY_LIMIT
from tests.integration.order_query.conftest import (
    ORDERS,
    Rabbit,
    StartQuery,
    dead_lettered,
    publish_to_queue,
)
from tests.support.operator_cli import order_query_cli
from tests.support.servers import Servers
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]


async def dead_letters(servers: Servers, *args: str) -> str:
    """`order-query dead-letters ...`, as an operator runs it."""
    return await order_query_cli(servers, "dead-letters", *args)


async def taken_from(rabbit: Rabbit, queue: str, body: bytes) -> bool:
    """Take the message `body` from `queue` (nobody consumes it now); leave the others."""
    channel = await rabbit.connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        found = False
        while (message := await declared.get(no_ack=False, fail=False)) is not None:
            if message.body == body:
                await message.ack()
                found = True
        return found
    finally:
        await channel.close()  # the others go back


def _entry(listing: str, needle: str) -> tuple[str, str]:
    """The listed dead letter whose line holds `needle`: that line, and its error's."""
    lines = listing.splitlines()
    for number, line in enumerate(lines):
        if needle in line:
            return line.strip(), lines[number + 1].strip()
    raise AssertionError(f"{needle!r} is not listed:\n{listing}")


async def test_dead_letters_are_listed_with_their_error_shown_replayed_and_discarded(
    start_query: StartQuery, servers: Servers, rabbit: Rabbit, command: httpx.AsyncClient
) -> None:
    unreadable = b"not json " + uuid.uuid4().hex.encode()
    unknown_order = str(uuid.uuid4())
    unknown = json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "order.deleted",
            "occurred_at": "2026-01-01T00:00:00Z",
            "aggregate_id": unknown_order,
            "version": 3,
            "payload": {"deleted_by": str(uuid.uuid4())},
        }
    ).encode()
    async with start_query():
        await publish_to_queue(rabbit, unreadable)
        await publish_to_queue(rabbit, unknown)
        await eventually(
            lambda: dead_lettered(rabbit),
            until=lambda bodies: unreadable in bodies and unknown in bodies,
            timeout=30,
            what="both in the dead-letter queue",
        )

    listing = await dead_letters(servers)
    assert "order_query.orders.dlq:" in listing
    unknown_line, unknown_error = _entry(listing, f"order.deleted  order {unknown_order}")
    unknown_id = unknown_line.split()[0]
    assert f"attempts {DELIVERY_LIMIT + 1}" in unknown_line
    assert "[invalid]" not in unknown_line
    assert unknown_error == f"LookupError: order {unknown_order} is unknown to order_command"
    unreadable_line, unreadable_error = _entry(listing, "(not JSON)")
    unreadable_id = unreadable_line.split()[0]
    assert unreadable_line.endswith("[invalid]")
    assert unreadable_error.startswith("JSONDecodeError")

    shown = await dead_letters(servers, "show", unknown_id)
    assert '"x-error"' in shown and unknown_order in shown and '"type": "order.deleted"' in shown

    replayed = await dead_letters(servers, "replay", "--all")
    summary = replayed.splitlines()[-1]
    assert summary.startswith("replayed ") and "left 1 invalid" in summary, replayed
    assert unreadable_id in summary
    bodies = await dead_lettered(rabbit)
    assert unreadable in bodies
    assert unknown not in bodies
    assert await taken_from(rabbit, ORDERS.name, unknown), "back in its queue"

    discarded = await dead_letters(servers, "discard", unreadable_id)
    assert discarded.splitlines()[-1].startswith("discarded 1 dead letter(s)")
    assert unreadable not in await dead_lettered(rabbit)
