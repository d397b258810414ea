"""the event log replaces the outbox (2026-11-29)"""

from shared.event_log.migration import create_event_log, drop_outbox, move_outbox_into_log

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    create_event_log()
    move_outbox_into_log()
    drop_outbox()


def downgrade() -> None:
    raise NotImplementedError("the event log is the record: there is no way back to an outbox")
