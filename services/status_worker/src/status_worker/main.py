"""The composition root: builds every part of status_worker from its settings."""

import logging

from fastapi import FastAPI

from shared.runtime import Started, service_app
from status_worker import wait_queues
from status_worker.described import described
from status_worker.forwarder import DueForwarder
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
        forwarder = DueForwarder(amqp_url, topology.due, metrics)
        started.run_beside(forwarder.run())
        started.ready_when("forwarder", forwarder.require_consuming)

    return service_app(
        s,
        name="status_worker",
        description="Moves each order along its lifecycle on timers that RabbitMQ holds.",
        build=build,
        registry=metrics.registry,
        routers=[],
        # The forwarder consumes the due queue itself: here it is only named (its dead-letter
        # queue declared, its depth in /metrics).
        consumes=lambda broker, app: list(topology.consumed),
        other_queues={"wait": (topology.wait, metrics.waiting)},
        declare=lambda broker: wait_queues.declare(broker, topology, amqp_url),
        described=described(topology),
    )
