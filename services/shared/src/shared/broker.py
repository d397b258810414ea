"""The RabbitMQ broker, built the same way by every service, and its AsyncAPI document."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.specification import AsyncAPI

from shared.topology import declare_dead_letter_queue, declare_exchanges

log = logging.getLogger(__name__)


def build_broker(url: str, *, service: str, prefetch: int = 32) -> RabbitBroker:
    """Publisher confirms on, W3C trace context carried in headers, and a graceful stop that
    lets in-flight messages finish before the connection closes."""
    return RabbitBroker(
        url,
        default_channel=Channel(prefetch_count=prefetch),
        middlewares=[RabbitTelemetryMiddleware()],
        logger=logging.getLogger(f"{service}.broker"),
        graceful_timeout=10,
    )


async def connect_until_up(
    broker: RabbitBroker, *, dead_letter_queues: Sequence[str] = (), retry_every: float = 2.0
) -> None:
    """Connect, declare the exchanges and the dead-letter queues, then start the subscribers,
    waiting out a broker that is not there yet."""
    while True:
        try:
            await broker.connect()
            await declare_exchanges(broker)
            for name in dead_letter_queues:
                await declare_dead_letter_queue(broker, name)
            await broker.start()
            return
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.warning("RabbitMQ not reachable (%s); retrying in %.0f s", exc, retry_every)
            await asyncio.sleep(retry_every)


async def require_broker(broker: RabbitBroker) -> None:
    """A readiness check: raise unless the broker answers (the caller bounds the wait)."""
    if not await broker.ping(None):
        raise ConnectionError("RabbitMQ does not answer")


def asyncapi_router(broker: RabbitBroker, *, title: str, version: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/asyncapi.json", summary="This service's messages, as an AsyncAPI document")
    async def asyncapi() -> Any:
        return AsyncAPI(broker, title=title, version=version).to_specification().to_jsonable()

    return router
