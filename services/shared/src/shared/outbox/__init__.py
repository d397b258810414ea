"""The transactional outbox: events written with the change that caused them, relayed later."""

from shared.outbox.relay import OutboxRelay
from shared.outbox.table import add_to_outbox, outbox_row, outbox_table

__all__ = ["OutboxRelay", "add_to_outbox", "outbox_row", "outbox_table"]
