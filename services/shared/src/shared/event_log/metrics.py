"""What an operator of the event log watches first (docs/operations.md): how many events the
broker has not confirmed yet and how old the oldest is (read from the log at scrape time),
and how long events take from the log to the broker's confirm (measured by the relay)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.metrics import LAG_BUCKETS

_BACKLOG = text(
    """
    select count(*), coalesce(extract(epoch from clock_timestamp() - min(e.recorded_at)), 0)
    from unpublished_events u join event_log e using (position)
    """
)


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "event_log_published",
            "Events the broker confirmed, by type",
            ["type"],
            registry=registry,
        )
        self.failures = Counter(
            "event_log_publish_failures",
            "Publishes the broker did not confirm (each is retried)",
            registry=registry,
        )
        self.lag = Histogram(
            "event_log_publish_lag_seconds",
            "From an event's append to the log to the broker's confirm of it",
            registry=registry,
            buckets=LAG_BUCKETS,
        )


class BacklogMetrics:
    """The log's backlog, read when Prometheus scrapes (`refresh`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.unpublished = Gauge(
            "event_log_unpublished_events",
            "Events in the log the broker has not confirmed yet (the outbox backlog)",
            registry=registry,
        )
        self.oldest = Gauge(
            "event_log_oldest_unpublished_age_seconds",
            "Age of the oldest event the broker has not confirmed yet (0: none waits)",
            registry=registry,
        )

    async def refresh(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            count, age = (await conn.execute(_BACKLOG)).one()
        self.unpublished.set(count)
        self.oldest.set(float(age))


class EventLogMetrics:
    """The log's metrics, served by its relay's process (`shared.event_log.serving.relay_app`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.relay = RelayMetrics(registry)
        self.backlog = BacklogMetrics(registry)
