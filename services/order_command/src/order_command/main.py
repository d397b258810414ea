"""The composition root: builds every part of order_command from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from fastapi import FastAPI

from order_command import api, consumers, idempotency
from order_command.service import OrderService
from order_command.settings import OrderCommandSettings
from shared.app import create_app as create_service_app
from shared.broker import asyncapi_router, build_broker, messaging, require_broker
from shared.db import DATABASE, create_engine, ping
from shared.event_log import BacklogMetrics, LogRelay, RelayMetrics, catch_up_router
from shared.events import Envelope, OrderCreated, OrderDeleted, OrderStatusChanged, OrderUpdated
from shared.queue_metrics import QueueDepths
from shared.security import JwksKeys, KeySource, TokenVerifier
from shared.topology import ORDERS_EVENTS

VERSION = "0.1.0"
log = logging.getLogger(__name__)


def create_app(
    settings: OrderCommandSettings | None = None, *, keys: KeySource | None = None
) -> FastAPI:
    """`keys` verify access tokens; by default the auth service's JWKS (tests pass their own)."""
    settings = settings or OrderCommandSettings()
    broker = build_broker(settings.rabbitmq_url.get_secret_value(), service="order_command")
    for event in (OrderCreated, OrderStatusChanged, OrderUpdated, OrderDeleted):
        broker.publisher(
            event.ROUTING_KEY,
            exchange=ORDERS_EVENTS,
            title=event.ROUTING_KEY,
            schema=Envelope[event],  # type: ignore[valid-type]
        )
    app: FastAPI

    def orders() -> OrderService:
        service: OrderService = app.state.orders
        return service

    consumers.subscribe(broker, orders)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.orders_database_url.get_secret_value(),
            timeout=settings.dependency_timeout,
            pool_size=settings.order_command_db_pool_size,
        )
        http = httpx.AsyncClient()
        app.state.verifier = TokenVerifier(
            keys or JwksKeys(settings.jwks_url, http),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app.state.orders = OrderService(
            engine=engine,
            idempotency_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
            currency=settings.order_currency,
        )
        app.state.event_log_engine = engine
        app.state.dependency_timeout = settings.dependency_timeout
        app.state.readiness = {
            "postgres": lambda: ping(engine),
            "rabbitmq": lambda: require_broker(broker),
        }
        relay = LogRelay(
            database_url=settings.orders_database_url.get_secret_value(),
            amqp_url=settings.rabbitmq_url.get_secret_value(),
            metrics=app.state.relay_metrics,
        )
        app.state.metric_refreshers = [
            lambda: app.state.backlog_metrics.refresh(engine),
            app.state.queue_depths.refresh,
        ]

        async def prune_keys() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await idempotency.prune(engine)
                await asyncio.sleep(600)

        try:
            async with messaging(
                broker, relay.run(), prune_keys(), dead_letter_queues=[consumers.QUEUE_NAME]
            ):
                yield
        finally:
            await http.aclose()
            await engine.dispose()

    app = create_service_app(
        title="order_command",
        version=VERSION,
        description="Creates and changes orders; every change is an event in its log.",
        lifespan=lifespan,
        drivers=[DATABASE],
        routers=[
            api.router,
            api.internal,
            catch_up_router(),
            asyncapi_router(broker, title="order_command", version=VERSION),
        ],
    )
    registry = app.state.metrics_registry
    app.state.relay_metrics = RelayMetrics(registry)
    app.state.backlog_metrics = BacklogMetrics(registry)
    app.state.queue_depths = QueueDepths(registry, broker, [consumers.QUEUE_NAME])
    return app
