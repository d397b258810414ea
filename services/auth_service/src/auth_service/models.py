"""The auth database: users, refresh tokens (as hashes, in families) and the event log."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
)

from shared.event_log import event_log_table, unpublished_table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("username", String(50), nullable=False),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
# Unique without regard to case: "Alice" and "alice" are one name.
Index("users_username_key", func.lower(users.c.username), unique=True)
Index("users_email_key", func.lower(users.c.email), unique=True)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    # Every token rotated from one login shares the login's family; reuse revokes it whole.
    Column("family_id", Uuid, nullable=False, index=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

event_log = event_log_table(metadata)
unpublished_events = unpublished_table(metadata)
