"""The composition root: builds every part of status_worker from its settings."""

import logging

from fastapi import FastAPI

from shared.runtime import Started, service_app
from status_worker import consumers, wait_queues
from status_worker.metrics import TimerMetrics
from status_worker.settings import StatusWorkerSettings
from status_worker.topology import TimerTopology

log = logging.getLogger(__name__)


def create_app(s: StatusWorkerSettings | None = None) -> FastAPI:
    s = s or StatusWorkerSettings()
    topology = TimerTopology.for_interval(s.status_advance_interval)
    metrics = TimerMetrics()
    amqp_url = s.rabbitmq_url.get_secret_value()

    async def build(started: Started) -> None:
        log.info("timers wait %g s in %s", s.status_advance_interval, topology.wait.name)

    return service_app(
        s,
        name="status_worker",
        description="Moves each order along its lifecycle on timers that RabbitMQ holds.",
        build=build,
        registry=metrics.registry,
        routers=[],
        consumes=lambda broker, app: consumers.subscribe(broker, topology, metrics),
        other_queues={"wait": (topology.wait, metrics.waiting)},
        declare=lambda broker: wait_queues.declare(broker, topology, amqp_url),
    )
