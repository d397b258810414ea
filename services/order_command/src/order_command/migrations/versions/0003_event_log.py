"""the event log replaces the outbox; orders record their currency (2026-11-29)"""

import sqlalchemy as sa
from alembic import op

from shared.event_log.migration import create_event_log, drop_outbox, move_outbox_into_log

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    # Every order so far was priced in the one currency the platform had (shared.upcasting).
    op.add_column(
        "orders", sa.Column("currency", sa.String(3), nullable=False, server_default="USD")
    )
    op.alter_column("orders", "currency", server_default=None)
    create_event_log()
    move_outbox_into_log()
    drop_outbox()


def downgrade() -> None:
    raise NotImplementedError("the event log is the record: there is no way back to an outbox")
