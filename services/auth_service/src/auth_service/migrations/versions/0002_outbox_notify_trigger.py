"""the outbox notifies the relay by a trigger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from shared.outbox.migration import create_outbox_notify_trigger, drop_outbox_notify_trigger

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_notify_trigger()


def downgrade() -> None:
    drop_outbox_notify_trigger()
