"""The event log: every event a service writes, kept for good in its own database, appended in
the transaction of the change that caused it; relayed to the broker, and read back by
position for catch-up and rebuilds (docs/event-log.md). A writer serves its log with
`shared.event_log.serving.serve_event_log` and relays it in a process of its own
(`shared.event_log.serving.relay_app`); serving stands on shared.runtime."""

from shared.event_log.catch_up import EventPage, LoggedEvent, catch_up_router
from shared.event_log.metrics import BacklogMetrics, EventLogMetrics, RelayMetrics
from shared.event_log.relay import LogRelay
from shared.event_log.table import (
    NOTIFY_CHANNEL,
    append_events,
    event_log_table,
    log_row,
    unpublished_table,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "BacklogMetrics",
    "EventLogMetrics",
    "EventPage",
    "LogRelay",
    "LoggedEvent",
    "RelayMetrics",
    "append_events",
    "catch_up_router",
    "event_log_table",
    "log_row",
    "unpublished_table",
]
