"""The event log's schema, step by step, for each writer's own Alembic history to run.

Frozen: each function is one migration's content, called by a revision of each service. A
later change is a new function here and a new revision in each service, never an edit.

(The first version, below: writers took the lock exclusively. share_the_append_lock, the
current one, makes it shared for writers and exclusive for an instant for readers.)

Why a trigger hands out positions: a reader catching up asks for the events after the last
position it saw, so a position must never become visible after a greater one has been read.
A sequence alone does not give that (two writers draw 5 and 6, and 6 commits first). So the
trigger takes a transaction-level advisory lock before it draws the position: writers of the
log take turns from their append to their commit, positions commit in the order they were
drawn, and what a reader sees of the log is always a prefix (with the holes rolled-back
transactions leave, for good). The lock is held only from the append, the last statement
of a writer's transaction, to its commit.

Append-only, said twice: a trigger refuses UPDATE, DELETE and TRUNCATE on the log whoever
asks (the application's role owns the table and could otherwise do anything to it), and
PUBLIC has no such grants, for roles set up apart from the owner.
"""

from __future__ import annotations

from alembic import op


def _append_function(create: str, lock: str) -> str:
    """The trigger function that draws a position, holding the append lock (8315001: a key
    no other lock of the database uses) by `lock`, to the commit."""
    # Two constants of this module, never input.
    return f"""
        {create} function event_log_append() returns trigger language plpgsql as $$
        begin
            perform {lock}(8315001);
            new.position := nextval('event_log_position');
            insert into unpublished_events (position) values (new.position);
            return new;
        end $$
        """  # noqa: S608


def create_event_log() -> None:
    op.execute("create sequence event_log_position as bigint")
    op.execute(
        """
        create table event_log (
            position bigint primary key,
            event_id uuid not null unique,
            aggregate_id uuid not null,
            version integer not null,
            type varchar(64) not null,
            schema_version smallint not null,
            payload jsonb not null,
            actor uuid,
            trace jsonb not null default '{}'::jsonb,
            occurred_at timestamptz not null,
            recorded_at timestamptz not null default now(),
            constraint event_log_aggregate_version unique (aggregate_id, version)
        )
        """
    )
    op.execute(
        """
        create table unpublished_events (
            position bigint primary key,
            attempts integer not null default 0,
            last_error text
        )
        """
    )
    op.execute(_append_function("create", "pg_advisory_xact_lock"))
    op.execute(
        "create trigger event_log_append before insert on event_log "
        "for each row execute function event_log_append()"
    )
    # The relay wakes when a writer commits (a notification is delivered on commit; repeats
    # within one transaction fold into one), and the writer spends no round trip on it.
    op.execute(
        "create function unpublished_events_notify() returns trigger language plpgsql as "
        "$$ begin perform pg_notify('event_log', ''); return null; end $$"
    )
    op.execute(
        "create trigger unpublished_events_notify after insert on unpublished_events "
        "for each statement execute function unpublished_events_notify()"
    )
    op.execute(
        """
        create function event_log_is_append_only() returns trigger language plpgsql as $$
        begin
            raise exception 'the event log is append-only: % refused', tg_op
                using errcode = 'insufficient_privilege';
        end $$
        """
    )
    op.execute(
        "create trigger event_log_no_change before update or delete on event_log "
        "for each row execute function event_log_is_append_only()"
    )
    op.execute(
        "create trigger event_log_no_truncate before truncate on event_log "
        "for each statement execute function event_log_is_append_only()"
    )
    op.execute("revoke update, delete, truncate on event_log from public")


def move_outbox_into_log() -> None:
    """The outbox's events become the log's first entries, in the order they were written;
    those the broker had not confirmed stay to be relayed. (The outbox kept sent events a
    week: an order whose first versions are older starts its log part-way, and a reader
    repairs that gap from the command side, as it repairs any.)"""
    op.execute(
        """
        insert into event_log (event_id, aggregate_id, version, type, schema_version,
                               payload, actor, trace, occurred_at, recorded_at)
        select event_id, (body->>'aggregate_id')::uuid, (body->>'version')::integer,
               body->>'type', coalesce((body->>'schema_version')::smallint, 1),
               body->'payload',
               case when body->>'type' = 'user.registered' then (body->'payload'->>'id')::uuid
                    else coalesce(body->'payload'->>'user_id', body->'payload'->>'changed_by',
                                  body->'payload'->>'updated_by',
                                  body->'payload'->>'deleted_by')::uuid
               end,
               headers, (body->>'occurred_at')::timestamptz, created_at
        from outbox order by id
        """
    )
    op.execute(
        """
        delete from unpublished_events u using event_log e, outbox o
        where u.position = e.position and e.event_id = o.event_id
          and o.published_at is not null
        """
    )


def drop_outbox() -> None:
    op.execute("drop table outbox")  # its notify trigger goes with it
    op.execute("drop function outbox_notify()")


def share_the_append_lock() -> None:
    """Writers hold the append lock shared, so they no longer take turns: their commits
    overlap (and share their WAL flushes). A reader takes it exclusively for an instant,
    through `event_log_horizon()`: that waits out every writer between its draw and its
    commit, so every position up to the horizon is final, and a reader reads only up to it."""
    op.execute(_append_function("create or replace", "pg_advisory_xact_lock_shared"))
    # Session-level, released before the function returns: the reader's own transaction
    # holds nothing, and the page it reads next (another statement: a snapshot taken after
    # the wait) keeps no writer waiting.
    op.execute(
        """
        create function event_log_horizon() returns bigint language plpgsql as $$
        declare
            horizon bigint;
        begin
            perform pg_advisory_lock(8315001);
            select case when is_called then last_value else 0 end into horizon
                from event_log_position;
            perform pg_advisory_unlock(8315001);
            return horizon;
        end $$
        """
    )


def take_turns_to_append() -> None:
    """share_the_append_lock undone: writers take the lock exclusively again."""
    op.execute("drop function event_log_horizon()")
    op.execute(_append_function("create or replace", "pg_advisory_xact_lock"))
