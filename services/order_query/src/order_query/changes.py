"""The change feed: every write of an order, in write order, read from the projection's Redis
stream (`projection.CHANGES`, appended in the same script as the write) and fanned out, in
each process, to the open order streams (stream.py).

One reader per process, whatever the number of streams: a task that follows the Redis stream
with a blocking XREAD on a connection of its own, and offers each entry to every subscriber.
A subscriber that falls too far behind (its queue is full) is marked overflowed: its stream
ends, and the client resumes from its Last-Event-ID, read back from Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_exc
from redis.asyncio import Redis

from order_query.projection import CHANGES
from shared.schemas import OrderOut

log = logging.getLogger(__name__)

StreamId = tuple[int, int]


def parse_id(text: str) -> StreamId:
    """A Redis stream id (`<ms>-<seq>`), comparable."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class Change:
    id: str  # the stream entry's id: the server-sent event's id
    order: OrderOut  # the order after the change
    raw: bytes  # its JSON, as stored

    @classmethod
    def of(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Change:
        raw = fields[b"order"]
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return cls(text, OrderOut.model_validate_json(raw), raw)


@dataclass(eq=False)
class Subscription:
    """One open stream's view of the feed: the changes it wants, queued until it sends them."""

    wants: Callable[[OrderOut], bool]
    queue: asyncio.Queue[Change] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    def offer(self, change: Change) -> None:
        if self.overflowed or not self.wants(change.order):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True  # it resumes from Redis, with its Last-Event-ID


class ChangeFeed:
    def __init__(self, redis: Redis, *, block: float = 1.0, page: int = 500) -> None:
        """`redis` is a client of its own: its socket timeout must outlast `block` seconds."""
        self.redis = redis
        self.block = block
        self.page = page
        self.subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    async def last_id(self) -> str:
        """The newest entry's id ("0-0": the feed is empty)."""
        newest: Any = await self.redis.xrevrange(CHANGES, count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def holds(self, entry_id: str) -> bool:
        """Whether the entry is still in the feed (not trimmed): a stream may resume after it."""
        return bool(await self.redis.xrange(CHANGES, entry_id, entry_id, count=1))

    async def since(self, after: str) -> list[Change]:
        """Up to `page` changes after `after`, oldest first."""
        entries: Any = await self.redis.xrange(CHANGES, f"({after}", "+", count=self.page)
        return [Change.of(entry_id, fields) for entry_id, fields in entries]

    async def subscribe(self, wants: Callable[[OrderOut], bool]) -> Subscription:
        """Every change from now on that `wants` keeps goes to the subscription's queue. The
        reader starts with the first subscriber, from the feed's newest entry."""
        if self._task is None or self._task.done():
            cursor = await self.last_id()
            self._task = asyncio.create_task(self._follow(cursor), name="change feed")
        subscription = Subscription(wants)
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)

    async def _follow(self, cursor: str) -> None:
        delay = 0.1
        while True:
            try:
                read: Any = await self.redis.xread(
                    {CHANGES: cursor}, count=self.page, block=int(self.block * 1000)
                )
                delay = 0.1
            except (redis_exc.ConnectionError, redis_exc.TimeoutError, OSError) as exc:
                log.warning("change feed: Redis: %s; retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for _, entries in read:
                for entry_id, fields in entries:
                    change = Change.of(entry_id, fields)
                    cursor = change.id
                    for subscription in list(self.subscribers):
                        subscription.offer(change)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()
