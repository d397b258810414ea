"""The read use cases: who may see what, filters, cursor pagination, the history."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from order_query.command_side import CommandSide
from order_query.projection import ALL, Projection, user_orders_key
from shared.errors import AppError, NotFound
from shared.events import OrderStatus
from shared.security import Principal

SCAN_CHUNK = 200
SCAN_MOST = 5_000  # ids looked at per request at most: a page may come back short


@dataclass(frozen=True)
class Filters:
    status: OrderStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None

    def keeps(self, order: dict[str, Any]) -> bool:
        if self.status is not None and order["status"] != self.status.value:
            return False
        total = Decimal(order["total_price"])
        if self.min_total is not None and total < self.min_total:
            return False
        return self.max_total is None or total <= self.max_total


class BadCursor(AppError):
    status_code = 400
    code = "bad_cursor"


def encode_cursor(score: float, order_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([score, order_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(score), str(order_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("The cursor is not one this API gave out") from exc


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
        names = await self.projection.usernames({e["actor_id"] for e in entries if e["actor_id"]})
        for entry in entries:
            actor = entry.pop("actor_id")
            entry["actor"] = (
                {"kind": "user", "id": actor, "username": names.get(actor)}
                if actor
                else {"kind": "system", "id": None, "username": "status_worker"}
            )
        return entries

    async def orders(
        self,
        principal: Principal,
        *,
        user_id: str | None,
        filters: Filters,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of orders, newest first. A user sees their own; an admin may name a user,
        or sees everybody's."""
        if user_id is not None and not _may_see(principal, user_id):
            raise NotFound("No such user")  # another user's list does not exist for you
        if user_id is None and not principal.is_admin:
            user_id = str(principal.user_id)
        key = user_orders_key(user_id) if user_id else ALL
        return await self._page(key, filters, limit, cursor)

    async def _page(
        self, key: str, filters: Filters, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        high: float | str = filters.created_to.timestamp() if filters.created_to else "+inf"
        low: float | str = filters.created_from.timestamp() if filters.created_from else "-inf"
        after: tuple[float, str] | None = decode_cursor(cursor) if cursor else None
        if after is not None:
            high = after[0] if high == "+inf" else min(float(high), after[0])
        page: list[dict[str, Any]] = []
        offset, looked_at = 0, 0
        last: tuple[float, str] | None = after
        redis = self.projection.redis
        while len(page) < limit and looked_at < SCAN_MOST:
            chunk: list[tuple[bytes, float]] = await redis.zrevrangebyscore(  # type: ignore[assignment]
                key, high, low, start=offset, num=SCAN_CHUNK, withscores=True
            )
            if not chunk:
                return page, None
            offset += len(chunk)
            ids = [(member.decode(), member_score) for member, member_score in chunk]
            # Ties on the cursor's score: skip the ids already served (same score, id >=).
            if after is not None:
                ids = [(i, s) for i, s in ids if not (s == after[0] and i >= after[1])]
            looked_at += len(chunk)
            raws = await self.projection.get_many([i for i, _ in ids])
            for (order_id, order_score), raw in zip(ids, raws, strict=True):
                last = (order_score, order_id)
                if raw is None:
                    continue
                order = json.loads(raw)
                if filters.keeps(order) and not order["is_deleted"]:
                    page.append(order)
                    if len(page) == limit:
                        break
        return page, encode_cursor(*last) if last is not None else None


def _may_see(principal: Principal, owner: str) -> bool:
    return principal.is_admin or str(principal.user_id) == owner
