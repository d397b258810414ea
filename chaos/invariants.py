"""What must hold after the faults and the drain, each as a figure (the count of its
violations, 0 when it holds), read from the record of the platform itself: its databases,
its event logs, its Redis projection and its broker."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from redis.asyncio import Redis

from chaos.workload import Record
from order_command.consumers import QUEUE_NAME as COMMANDS
from order_query.projection import Projection
from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from shared.db import asyncpg_dsn
from shared.topology import dead_letter_queue
from status_worker import topology as timers

DEAD_LETTER_QUEUES = [
    dead_letter_queue(name).name for name in (ORDERS_QUEUE, USERS_QUEUE, COMMANDS, timers.DUE)
]

CHAIN = ["PENDING", "PAID", "SHIPPED", "CANCELED"]
COMPARED = ("status", "version", "items", "total_price", "is_deleted")


@dataclass
class Facts:
    """Everything the invariants look at, read once after the drain."""

    orders: dict[str, dict[str, Any]]  # order_command's orders (id -> row as JSON-ish)
    logged: set[tuple[str, int, str, str | None]]  # (order, version, type, to_status)
    unpublished: int  # events of both logs the broker never confirmed
    names_by_key: Counter[str]  # orders per idempotency key (from the item name)
    projected: dict[str, dict[str, Any] | None]  # order id -> projected order
    histories: dict[str, list[int]]  # order id -> versions in its history, in order
    snapshots: int  # history entries that are snapshots, not events
    dead_letters: dict[str, int]  # dead-letter queue -> messages
    record: Record
    interval: float
    ended_at: float  # when the last fault's harm ended (monotonic)
    drained_at: float


async def read_facts(
    orders_url: str,
    auth_url: str,
    redis: Redis,
    amqp_url: str,
    record: Record,
    interval: float,
    ended_at: float,
    drained_at: float,
) -> Facts:
    db = await asyncpg.connect(asyncpg_dsn(orders_url))
    try:
        rows = await db.fetch(
            "select id::text, status, version, items, total_price::text, is_deleted from orders"
        )
        orders = {
            r["id"]: {
                "status": r["status"],
                "version": r["version"],
                "items": json.loads(r["items"]),
                "total_price": r["total_price"],
                "is_deleted": r["is_deleted"],
            }
            for r in rows
        }
        logged = {
            (r["aggregate_id"], r["version"], r["type"], r["to_status"])
            for r in await db.fetch(
                "select aggregate_id::text, version, type, payload->>'to_status' as to_status"
                " from event_log"
            )
        }
        unpublished = await db.fetchval("select count(*) from unpublished_events")
        names = Counter(
            r["name"]
            for r in await db.fetch(
                "select item->>'name' as name from orders, jsonb_array_elements(items) item"
                " where item->>'name' like 'chaos %'"
            )
        )
    finally:
        await db.close()
    auth = await asyncpg.connect(asyncpg_dsn(auth_url))
    try:
        unpublished += await auth.fetchval("select count(*) from unpublished_events")
    finally:
        await auth.close()
    projection = Projection(redis)
    projected: dict[str, dict[str, Any] | None] = {}
    histories: dict[str, list[int]] = {}
    snapshots = 0
    for order_id in orders:
        raw = await projection.get(order_id)
        projected[order_id] = json.loads(raw) if raw else None
        entries = await projection.history(order_id)
        histories[order_id] = [e.version for e in entries]
        snapshots += sum(1 for e in entries if e.type == "order.snapshot")
    return Facts(
        orders=orders,
        logged=logged,
        unpublished=unpublished,
        names_by_key=names,
        projected=projected,
        histories=histories,
        snapshots=snapshots,
        dead_letters=await dead_letters(amqp_url),
        record=record,
        interval=interval,
        ended_at=ended_at,
        drained_at=drained_at,
    )


async def dead_letters(amqp_url: str) -> dict[str, int]:
    """Every dead-letter queue the platform declares, and how many messages wait in it."""
    found = {}
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        for name in DEAD_LETTER_QUEUES:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                found[name] = queue.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                found[name] = 0  # never declared: nothing dead-lettered there
    finally:
        await connection.close()
    return found


# --- the invariants: each the list of what violates it ---------------------------------------


def missing_creates(f: Facts) -> list[str]:
    """Acknowledged creates that order_command does not hold."""
    return [o for o in f.record.created.values() if o not in f.orders]


def duplicated_by_a_retried_key(f: Facts) -> list[str]:
    """Idempotency keys that made more than one order."""
    return [name for name, count in f.names_by_key.items() if count > 1]


def changes_not_kept(f: Facts) -> list[str]:
    """Acknowledged changes whose event is not in the log at the version answered."""
    return [
        f"{c.order_id} v{c.version} {c.type}"
        for c in f.record.changes
        if (c.order_id, c.version, c.type, c.to_status) not in f.logged
    ]


def never_published(f: Facts) -> list[str]:
    return [f"{f.unpublished} events"] if f.unpublished else []


def projection_unequal(f: Facts) -> list[str]:
    """Orders the projection holds otherwise than order_command (or not at all)."""
    found = []
    for order_id, held in f.orders.items():
        seen = f.projected.get(order_id)
        if (
            seen is None
            or any(str(seen.get(k)) != str(held[k]) for k in COMPARED if k != "items")
            or [i["name"] for i in seen["items"]] != [i["name"] for i in held["items"]]
        ):
            found.append(order_id)
    return found


def histories_broken(f: Facts) -> list[str]:
    """Histories with a missing or doubled version, or a snapshot where an event belongs."""
    found = [
        o
        for o, held in f.orders.items()
        if f.histories.get(o) != list(range(1, held["version"] + 1))
    ]
    return found + ([f"{f.snapshots} snapshot entries"] if f.snapshots else [])


def lifecycles_unfinished(f: Facts) -> list[str]:
    """Orders (not deleted) not CANCELED by the end of the drain."""
    return [
        o for o, held in f.orders.items() if not held["is_deleted"] and held["status"] != "CANCELED"
    ]


def dead_lettered(f: Facts) -> list[str]:
    return [f"{name}: {n}" for name, n in f.dead_letters.items() if n]


INVARIANTS: dict[str, Callable[[Facts], list[str]]] = {
    "acknowledged creates missing": missing_creates,
    "orders duplicated by a retried key": duplicated_by_a_retried_key,
    "acknowledged changes not kept": changes_not_kept,
    "events never published": never_published,
    "orders the projection holds otherwise": projection_unequal,
    "histories with a missing or doubled version": histories_broken,
    "lifecycles not finished": lifecycles_unfinished,
    "messages in dead-letter queues": dead_lettered,
}


def check(facts: Facts) -> dict[str, list[str]]:
    return {name: invariant(facts) for name, invariant in INVARIANTS.items()}
