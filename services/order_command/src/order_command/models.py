"""The orders database: orders, idempotency keys, and the event log."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.event_log import event_log_table, unpublished_table

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    # The items are a value of the order, always read and replaced whole: one JSONB column.
    Column("items", JSONB, nullable=False),
    Column("total_price", Numeric(14, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("is_deleted", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("orders_user_id_created_at", "user_id", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("order_id", Uuid),  # the order its first request created (set in that transaction)
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    PrimaryKeyConstraint("user_id", "key"),
)

event_log = event_log_table(metadata)
unpublished_events = unpublished_table(metadata)
