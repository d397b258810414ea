"""A writer of an event log serving it, in two kinds of process: the service's own, where
the log shares the engine with the changes it records (`serve_event_log`), and the relay's
(`relay_app`), which publishes what the log holds. auth_service and order_command serve
theirs from their composition roots (`create_app`) and start the relay with their
`<service> relay` command (shared.cli).

The relay is a process of its own (decision 110): inside the service's process it shared
the event loop with the requests, and aiormq's publish takes several turns of that loop per
event, so under a saturating load the front accepted events many times faster than the
relay published them (bench creates: 9.7 s to drain after a 20 s run; 0.1 s with the
relay in its own process)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.app import create_app
from shared.db import create_engine, ping
from shared.event_log.metrics import EventLogMetrics
from shared.event_log.relay import LogRelay
from shared.runtime import VERSION, Started
from shared.settings import ServiceSettings


def serve_event_log(
    started: Started,
    settings: ServiceSettings,
    database_url: SecretStr,
    *,
    pool_size: int = 5,
) -> AsyncEngine:
    """The service's engine (disposed at the stop), shared by its changes and its log, and
    read by the log's catch-up route."""
    timeout = settings.dependency_timeout
    engine = create_engine(database_url.get_secret_value(), timeout=timeout, pool_size=pool_size)
    started.closing.push_async_callback(engine.dispose)
    started.app.state.event_log_engine = engine  # read by the catch-up route
    started.ready_when("postgres", lambda: ping(engine))
    return engine


def relay_app(settings: ServiceSettings, *, name: str, database_url: SecretStr) -> FastAPI:
    """The relay's process: it relays `database_url`'s log to the broker, and answers the
    probes (ready while it holds both servers) and /metrics (what it published, how long
    events waited, and the backlog, read from the log at each scrape)."""
    metrics = EventLogMetrics()
    url = database_url.get_secret_value()
    relay = LogRelay(
        database_url=url,
        amqp_url=settings.rabbitmq_url.get_secret_value(),
        metrics=metrics.relay,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = app.state.dependency_timeout = settings.dependency_timeout
        engine = create_engine(url, timeout=timeout, pool_size=2)  # a probe and a scrape at once
        app.state.readiness = {"postgres": lambda: ping(engine), "relay": relay.require_connected}
        app.state.metric_refreshers = [lambda: metrics.backlog.refresh(engine)]
        running = asyncio.create_task(relay.run(), name="relay")
        try:
            yield
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.dispose()

    return create_app(
        title=f"{name} relay",
        version=VERSION,
        description=f"Publishes {name}'s event log to RabbitMQ.",
        lifespan=lifespan,
        routers=[],
        registry=metrics.registry,
    )
