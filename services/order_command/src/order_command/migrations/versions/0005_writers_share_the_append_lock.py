"""writers of the event log hold its append lock shared; readers read up to its horizon

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from shared.event_log.migration import share_the_append_lock, take_turns_to_append

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    share_the_append_lock()


def downgrade() -> None:
    take_turns_to_append()
