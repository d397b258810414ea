"""`GET /orders/stream`: the caller's orders (an admin's: every order) as they change, as
server-sent events (docs/board.md).

- A stream that starts afresh (no `Last-Event-ID`, or one the feed no longer holds) begins
  with a `snapshot` event: the newest orders the caller may see, with the feed's position
  taken before they were read. Then an `order` event for each change after that position.
- `Last-Event-ID` (the id of the last event received) resumes right after it: nothing is
  missed and nothing sent twice, as long as the feed still holds it (about 10,000 changes).
- No order is ever sent at a version older than one this stream sent already.
- A comment every 15 s keeps idle connections open through proxies; the stream ends when
  the access token expires (the client refreshes it and resumes) or the server stops.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from order_query.changes import Change, ChangeFeed, parse_id
from order_query.queries import Filters, OrderQueries
from shared.schemas import COMMON_ERRORS, OrderOut, error_responses
from shared.security import CurrentUser, Principal
from shared.server import stopping

router = APIRouter(tags=["orders"])

SNAPSHOT_SIZE = 200  # orders in a snapshot, newest first
KEEP_ALIVE = 15.0  # seconds of silence before a comment is sent
RETRY_MS = 1000  # what the client waits before it reconnects
WAKE = 1.0  # seconds between two looks at the token's expiry and a server stop
_ORDERS = TypeAdapter(list[OrderOut])

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Events `snapshot` (`{orders: [...]}`) and `order` (an order), each "
        "with an `id` to send back as `Last-Event-ID` when reconnecting",
    }
}


@dataclass
class Shown:
    """What one stream sent: the position it reached, and each order's version."""

    after: str
    versions: dict[uuid.UUID, int] = field(default_factory=dict)

    def newer(self, order: OrderOut) -> bool:
        """True (and noted) if `order` is newer than what was sent of it."""
        if order.version <= self.versions.get(order.id, 0):
            return False
        self.versions[order.id] = order.version
        return True


def _event(kind: str, event_id: str, data: bytes) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), kind.encode(), data)


async def _snapshot(queries: OrderQueries, principal: Principal) -> tuple[bytes, list[OrderOut]]:
    """The caller's newest orders: the event's data (their JSON as stored), and the orders."""
    page = await queries.orders(
        principal, user_id=None, filters=Filters(), limit=SNAPSHOT_SIZE, cursor=None
    )
    return b'{"orders":[%s]}' % page.items, _ORDERS.validate_json(b"[%s]" % page.items)


async def events(
    feed: ChangeFeed, queries: OrderQueries, principal: Principal, last_event_id: str | None
) -> AsyncIterator[bytes]:
    def visible(order: OrderOut) -> bool:
        return principal.may_see(order.user_id)

    subscription = await feed.subscribe(visible)  # first: nothing written from now is missed
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        if last_event_id is not None and await feed.holds(last_event_id):
            shown = Shown(last_event_id)
        else:
            shown = Shown(await feed.last_id())  # before the snapshot is read
            data, orders = await _snapshot(queries, principal)
            for order in orders:
                shown.newer(order)
            yield _event("snapshot", shown.after, data)
        while batch := await feed.since(shown.after):  # what was written meanwhile
            for change in batch:
                if chunk := _sent(change, shown, visible):
                    yield chunk
            if len(batch) < feed.page:
                break
        quiet_since = time.monotonic()
        while not subscription.overflowed and not stopping():
            if time.time() >= principal.expires_at:
                return
            try:
                change = await asyncio.wait_for(subscription.queue.get(), WAKE)
            except TimeoutError:
                if time.monotonic() - quiet_since >= KEEP_ALIVE:
                    quiet_since = time.monotonic()
                    yield b": keep-alive\n\n"
                continue
            if chunk := _sent(change, shown, visible):
                quiet_since = time.monotonic()
                yield chunk
    finally:
        feed.unsubscribe(subscription)


def _sent(change: Change, shown: Shown, visible: Callable[[OrderOut], bool]) -> bytes | None:
    """The event for `change`, or None: already past it, not the caller's, or older news."""
    if parse_id(change.id) <= parse_id(shown.after):
        return None
    shown.after = change.id
    if not visible(change.order) or not shown.newer(change.order):
        return None
    return _event("order", change.id, change.raw)


@router.get(
    "/orders/stream",
    response_class=StreamingResponse,
    responses={**_STREAM_DOC, **error_responses(*COMMON_ERRORS, 401, 403)},
)
async def order_stream(
    principal: CurrentUser,
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(
            pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
            description="The id of the last event received: resume right after it",
        ),
    ] = None,
) -> StreamingResponse:
    """Your orders (an admin's: every order) as they change, as server-sent events: a
    `snapshot` first, then an `order` event per change. Read it with a streaming fetch and a
    Bearer token; reconnect with `Last-Event-ID` to resume."""
    body = events(request.app.state.changes, request.app.state.queries, principal, last_event_id)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
