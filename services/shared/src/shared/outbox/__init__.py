"""The outbox's migrations, frozen: each service's first revisions created it, and the event
log replaced it (shared.event_log, whose migration moves its events into the log)."""
