"""The read use cases: who may see what, filters, cursor pagination, the history."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from order_query.command_side import CommandSide
from order_query.projection import Projection, index_key
from shared.errors import AppError, NotFound
from shared.events import OrderStatus
from shared.security import Principal

SCAN_CHUNK = 200
SCAN_MOST = 5_000  # ids looked at per request at most when filtering on the total

Scored = tuple[str, float]  # an order id and its index score (creation time)


@dataclass(frozen=True)
class Filters:
    """The status and the creation range are read from the indexes; the total is checked on
    the orders themselves."""

    status: OrderStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None

    @property
    def on_total(self) -> bool:
        return self.min_total is not None or self.max_total is not None

    def keeps(self, raw: bytes) -> bool:
        if not self.on_total:
            return True
        total = Decimal(json.loads(raw)["total_price"])
        if self.min_total is not None and total < self.min_total:
            return False
        return self.max_total is None or total <= self.max_total


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last order looked at, by its place in the index."""

    score: float
    order_id: str


class BadCursor(AppError):
    status_code = 400
    code = "bad_cursor"


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.score, cursor.order_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> Cursor:
    try:
        score, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        decoded = Cursor(float(score), str(uuid.UUID(order_id)))
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise BadCursor("The cursor is not one this API gave out") from exc
    if not math.isfinite(decoded.score):
        raise BadCursor("The cursor is not one this API gave out")
    return decoded


@dataclass(frozen=True)
class Page:
    items: bytes  # the orders' JSON as stored (the API's form), joined by commas
    next_cursor: str | None  # None: there is nothing after this page


@dataclass
class OrderQueries:
    projection: Projection
    command_side: CommandSide

    async def order(self, principal: Principal, order_id: str) -> bytes:
        """The order's JSON as stored; a miss is repaired from the command side first."""
        raw = await self.projection.get(order_id)
        if raw is None:
            fetched = await self.command_side.order(order_id)
            if fetched is not None:
                await self.projection.put(fetched)
                raw = await self.projection.get(order_id)
        if raw is None:
            raise NotFound("No such order")
        order = json.loads(raw)
        if order["is_deleted"] or not _may_see(principal, order["user_id"]):
            raise NotFound("No such order")
        return raw

    async def history(self, principal: Principal, order_id: str) -> list[dict[str, Any]]:
        await self.order(principal, order_id)  # the same 404s as the order itself
        entries = await self.projection.history(order_id)
        users = {e["actor"]["id"] for e in entries if e["actor"] and e["actor"]["id"]}
        names = await self.projection.usernames(users)
        for entry in entries:
            actor = entry["actor"]
            if actor is None:
                continue
            if actor["kind"] == "system":
                actor["username"] = "status_worker"
            else:
                actor["username"] = names.get(actor["id"])
        return entries

    async def orders(
        self,
        principal: Principal,
        *,
        user_id: str | None,
        filters: Filters,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """A page of orders, newest first. A user sees their own; an admin may name a user,
        or sees everybody's."""
        if user_id is not None and not _may_see(principal, user_id):
            raise NotFound("No such user")  # another user's list does not exist for you
        if user_id is None and not principal.is_admin:
            user_id = str(principal.user_id)
        status = filters.status.value if filters.status else None
        after = decode_cursor(cursor) if cursor else None
        return await self._page(index_key(user_id, status), filters, limit, after)

    async def _page(self, key: str, filters: Filters, limit: int, after: Cursor | None) -> Page:
        """Walk the index down from `after` (keyset: an order created or deleted meanwhile
        never shifts what comes next), keeping what the filters keep. Without a filter on the
        total, Redis does it in one script; with one, chunks of the index are read and the
        orders' totals checked here."""
        low = filters.created_from.timestamp() if filters.created_from else -math.inf
        high = filters.created_to.timestamp() if filters.created_to else math.inf
        if after is not None and after.score > high:
            after = None  # a cursor above the range: start at its top
        if after is not None and after.score < low:
            return Page(b"", None)
        if not filters.on_total:  # the index says it all: one script, one round trip
            start = (after.score, after.order_id) if after else None
            items, end = await self.projection.newest(key, high, low, limit, start)
            return Page(items, encode_cursor(Cursor(*end)) if end else None)
        page: list[bytes] = []
        last, looked_at = after, 0
        while True:
            chunk = await self._ids_after(key, last, low, high, SCAN_CHUNK)
            raws = await self.projection.get_many([order_id for order_id, _ in chunk])
            for (order_id, score), raw in zip(chunk, raws, strict=True):
                if len(page) == limit:
                    return Page(b",".join(page), encode_cursor(last) if last else None)
                last, looked_at = Cursor(score, order_id), looked_at + 1
                if raw is not None and filters.keeps(raw):
                    page.append(raw)
            if len(chunk) < SCAN_CHUNK:
                return Page(b",".join(page), None)
            if looked_at >= SCAN_MOST and last is not None:
                return Page(b",".join(page), encode_cursor(last))

    async def _ids_after(
        self, key: str, after: Cursor | None, low: float, high: float, count: int
    ) -> list[Scored]:
        """Up to `count` ids of the index, newest first, from `high` down to `low`, after
        `after`. Ids that share a score are ordered by id, downwards, as Redis orders them."""
        redis = self.projection.redis
        if after is None:
            found = await redis.zrevrangebyscore(
                key, high, low, start=0, num=count, withscores=True
            )
            return _scored(found)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrevrangebyscore(key, after.score, after.score, withscores=True)
            pipe.zrevrangebyscore(
                key, f"({after.score!r}", low, start=0, num=count, withscores=True
            )
            ties, below = await pipe.execute()
        rest = [(i, s) for i, s in _scored(ties) if i < after.order_id]
        return (rest + _scored(below))[:count]


def _scored(found: Any) -> list[Scored]:
    """What ZREVRANGEBYSCORE ... WITHSCORES answers: (member bytes, score) pairs."""
    return [(member.decode(), score) for member, score in found]


def _may_see(principal: Principal, owner: str) -> bool:
    return principal.is_admin or str(principal.user_id) == owner
