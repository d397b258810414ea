"""The outbox's schema, step by step, for each service's own Alembic history to create.

Frozen: each function is one migration's content, called by a revision of each service. A
later change to the outbox is a new function here and a new revision in each service, never
an edit of one that exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_outbox_table() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("exchange", sa.String(255), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index(
        "outbox_unpublished", "outbox", ["id"], postgresql_where=sa.text("published_at is null")
    )
    op.create_index(
        "outbox_published_at",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text("published_at is not null"),
    )


def create_outbox_notify_trigger() -> None:
    """`NOTIFY outbox` from Postgres itself after each insert into the outbox: the relay wakes
    when the writer commits (a notification is delivered on commit, repeats within one
    transaction folded into one), and the writer spends no round trip of its own on it."""
    op.execute(
        "create function outbox_notify() returns trigger language plpgsql as "
        "$$ begin perform pg_notify('outbox', ''); return null; end $$"
    )
    op.execute(
        "create trigger outbox_notify after insert on outbox "
        "for each statement execute function outbox_notify()"
    )


def drop_outbox_notify_trigger() -> None:
    op.execute("drop trigger outbox_notify on outbox")
    op.execute("drop function outbox_notify()")
