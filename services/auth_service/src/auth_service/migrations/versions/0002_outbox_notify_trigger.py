"""the outbox notifies the relay by a trigger (2026-11-25)"""

from shared.outbox.migration import create_outbox_notify_trigger, drop_outbox_notify_trigger

revision, down_revision = "0002", "0001"

upgrade, downgrade = create_outbox_notify_trigger, drop_outbox_notify_trigger
