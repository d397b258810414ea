"""The outbox table (each service's own migration creates it) and the write into it."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import Envelope, Message

NOTIFY_CHANNEL = "outbox"  # the outbox_notify trigger's channel (shared.outbox.migration)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("exchange", String(255), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("body", JSONB, nullable=False),
        # W3C trace context of the request that wrote the row, so the trace goes on from it.
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),  # when the broker confirmed it
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index("outbox_unpublished", "id", postgresql_where=text("published_at is null")),
        Index(
            "outbox_published_at",
            "published_at",
            postgresql_where=text("published_at is not null"),
        ),
    )


def outbox_row(envelope: Envelope[Any]) -> dict[str, Any]:
    """The outbox row of an event, with the W3C trace context of the request writing it."""
    headers: dict[str, Any] = {}
    propagate.inject(headers)
    payload: Message = envelope.payload
    return {
        "event_id": envelope.event_id,
        "exchange": payload.EXCHANGE,
        "routing_key": payload.ROUTING_KEY,
        "body": envelope.model_dump(mode="json"),
        "headers": headers,
    }


async def add_to_outbox(conn: AsyncConnection, table: Table, envelope: Envelope[Any]) -> None:
    """Write the event in the caller's transaction. A trigger on the table notifies
    NOTIFY_CHANNEL, which wakes the relay when that transaction commits."""
    # values apart: the statement's compiled form is cached
    await conn.execute(insert(table), outbox_row(envelope))
