"""Catch-up reads of a service's event log, for the other services: `GET /internal/events`.

A reader asks for the events after the last position it has seen and gets them in position
order, with the position to ask after next. It reads only up to the log's horizon, below
which every position is final (migration.py), so what it reads is always a prefix of the log
and asking again from `next` never misses an event, whoever is writing.

The page is built as JSON by Postgres (`json_agg` of the rows): a rebuild reads the whole log
through here, and serialising each event in Python would cost more than the query.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.security import CurrentService

MAX_PAGE = 5_000

_PAGE = text(
    """
    select coalesce(json_agg(e order by e.position), '[]')::text as events,
           max(e.position) as last,
           :horizon as head
    from (
        select position, event_id, type, schema_version,
               -- ISO 8601 in UTC as the envelopes write it: microseconds only when there are any
               to_char(occurred_at at time zone 'UTC', case
                   when extract(microseconds from occurred_at)::bigint % 1000000 = 0
                   then 'YYYY-MM-DD"T"HH24:MI:SS"Z"' else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end)
                   as occurred_at,
               aggregate_id, version, payload, actor
        from event_log where position > :after and position <= :horizon
        order by position limit :limit
    ) e
    """
)


class LoggedEvent(BaseModel):
    """An event as the log holds it: its envelope (in the schema version it was written in;
    a reader upcasts it), where it is in the log, and who did it."""

    position: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    occurred_at: datetime
    aggregate_id: uuid.UUID
    version: int
    payload: dict[str, Any]
    actor: uuid.UUID | None


class EventPage(BaseModel):
    events: list[LoggedEvent]
    next: int = Field(description="Ask `after` this next time (the last position here)")
    head: int = Field(description="The log's last position when this page was read")


_HORIZON = text("select event_log_horizon()")


async def read_page(engine: AsyncEngine, after: int, limit: int) -> bytes:
    """The page of events after `after`, up to the log's horizon (every position up to it
    is final: migration.py), as the JSON of an EventPage. Two statements: the page's
    snapshot must be taken after the horizon's wait."""
    async with engine.connect() as conn:
        horizon = (await conn.execute(_HORIZON)).scalar_one()
        values = {"after": after, "limit": limit, "horizon": horizon}
        row = (await conn.execute(_PAGE, values)).one()
    last = row.last if row.last is not None else after
    return b'{"next":%d,"head":%d,"events":%s}' % (last, row.head, row.events.encode())


def catch_up_router() -> APIRouter:
    """The route, on the engine in `app.state.event_log_engine` (the service's lifespan)."""
    router = APIRouter(tags=["internal"], include_in_schema=False)

    @router.get("/internal/events", response_model=EventPage)
    async def events(
        request: Request,
        _: CurrentService,
        after: Annotated[int, Query(ge=0, description="The last position you have")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    ) -> Response:
        """The events after `after`, in position order, with the next position to ask."""
        engine: AsyncEngine = request.app.state.event_log_engine
        return Response(await read_page(engine, after, limit), media_type="application/json")

    return router
