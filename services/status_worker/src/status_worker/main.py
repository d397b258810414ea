"""The composition root: builds every part of status_worker from its settings."""

import logging

import aio_pika
from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry

from shared.runtime import Started, service_app
from status_worker import consumers, retired, wait_queues
from status_worker.metrics import TimerMetrics
from status_worker.settings import StatusWorkerSettings
from status_worker.topology import TimerTopology

log = logging.getLogger(__name__)


def create_app(s: StatusWorkerSettings | None = None) -> FastAPI:
    s = s or StatusWorkerSettings()
    topology = TimerTopology.for_interval(s.status_advance_interval)
    metrics = TimerMetrics()
    metrics.register(registry := CollectorRegistry())

    async def declare(broker: RabbitBroker) -> None:
        """The queues, then the wait queue bound in place of any older one, then the old
        design's queues retired (on a connection of its own: a queue that is not there
        closes the channel that asked for it)."""
        await topology.declare(broker)
        async with await aio_pika.connect(s.rabbitmq_url.get_secret_value()) as connection:
            await wait_queues.bind_newest(connection, topology.wait)
            try:
                await retired.retire(connection, topology.wait)
            except aio_pika.exceptions.AMQPError:  # housekeeping: timers flow without it
                log.exception("the old queues were not all retired; the next start tries again")

    async def build(started: Started) -> None:
        log.info("timers wait %g s in %s", s.status_advance_interval, topology.wait.name)

    return service_app(
        s,
        name="status_worker",
        description="Moves each order along its lifecycle on timers that RabbitMQ holds.",
        build=build,
        registry=registry,
        routers=[],
        consumes=lambda broker, app: consumers.subscribe(broker, topology, metrics),
        other_queues={"wait": (topology.wait, metrics.waiting)},
        declare=declare,
    )
