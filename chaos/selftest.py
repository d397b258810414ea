"""The suite checks itself: with the services stopped, the platform's own data is corrupted,
one invariant's worth at a time, and that invariant, read again from the data, must fail.
(The log cannot be corrupted, by design: for "acknowledged changes not kept" the record of
what was acknowledged gets a change the platform never made.)"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
import asyncpg

from chaos.invariants import DEAD_LETTER_QUEUES, INVARIANTS, Facts
from chaos.stack import ChaosStack
from chaos.workload import Change, Record
from order_query.projection import Projection, history_key, order_key, prefix
from shared.db import asyncpg_dsn

Corrupt = Callable[[ChaosStack, Facts], Awaitable[Record | None]]


def _some_order(facts: Facts, n: int, *, canceled: bool = False, named: bool = False) -> str:
    """The n-th order fit for a corruption: each corruption takes an order of its own, so
    one does not undo another (an order deleted is no longer there to be mis-projected)."""
    mine = set(facts.record.created.values())
    fit = [
        order_id
        for order_id, held in facts.orders.items()
        if not held["is_deleted"]
        and (not canceled or held["status"] == "CANCELED")
        and (not named or any(i["name"].startswith("chaos ") for i in held["items"]))
        and order_id in mine
    ]
    if len(fit) <= n:
        raise RuntimeError("not enough orders to corrupt")
    return sorted(fit)[n]


async def _sql(stack: ChaosStack, statement: str, *args: object) -> None:
    db = await asyncpg.connect(asyncpg_dsn(stack.env["ORDERS_DATABASE_URL"]))
    try:
        await db.execute(statement, *args)
    finally:
        await db.close()


async def _lose_a_create(stack: ChaosStack, facts: Facts) -> None:
    await _sql(stack, "delete from orders where id = $1", uuid.UUID(_some_order(facts, 0)))


async def _duplicate_an_order(stack: ChaosStack, facts: Facts) -> None:
    original = uuid.UUID(_some_order(facts, 1, named=True))
    await _sql(
        stack,
        "insert into orders (id, user_id, items, total_price, currency, status, version,"
        " is_deleted, created_at, updated_at) select $2, user_id, items, total_price, currency,"
        " status, version, is_deleted, created_at, updated_at from orders where id = $1",
        original,
        uuid.uuid4(),
    )


async def _claim_a_change_never_made(stack: ChaosStack, facts: Facts) -> Record:
    made_up = Change(_some_order(facts, 2), 999, "order.status_changed", 0.0, "PAID")
    return dataclasses.replace(facts.record, changes=[*facts.record.changes, made_up])


async def _leave_an_event_unsent(stack: ChaosStack, facts: Facts) -> None:
    await _sql(
        stack, "insert into unpublished_events (position) select max(position) from event_log"
    )


async def _project_a_wrong_version(stack: ChaosStack, facts: Facts) -> None:
    assert stack.redis is not None
    order_id = _some_order(facts, 3)
    raw = await Projection(stack.redis).get(order_id)
    assert raw is not None
    order = json.loads(raw)
    live = prefix(await Projection(stack.redis).live_generation())
    await stack.redis.set(live + order_key(order_id), json.dumps({**order, "version": 0}))


async def _lose_a_history_entry(stack: ChaosStack, facts: Facts) -> None:
    assert stack.redis is not None
    order_id = _some_order(facts, 4)
    live = prefix(await Projection(stack.redis).live_generation())
    await stack.redis.hdel(live + history_key(order_id), "1")


async def _stop_a_lifecycle(stack: ChaosStack, facts: Facts) -> None:
    order_id = _some_order(facts, 5, canceled=True)
    await _sql(stack, "update orders set status = 'PAID' where id = $1", uuid.UUID(order_id))


async def _dead_letter_a_message(stack: ChaosStack, facts: Facts) -> None:
    assert stack.node is not None
    connection = await aio_pika.connect(stack.node.url, timeout=10)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"corrupt": true}'), routing_key=DEAD_LETTER_QUEUES[0]
        )
    finally:
        await connection.close()


CORRUPTIONS: dict[str, Corrupt] = {
    "acknowledged creates missing": _lose_a_create,
    "orders duplicated by a retried key": _duplicate_an_order,
    "acknowledged changes not kept": _claim_a_change_never_made,
    "events never published": _leave_an_event_unsent,
    "orders the projection holds otherwise": _project_a_wrong_version,
    "histories with a missing or doubled version": _lose_a_history_entry,
    "lifecycles not finished": _stop_a_lifecycle,
    "messages in dead-letter queues": _dead_letter_a_message,
}
assert set(CORRUPTIONS) == set(INVARIANTS), "every invariant has its corruption"


async def self_test(
    stack: ChaosStack, facts: Facts, read: Callable[[Record], Awaitable[Facts]]
) -> dict[str, int]:
    """Each invariant's violations on data corrupted for it (each must be 1 or more). The
    corruptions pile up, but each invariant reads only what its own corruption touches."""
    caught = {}
    for name, corrupt in CORRUPTIONS.items():
        record = await corrupt(stack, facts) or facts.record
        caught[name] = len(INVARIANTS[name](await read(record)))
    return caught
