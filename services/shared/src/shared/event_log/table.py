"""The log's tables (each service's own migration creates them, shared.event_log.migration) and
the one way events are appended to it.

`event_log` holds every event for good: one row each, its `position` handed out by a trigger
(a global position that only grows; a reader reads up to the log's horizon, below which
every position is final), unique per `(aggregate_id, version)`.
`unpublished_events` is the relay's bookkeeping: the positions the broker has not confirmed
yet, written by the same trigger, deleted once confirmed.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    FetchedValue,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import Envelope

NOTIFY_CHANNEL = "event_log"  # notified on commit of every append (the relay listens)


def event_log_table(metadata: MetaData) -> Table:
    return Table(
        "event_log",
        metadata,
        # Set by the event_log_append trigger, never by the writer (migration.py says why).
        Column("position", BigInteger, primary_key=True, server_default=FetchedValue()),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("aggregate_id", Uuid, nullable=False),
        Column("version", Integer, nullable=False),
        Column("type", String(64), nullable=False),
        Column("schema_version", SmallInteger, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("actor", Uuid),  # who did it; none: the platform itself (a timer)
        # W3C trace context of the request that wrote it, so the trace goes on from it.
        Column("trace", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        UniqueConstraint("aggregate_id", "version", name="event_log_aggregate_version"),
    )


def unpublished_table(metadata: MetaData) -> Table:
    return Table(
        "unpublished_events",
        metadata,
        Column("position", BigInteger, primary_key=True, autoincrement=False),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
    )


def log_row(envelope: Envelope[Any]) -> dict[str, Any]:
    """The log row of an event, with the W3C trace context of the request writing it."""
    trace: dict[str, str] = {}
    propagate.inject(trace)
    return {
        "event_id": envelope.event_id,
        "aggregate_id": envelope.aggregate_id,
        "version": envelope.version,
        "type": envelope.type,
        "schema_version": envelope.schema_version,
        "payload": envelope.payload.model_dump(mode="json"),
        "actor": envelope.payload.actor_id,
        "trace": trace,
        "occurred_at": envelope.occurred_at,
    }


async def append_events(
    conn: AsyncConnection, table: Table, envelopes: list[Envelope[Any]]
) -> None:
    """Append in the caller's transaction. Append last in a transaction: from the append to
    the commit, a reader asking for the log's horizon waits for this writer."""
    if envelopes:
        await conn.execute(insert(table), [log_row(envelope) for envelope in envelopes])
