"""Rebuild the projection from the event logs, online: `order-query rebuild`.

The logs are replayed (auth_service's users first, then order_command's orders) into a new
generation of keys while the live one keeps answering reads and taking events. Once the
replay has reached the end of both logs, the new generation becomes the live one in one SET
(every script of projection.py reads `oq:generation` first); then the logs are read once more
from where the replay ended, through the live path's version checks, for whatever the live
consumers applied to the old generation meanwhile; then the old generation is deleted.

Interrupted (Ctrl-C, a kill), it leaves the live generation as it was: the next run deletes
the half-built one and starts again. One rebuild at a time (a lock that expires).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from order_query.command_side import CommandSide, InternalApi
from order_query.folding import (
    ORDER_EVENTS,
    Verdict,
    canonical,
    fold,
    history_entry,
    judge,
    snapshot_entry,
)
from order_query.projection import (
    LIVE,
    ROOT,
    Projection,
    compact,
    history_key,
    indexes,
    order_key,
    prefix,
    score,
    user_key,
)

BUILDING = f"{ROOT}generation:building"  # the generation a rebuild is writing, while it runs
LOCK = f"{ROOT}rebuild:lock"
LOCK_FOR = 60.0  # seconds a rebuild's lock lasts unless renewed (a killed one's expires)
PAGE = 2000  # events per catch-up read

Report = Callable[[str], None]


class RebuildRunning(RuntimeError):
    """Another rebuild holds the lock."""


@dataclass
class Summary:
    users: int = 0
    events: int = 0
    orders: int = 0
    caught_up: int = 0  # events read again after the switch
    repaired: int = 0  # orders whose log starts part-way, taken from order_command
    deleted_keys: int = 0
    previous: int | None = None
    generation: int = 0
    seconds: float = 0.0


class Progress:
    """One line a second at most: events replayed, their rate, and the time left."""

    def __init__(self, report: Report, what: str, every: float = 1.0) -> None:
        self.report = report
        self.what = what
        self.every = every
        self.started = self.last = time.monotonic()

    def update(self, done: int, position: int, head: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        left = max(head - position, 0)
        eta = f", about {left / rate:.0f} s left" if rate > 0 and not final else ""
        self.report(
            f"  {self.what}: {done} events replayed ({rate:,.0f}/s), "
            f"position {position} of {head}{eta}"
        )


@contextlib.asynccontextmanager
async def _locked(redis: Redis) -> AsyncIterator[Callable[[], Any]]:
    token = uuid.uuid4().hex
    if not await redis.set(LOCK, token, nx=True, px=int(LOCK_FOR * 1000)):
        raise RebuildRunning("another rebuild is running (or was killed less than a minute ago)")

    async def renew() -> None:
        await redis.pexpire(LOCK, int(LOCK_FOR * 1000))

    try:
        yield renew
    finally:
        if await redis.get(LOCK) == token.encode():
            await redis.delete(LOCK)


async def rebuild(
    redis: Redis, *, orders: CommandSide, users: InternalApi, report: Report
) -> Summary:
    started = time.monotonic()
    summary = Summary()
    async with _locked(redis) as renew:
        projection = Projection(redis)
        summary.previous = await projection.live_generation()
        abandoned = await redis.get(BUILDING)
        if abandoned is not None:
            report(f"deleting generation {int(abandoned)}, left half-built by an earlier run")
            await delete_generation(redis, int(abandoned))
        summary.generation = max(summary.previous or 0, int(abandoned or 0)) + 1
        await redis.set(BUILDING, summary.generation)
        target = prefix(summary.generation)
        report(
            f"rebuilding into generation {summary.generation} "
            f"(live: {_named(summary.previous)}), reads go on from the live one"
        )

        users_at = 0
        progress = Progress(report, "users")
        async for page in users.event_pages(limit=PAGE):
            summary.users += await _write_users(redis, target, page["events"])
            users_at = page["next"]
            progress.update(summary.users, users_at, page["head"])
            await renew()
        progress.update(summary.users, users_at, users_at, final=True)

        orders_at = 0
        progress = Progress(report, "orders")
        touched: set[str] = set()
        async for page in orders.event_pages(limit=PAGE):
            repaired = await _replay_orders(redis, target, page["events"], orders, touched)
            summary.repaired += repaired
            summary.events += len(page["events"])
            orders_at = page["next"]
            progress.update(summary.events, orders_at, page["head"])
            await renew()
        progress.update(summary.events, orders_at, orders_at, final=True)
        summary.orders = len(touched)

        await redis.set(LIVE, summary.generation)
        await redis.delete(BUILDING)
        report(f"generation {summary.generation} is live")

        # What the live consumers applied to the old generation after the replay read it.
        async for page in users.event_pages(after=users_at, limit=PAGE):
            for event in page["events"]:
                await projection.add_user(event["payload"])
                summary.caught_up += 1
        async for page in orders.event_pages(after=orders_at, limit=PAGE):
            for event in page["events"]:
                await projection.apply(canonical(event))
                summary.caught_up += 1

        summary.deleted_keys = await delete_generation(redis, summary.previous)
    summary.seconds = time.monotonic() - started
    rate = summary.events / max(summary.seconds, 1e-9)
    report(
        f"done: {summary.users} users and {summary.events} order events ({summary.orders} "
        f"orders) replayed into generation {summary.generation} in {summary.seconds:.1f} s "
        f"({rate:,.0f} events/s); {summary.caught_up} events caught up after the switch; "
        f"{summary.repaired} orders taken from order_command where their log starts "
        f"part-way; {summary.deleted_keys} keys of generation {_named(summary.previous)} "
        "deleted"
    )
    return summary


def _named(generation: int | None) -> str:
    return "the unnumbered one" if generation is None else str(generation)


async def _write_users(redis: Redis, target: str, events: list[dict[str, Any]]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            user = event["payload"]
            pipe.hset(
                target + user_key(str(user["id"])),
                mapping={
                    "username": user["username"],
                    "email": user["email"],
                    "role": user["role"],
                },
            )
        await pipe.execute()
    return len(events)


async def _replay_orders(
    redis: Redis,
    target: str,
    events: list[dict[str, Any]],
    orders: CommandSide,
    touched: set[str],
) -> int:
    """Fold a page of the log into the generation being built: the orders it touches are read
    once (those seen on earlier pages), folded here, and written back in one pipeline. Only
    this rebuild writes the generation, so no version check against other writers is needed.
    Returns how many orders had to be taken from order_command (their log starts part-way)."""
    ids = list(dict.fromkeys(str(event["aggregate_id"]) for event in events))
    seen = [order_id for order_id in ids if order_id in touched]
    stored = await redis.mget([target + order_key(i) for i in seen]) if seen else []
    before: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    before.update({i: json.loads(raw) for i, raw in zip(seen, stored, strict=True) if raw})
    after = dict(before)
    entries: dict[str, dict[str, str]] = {i: {} for i in ids}
    repaired = 0
    for raw_event in events:
        if raw_event["type"] not in ORDER_EVENTS:
            continue
        event = canonical(raw_event)
        order_id = str(event["aggregate_id"])
        current = after[order_id]
        verdict = judge(current["version"] if current else 0, event["version"])
        if verdict is Verdict.GAP:
            fetched = await orders.order(order_id)
            if fetched is None:
                raise LookupError(f"order {order_id} is in the log but not on order_command")
            entries[order_id][str(fetched["version"])] = compact(snapshot_entry(fetched))
            after[order_id] = current = fetched
            repaired += 1
            verdict = judge(current["version"], event["version"])
        if verdict is Verdict.APPLY:
            after[order_id] = fold(current, event)
        entries[order_id][str(event["version"])] = compact(history_entry(event))
    async with redis.pipeline(transaction=False) as pipe:
        for order_id in ids:
            order = after[order_id]
            if order is None:
                continue
            _write_order(pipe, target, before[order_id], order, entries[order_id])
        await pipe.execute()
    touched.update(ids)
    return repaired


def _write_order(
    pipe: Any,
    target: str,
    previous: dict[str, Any] | None,
    order: dict[str, Any],
    entries: dict[str, str],
) -> None:
    order_id = str(order["id"])
    pipe.set(target + order_key(order_id), compact(order))
    was, now = indexes(previous) if previous else set(), indexes(order)
    for index in was - now:
        pipe.zrem(target + index, order_id)
    for index in now - was:
        pipe.zadd(target + index, {order_id: score(order)})
    if entries:
        pipe.hset(target + history_key(order_id), mapping=entries)


def _patterns(generation: int | None) -> Iterable[str]:
    if generation is not None:
        return [f"{prefix(generation)}*"]
    # The unnumbered generation's keys, and none of the numbered ones' or the control keys.
    return [f"{ROOT}order:*", f"{ROOT}orders*", f"{ROOT}user:*"]


async def delete_generation(redis: Redis, generation: int | None) -> int:
    """Delete every key of a generation, a batch at a time (never the live one's: the caller
    has made another live first). Returns how many were deleted."""
    deleted = 0
    for pattern in _patterns(generation):
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await redis.unlink(*batch)
    return deleted
