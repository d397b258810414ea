"""The composition root: builds every part of status_worker from its settings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import Gauge

from shared.app import create_app as create_service_app
from shared.broker import asyncapi_router, build_broker, messaging, require_broker
from shared.queue_metrics import QueueDepths
from status_worker import consumers
from status_worker.metrics import TimerMetrics
from status_worker.settings import StatusWorkerSettings
from status_worker.topology import TimerTopology

VERSION = "0.1.0"
log = logging.getLogger(__name__)


def create_app(settings: StatusWorkerSettings | None = None) -> FastAPI:
    settings = settings or StatusWorkerSettings()
    broker = build_broker(settings.rabbitmq_url.get_secret_value(), service="status_worker")
    topology = TimerTopology.for_interval(settings.status_advance_interval)
    metrics = TimerMetrics()
    consumers.subscribe(broker, topology, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.dependency_timeout = settings.dependency_timeout
        app.state.readiness = {"rabbitmq": lambda: require_broker(broker)}
        app.state.metric_refreshers = [app.state.queue_depths.refresh]
        log.info("timers wait %g s in %s", settings.status_advance_interval, topology.wait.name)
        async with messaging(
            broker, dead_letter_queues=topology.consumed, declare=topology.declare
        ):
            yield

    app = create_service_app(
        title="status_worker",
        version=VERSION,
        description="Moves each order along its lifecycle on timers that RabbitMQ holds.",
        lifespan=lifespan,
        routers=[asyncapi_router(broker, title="status_worker", version=VERSION)],
    )
    registry = app.state.metrics_registry
    metrics.register(registry)
    waiting = Gauge(
        "timers_waiting",
        "Timers set and not yet due: messages in the wait queue",
        registry=registry,
    )
    app.state.queue_depths = QueueDepths(
        registry, broker, topology.consumed, others={"wait": (topology.wait, waiting)}
    )
    return app
