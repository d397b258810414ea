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

from order_query.command_side import CommandSide
from order_query.folding import Entry
from order_query.projection import Projection, index_key
from order_query.schemas import Actor, HistoryEntry
from shared.events import OrderStatus
from shared.failures import Malformed, NotFound
from shared.schemas import OrderOut
from shared.security import Principal

SCAN_MOST = 5_000  # ids one page looks at, at most (a total filter may pass over many)


@dataclass(frozen=True)
class Filters:
    """The status and the creation range are read from the indexes; the total is checked on
    the orders themselves."""

    status: OrderStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None

    def total_bounds(self) -> tuple[float | None, float | None]:
        """The total's bounds as Redis compares them (a total has two decimal places, which a
        double holds exactly enough up to the largest total an order may have)."""
        return (
            None if self.min_total is None else float(self.min_total),
            None if self.max_total is None else float(self.max_total),
        )


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last order looked at, by its place in the index."""

    score: float
    order_id: str


class BadCursor(Malformed):
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
                # What is stored now (it, or newer), else what was fetched: a rebuild may
                # have made a generation live meanwhile that does not hold it yet.
                raw = await self.projection.get(order_id) or fetched.model_dump_json().encode()
        if raw is None:
            raise NotFound("No such order")
        order = OrderOut.model_validate_json(raw)
        if order.is_deleted or not principal.may_see(order.user_id):
            raise NotFound("No such order")
        return raw

    async def history(self, principal: Principal, order_id: str) -> list[HistoryEntry]:
        await self.order(principal, order_id)  # the same 404s as the order itself
        entries = await self.projection.history(order_id)
        users = {str(e.actor.id) for e in entries if e.actor and e.actor.id}
        names = await self.projection.usernames(users)
        return [_named(entry, names) for entry in entries]

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
        if user_id is not None and not principal.may_see(user_id):
            raise NotFound("No such user")  # another user's list does not exist for you
        if user_id is None and not principal.is_admin:
            user_id = str(principal.user_id)
        status = filters.status.value if filters.status else None
        after = decode_cursor(cursor) if cursor else None
        return await self._page(index_key(user_id, status), filters, limit, after)

    async def _page(self, key: str, filters: Filters, limit: int, after: Cursor | None) -> Page:
        """Walk the index down from `after` (keyset: an order created or deleted meanwhile
        never shifts what comes next), keeping what the filters keep: the status and the
        creation range by the index itself, the total by Redis as it walks."""
        low = filters.created_from.timestamp() if filters.created_from else -math.inf
        high = filters.created_to.timestamp() if filters.created_to else math.inf
        if after is not None and after.score > high:
            after = None  # a cursor above the range: start at its top
        if after is not None and after.score < low:
            return Page(b"", None)
        start = (after.score, after.order_id) if after else None
        items, end = await self.projection.page(
            key, high, low, limit, start, total=filters.total_bounds(), most=SCAN_MOST
        )
        return Page(items, encode_cursor(Cursor(*end)) if end else None)


def _named(entry: Entry, names: dict[str, str | None]) -> HistoryEntry:
    """A stored history entry as the API shows it: its actor with a name."""
    actor = None
    if entry.actor is not None:
        kind, user_id = entry.actor.kind, entry.actor.id
        username = "status_worker" if kind == "system" else names.get(str(user_id))
        actor = Actor(kind=kind, id=user_id, username=username)
    return HistoryEntry(
        **entry.model_dump(exclude={"actor", "details"}),
        actor=actor,
        details=entry.details.model_dump(mode="json"),
    )
