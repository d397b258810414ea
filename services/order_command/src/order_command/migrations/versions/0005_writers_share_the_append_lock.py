"""writers of the event log hold its append lock shared; readers read up to its horizon
(2026-11-30)"""

from shared.event_log.migration import share_the_append_lock, take_turns_to_append

revision, down_revision = "0005", "0004"

upgrade, downgrade = share_the_append_lock, take_turns_to_append
