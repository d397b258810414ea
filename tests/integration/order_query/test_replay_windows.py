"""A replay in windows writes what the live path writes: orders whose events span windows
(statuses that move them from index to index, an update, a deletion) leave, key for key, the
same orders, histories and sorted sets as the consumers' one-event-at-a-time path."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from order_query import rebuild
from order_query.projection import LIVE, Projection, prefix
from shared.events import ORDER_EVENT
from tests.integration.order_query.conftest import lose_projection

START = datetime(2026, 11, 30, 4, 0, 0, 123456, tzinfo=UTC)
ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]
MORE = [{"name": "tea", "price": "2.50", "quantity": 3}]


def _at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _event(
    order_id: str, version: int, kind: str, payload: dict[str, Any], t: int
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 2 if kind == "order.created" else 1,
        "occurred_at": _at(t),
        "aggregate_id": order_id,
        "version": version,
        "payload": payload,
    }


def _one_order(n: int, user: str, rng: random.Random) -> list[dict[str, Any]]:
    """An order's events: created, then a few of status changes, an update, a deletion."""
    order_id, t = str(uuid.uuid4()), n
    events = [
        _event(
            order_id,
            1,
            "order.created",
            {
                "id": order_id,
                "user_id": user,
                "items": ITEMS,
                "total_price": "5.00",
                "currency": "USD",
                "status": "PENDING",
                "version": 1,
                "is_deleted": False,
                "created_at": _at(t),
                "updated_at": _at(t),
            },
            t,
        )
    ]
    status = "PENDING"
    for to in ("PAID", "SHIPPED", "CANCELED")[: rng.randint(0, 3)]:
        t += 60
        changed = {"from_status": status, "to_status": to, "changed_by": None}
        events.append(_event(order_id, len(events) + 1, "order.status_changed", changed, t))
        status = to
    if rng.random() < 0.3:
        t += 60
        updated = {"items": MORE, "total_price": "7.50", "updated_by": user}
        events.append(_event(order_id, len(events) + 1, "order.updated", updated, t))
    if rng.random() < 0.2:
        t += 60
        events.append(_event(order_id, len(events) + 1, "order.deleted", {"deleted_by": user}, t))
    return events


def _interleaved(orders: list[list[dict[str, Any]]], rng: random.Random) -> list[dict[str, Any]]:
    """Every order's events in version order, the orders' interleaved, as in a log."""
    queues = [list(events) for events in orders]
    log: list[dict[str, Any]] = []
    while queues:
        queue = rng.choice(queues)
        log.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return log


async def _contents(redis: Redis, generation: int) -> dict[str, Any]:
    """Every key of a generation, by its name within it, with its value."""
    start = prefix(generation)
    contents: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{start}*"):
        name, kind = key.decode()[len(start) :], await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            contents[name] = await redis.get(key)
        elif kind == "hash":
            contents[name] = await redis.hgetall(key)
        else:
            contents[name] = await redis.zrange(key, 0, -1, withscores=True)
    return contents


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_replay_in_small_windows_writes_what_the_live_path_writes(
    redis: Redis, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    users = [str(uuid.uuid4()) for _ in range(3)]
    log = _interleaved([_one_order(n, rng.choice(users), rng) for n in range(12)], rng)
    await lose_projection(redis)

    await redis.set(LIVE, 1)
    live = Projection(redis)
    for event in log:
        await live.apply(ORDER_EVENT.validate_python(event))

    # Windows of 2 orders and calls of 1 order or 4 index values: an order's events span
    # windows, and a window's index changes span calls.
    monkeypatch.setattr(rebuild, "INDEX_VALUES", 4)
    replay = rebuild.OrderReplay(redis, prefix(2), orders=None, window=2, batch=1)  # type: ignore[arg-type]
    for start in range(0, len(log), 3):
        await replay.add([ORDER_EVENT.validate_python(e) for e in log[start : start + 3]])
    await replay.finish()

    replayed, applied = await _contents(redis, 2), await _contents(redis, 1)
    assert replayed.keys() == applied.keys()
    assert replayed == applied
    assert any(name.endswith(":CANCELED") for name in applied)  # statuses moved orders on
