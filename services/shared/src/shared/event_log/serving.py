"""A writer of an event log serving it: the engine its changes and the log share, the relay
beside the broker, the log's metrics, and Postgres in the readiness checks. auth_service
and order_command both start theirs here."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, ping
from shared.event_log.relay import LogRelay
from shared.runtime import Started
from shared.settings import ServiceSettings


def serve_event_log(
    started: Started,
    settings: ServiceSettings,
    database_url: SecretStr,
    *,
    pool_size: int = 5,
) -> AsyncEngine:
    """The service's engine (disposed at the stop), with its event log relayed meanwhile."""
    metrics = started.event_log
    if metrics is None:
        raise TypeError("serve_event_log needs service_app(event_log=True): the log's metrics")
    timeout = settings.dependency_timeout
    engine = create_engine(database_url.get_secret_value(), timeout=timeout, pool_size=pool_size)
    started.closing.push_async_callback(engine.dispose)
    started.app.state.event_log_engine = engine  # read by the catch-up route
    started.ready_when("postgres", lambda: ping(engine))
    started.refresh_on_scrape(lambda: metrics.backlog.refresh(engine))
    relay = LogRelay(
        database_url=database_url.get_secret_value(),
        amqp_url=settings.rabbitmq_url.get_secret_value(),
        metrics=metrics.relay,
    )
    started.run_beside(relay.run())
    return engine
