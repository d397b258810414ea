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

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from order_query.command_side import CommandSide, EventPage, InternalApi
from order_query.folding import Entry, Verdict, fold, history_entry, judge, snapshot_entry
from order_query.projection import (
    LIVE,
    ROOT,
    Projection,
    indexes,
    order_key,
    prefix,
    score,
    stored,
    user_fields,
    user_key,
)
from shared.events import Envelope, OrderEvent, UserRegistered
from shared.schemas import OrderOut

BUILDING = f"{ROOT}generation:building"  # the generation a rebuild is writing, while it runs
LOCK = f"{ROOT}rebuild:lock"
LOCK_FOR = 60.0  # seconds a rebuild's lock lasts unless renewed (a killed one's expires)
PAGE = 5000  # events per catch-up read (the most /internal/events gives)
INDEX_VALUES = 4000  # values per index write (Lua's unpack takes at most about 8,000)
# Folding is Python without a pause: every so many events it lets the event loop send the
# window's next write and read the next page, or Redis and order_command would wait for it.
YIELD_EVERY = 250
WRITES_IN_FLIGHT = 4  # a window's calls to Redis at once (measured: 1 cost 1.2 s of 10)

Report = Callable[[str], None]
# The logs' pages, their events validated (and upcast) as they are read.
UserPage = EventPage[Envelope[UserRegistered]]
OrderPage = EventPage[OrderEvent]


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
        async for users_page in users.event_pages(UserPage, limit=PAGE):
            summary.users += await _write_users(redis, target, users_page.events)
            users_at = users_page.next
            progress.update(summary.users, users_at, users_page.head)
            await renew()
        progress.update(summary.users, users_at, users_at, final=True)

        orders_at = 0
        progress = Progress(report, "orders")
        replay = OrderReplay(redis, target, orders)
        async for page in orders.event_pages(OrderPage, limit=PAGE):
            await replay.add(page.events)
            summary.events += len(page.events)
            orders_at = page.next
            progress.update(summary.events, orders_at, page.head)
            await renew()
        await replay.finish()
        progress.update(summary.events, orders_at, orders_at, final=True)
        summary.orders, summary.repaired = len(replay.written), replay.repaired

        await redis.set(LIVE, summary.generation)
        await redis.delete(BUILDING)
        report(f"generation {summary.generation} is live")

        # What the live consumers applied to the old generation after the replay read it.
        async for users_page in users.event_pages(UserPage, after=users_at, limit=PAGE):
            for user in users_page.events:
                await projection.add_user(user.payload)
                summary.caught_up += 1
        async for page in orders.event_pages(OrderPage, after=orders_at, limit=PAGE):
            for event in page.events:
                await projection.apply(event)
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


async def _write_users(redis: Redis, target: str, events: list[Envelope[UserRegistered]]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            user = event.payload
            pipe.hset(target + user_key(str(user.id)), mapping=user_fields(user))
        await pipe.execute()
    return len(events)


# A window is written with two scripts (ARGV[1]: the generation's prefix; ARGV[2]: a JSON
# array), a call per few thousand values: Redis does the many small writes, and Python sends
# one argument, not thirty an order (decision 86). _WRITE_ORDERS: per order, its id, its JSON
# and its history entries by version (strings: stored as they are). _WRITE_INDEXES: per
# index, ZADD (score, id, ...) or ZREM (id, ...) of the window's orders together: a sorted
# set takes many members in one command for little more than one (decision 105).
_WRITE_ORDERS = """
local p = ARGV[1]
for _, o in ipairs(cjson.decode(ARGV[2])) do
  local key = p .. 'order:' .. o[1]
  redis.call('SET', key, o[2])
  local entries = {}
  for version, entry in pairs(o[3]) do
    entries[#entries + 1] = version
    entries[#entries + 1] = entry
  end
  if #entries > 0 then redis.call('HSET', key .. ':history', unpack(entries)) end
end
"""
_WRITE_INDEXES = """
local p = ARGV[1]
for _, change in ipairs(cjson.decode(ARGV[2])) do
  redis.call(change[1], p .. change[2], unpack(change[3]))
end
"""


class OrderReplay:
    """Folds the orders' log into the generation being built, a window of orders at a time:
    an order written to the generation once per window, whatever number of its events the
    window holds. Only the rebuild writes the generation, so no version check is needed.

    A window is written while the next is folded (one write in flight at most); an order the
    next window continues is taken from the last window's states in memory, so folding never
    waits for that write, and an older one is read back from the generation."""

    def __init__(
        self,
        redis: Redis,
        target: str,
        orders: CommandSide,
        *,
        window: int = 10_000,
        batch: int = 500,
    ) -> None:
        self.redis = redis
        self.target = target
        self.orders = orders
        self.window = window
        self.batch = batch
        self.written: set[str] = set()  # orders the generation holds (written by a flush)
        self.recent: dict[str, OrderOut] = {}  # the last window's orders, as written
        self.writing: asyncio.Task[None] | None = None
        self.before: dict[str, OrderOut | None] = {}  # as the generation holds them
        self.after: dict[str, OrderOut | None] = {}
        self.entries: dict[str, dict[int, Entry]] = {}
        self.repaired = 0
        self.folded = 0
        self._write_orders = redis.register_script(_WRITE_ORDERS)
        self._write_indexes = redis.register_script(_WRITE_INDEXES)

    async def add(self, events: list[OrderEvent]) -> None:
        """Fold a page of the log in (reading, in one MGET, the orders it continues)."""
        await self._load({str(e.aggregate_id) for e in events} - self.after.keys())
        for n, event in enumerate(events):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the write in flight and the next page's fetch go on
            order_id = str(event.aggregate_id)
            current = self.after[order_id]
            verdict = judge(current.version if current else 0, event.version)
            if verdict is Verdict.GAP:
                current = await self._repair(order_id)
                verdict = judge(current.version, event.version)
            if verdict is Verdict.APPLY:
                self.after[order_id] = fold(current, event)
            self.entries[order_id][event.version] = history_entry(event)
            self.folded += 1
        if len(self.after) >= self.window:
            await self.flush()

    async def _load(self, ids: set[str]) -> None:
        for order_id in ids:
            self.before[order_id] = self.after[order_id] = self.recent.get(order_id)
            self.entries[order_id] = {}
        older = sorted((ids & self.written) - self.recent.keys())  # written and done with
        if older:
            found = await self.redis.mget([self.target + order_key(i) for i in older])
            for order_id, raw in zip(older, found, strict=True):
                if raw is not None:
                    self.before[order_id] = self.after[order_id] = stored(raw)

    async def _repair(self, order_id: str) -> OrderOut:
        """An order whose log starts part-way: its state from order_command, as a snapshot."""
        fetched = await self.orders.order(order_id)
        if fetched is None:
            raise LookupError(f"order {order_id} is in the log but not on order_command")
        self.entries[order_id][fetched.version] = snapshot_entry(fetched)
        self.after[order_id] = fetched
        self.repaired += 1
        return fetched

    async def flush(self) -> None:
        """Start writing the window's orders and start a new window."""
        if self.writing is not None:
            await self.writing  # one write in flight: the one before this is done
        ready = [i for i, order in self.after.items() if order is not None]
        orders = [self._order_args(i) for i in ready]
        calls = [
            (self._write_orders, orders[start : start + self.batch])
            for start in range(0, len(orders), self.batch)
        ]
        calls += [(self._write_indexes, changes) for changes in self._index_changes(ready)]
        self.writing = asyncio.create_task(self._write_all(calls))
        self.written.update(ready)
        self.recent = {i: order for i, order in self.after.items() if order is not None}
        self.before, self.after, self.entries = {}, {}, {}

    async def finish(self) -> None:
        """Write what is left, and wait until every write is done."""
        await self.flush()
        assert self.writing is not None
        await self.writing

    async def _write_all(self, calls: list[tuple[AsyncScript, list[Any]]]) -> None:
        """A few calls in flight: Redis runs the next while this process folds (it sends a
        call, or reads an answer, only between two pages' events)."""
        in_flight = asyncio.Semaphore(WRITES_IN_FLIGHT)

        async def write(script: AsyncScript, argument: list[Any]) -> None:
            async with in_flight:
                await script(args=[self.target, orjson.dumps(argument)])

        await asyncio.gather(*(write(script, argument) for script, argument in calls))

    def _order_args(self, order_id: str) -> list[Any]:
        order = self.after[order_id]
        assert order is not None
        entries = {str(v): entry.model_dump_json() for v, entry in self.entries[order_id].items()}
        return [order_id, order.model_dump_json(), entries]

    def _index_changes(self, ready: list[str]) -> Iterator[list[Any]]:
        """The window's index changes, a few thousand values a call: [command, index, values]."""
        added: dict[str, list[str]] = defaultdict(list)
        removed: dict[str, list[str]] = defaultdict(list)
        for order_id in ready:
            order, previous = self.after[order_id], self.before[order_id]
            assert order is not None
            was, now = indexes(previous) if previous else set(), indexes(order)
            at = score(order)
            for index in now - was:
                added[index] += (at, order_id)
            for index in was - now:
                removed[index].append(order_id)
        changes = [("ZADD", i, values) for i, values in added.items()]
        changes += [("ZREM", i, values) for i, values in removed.items()]
        call: list[Any] = []
        size = 0
        for command, index, values in changes:
            for start in range(0, len(values), INDEX_VALUES):
                part = values[start : start + INDEX_VALUES]
                call.append([command, index, part])
                size += len(part)
                if size >= INDEX_VALUES:
                    yield call
                    call, size = [], 0
        if call:
            yield call


def _pattern(generation: int | None) -> str:
    if generation is not None:
        return f"{prefix(generation)}*"
    # The unnumbered generation's keys (order:*, orders*, user:*), and none of the numbered
    # ones' (oq:<n>:...) or the control keys (oq:generation, oq:changes, oq:rebuild:lock).
    return f"{ROOT}[ou]*"


async def delete_generation(redis: Redis, generation: int | None) -> int:
    """Delete every key of a generation, a batch at a time (never the live one's: the caller
    has made another live first). Returns how many were deleted."""
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=_pattern(generation), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted
