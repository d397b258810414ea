"""idempotency keys remember the order they created, not an HTTP answer (2026-11-30)"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("order_id", sa.Uuid()))
    # A key's stored answer was its order as created: its id is the order the key made.
    op.execute("update idempotency_keys set order_id = (response ->> 'id')::uuid")
    op.drop_column("idempotency_keys", "response")
    op.drop_column("idempotency_keys", "status_code")


def downgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("status_code", sa.SmallInteger()))
    op.add_column("idempotency_keys", sa.Column("response", JSONB()))
    # The answers are not kept: a key whose answer is gone is freed (expired now).
    op.execute("update idempotency_keys set expires_at = now()")
    op.drop_column("idempotency_keys", "order_id")
