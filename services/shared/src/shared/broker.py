"""The RabbitMQ broker, built the same way by every service, and its AsyncAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.specification import AsyncAPI

from shared.dead_lettering import DeadLetterOnLastDelivery
from shared.faults import stopping
from shared.telemetry import spans_recorded
from shared.topology import declare_dead_letter_queue, declare_exchanges
from shared.trace_context import BrokerTraceContext

log = logging.getLogger(__name__)


PREFETCH = 32  # deliveries a consumer holds unacknowledged: its handlers run concurrently


def build_broker(url: str, *, service: str, prefetch: int = PREFETCH) -> RabbitBroker:
    """Publisher confirms on, W3C trace context carried in headers (its spans recorded only
    where spans are exported: shared.telemetry), a message that fails its last delivery
    dead-lettered with its error (shared.dead_lettering), and a graceful stop that lets
    in-flight messages finish before the connection closes. FastStream's line for each
    message received and processed is logged at DEBUG (LOG_LEVEL=DEBUG shows them): at INFO
    it would cost every message two formatted log lines."""
    return RabbitBroker(
        url,
        # A broker that comes back is found again within half a second (aio-pika's robust
        # connection retries every 5 s by default: as long as 5 s more of a backlog).
        reconnect_interval=0.5,
        default_channel=Channel(prefetch_count=prefetch),
        middlewares=[
            RabbitTelemetryMiddleware() if spans_recorded() else BrokerTraceContext,
            DeadLetterOnLastDelivery,
        ],
        logger=logging.getLogger(f"{service}.broker"),
        log_level=logging.DEBUG,
        graceful_timeout=10,
    )


Declare = Callable[[RabbitBroker], Awaitable[None]]


async def connect_until_up(
    broker: RabbitBroker,
    *,
    dead_letter_queues: Sequence[str] = (),
    declare: Declare | None = None,
    retry_every: float = 2.0,
) -> None:
    """Connect, declare the exchanges, the dead-letter queues and what `declare` adds (queues
    and bindings the subscribers do not declare themselves), then start the subscribers,
    waiting out a broker that is not there yet."""
    while True:
        try:
            await broker.connect()
            await declare_exchanges(broker)
            for name in dead_letter_queues:
                await declare_dead_letter_queue(broker, name)
            if declare is not None:
                await declare(broker)
            await broker.start()
            return
        except (ConnectionError, OSError, TimeoutError) as exc:
            if stopping():
                raise asyncio.CancelledError from exc
            log.warning("RabbitMQ not reachable (%s); retrying in %.0f s", exc, retry_every)
            await asyncio.sleep(retry_every)


@contextlib.asynccontextmanager
async def messaging(
    broker: RabbitBroker,
    *background: Coroutine[Any, Any, None],
    dead_letter_queues: Sequence[str] = (),
    declare: Declare | None = None,
) -> AsyncIterator[None]:
    """A service's messaging for the length of the block (its lifespan): the broker connects
    in the background (`connect_until_up`), beside `background`'s tasks (an outbox relay,
    say). After the block, those are cancelled and the broker stops, letting in-flight
    messages finish."""
    tasks = [
        asyncio.create_task(
            connect_until_up(broker, dead_letter_queues=dead_letter_queues, declare=declare),
            name="messaging",
        ),
        *(asyncio.create_task(job, name=getattr(job, "__qualname__", None)) for job in background),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await broker.stop()  # waits for in-flight messages (graceful_timeout)


async def require_broker(broker: RabbitBroker) -> None:
    """A readiness check: raise unless the broker answers (the caller bounds the wait)."""
    if not await broker.ping(None):
        raise ConnectionError("RabbitMQ does not answer")


def asyncapi_router(broker: RabbitBroker, *, title: str, version: str) -> APIRouter:
    router = APIRouter(tags=["operations"], include_in_schema=False)

    @router.get("/asyncapi.json", summary="This service's messages, as an AsyncAPI document")
    async def asyncapi() -> Any:
        return AsyncAPI(broker, title=title, version=version).to_specification().to_jsonable()

    return router
