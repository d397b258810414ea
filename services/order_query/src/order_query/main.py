"""The composition root: builds every part of order_query from its settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from redis import exceptions as redis_exc
from redis.asyncio import Redis

from order_query import api, board, consumers, stream
from order_query.changes import ChangeFeed
from order_query.command_side import CommandSide, InternalApi
from order_query.consumers import ProjectionMetrics, Projector
from order_query.projection import Projection
from order_query.queries import OrderQueries
from order_query.settings import OrderQuerySettings
from shared.app import create_app as create_service_app
from shared.broker import asyncapi_router, build_broker, messaging, require_broker
from shared.faults import DriverFaults
from shared.queue_metrics import QueueDepths
from shared.security import JwksKeys, KeySource, TokenVerifier
from shared.service_tokens import ServiceTokens

VERSION = "0.1.0"


# What means "Redis is away" (a 503 to a read, a wait to a consumer).
REDIS = DriverFaults(
    unavailable=(redis_exc.ConnectionError, redis_exc.TimeoutError, redis_exc.BusyLoadingError)
)


def connect_redis(settings: OrderQuerySettings) -> Redis:
    """Gives up on a Redis that does not answer within DEPENDENCY_TIMEOUT (then: 503)."""
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.dependency_timeout,
        socket_connect_timeout=settings.dependency_timeout,
        health_check_interval=10,
    )


def connect_feed(settings: OrderQuerySettings, *, block: float = 1.0) -> ChangeFeed:
    """The change feed's blocking reads need a connection of their own, whose timeout
    outlasts the block."""
    redis = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=block + settings.dependency_timeout,
        socket_connect_timeout=settings.dependency_timeout,
    )
    return ChangeFeed(redis, block=block)


def service_tokens(settings: OrderQuerySettings, http: httpx.AsyncClient) -> ServiceTokens:
    return ServiceTokens(
        settings.auth_token_url,
        settings.order_query_client_id,
        settings.order_query_client_secret.get_secret_value(),
        http,
    )


def connect_command_side(
    settings: OrderQuerySettings, http: httpx.AsyncClient, *, timeout: float | None = None
) -> CommandSide:
    """Each call bounded by `timeout` (DEPENDENCY_TIMEOUT by default: a read waits no longer)."""
    return CommandSide(
        settings.order_command_url,
        http,
        service_tokens(settings, http),
        timeout=settings.dependency_timeout if timeout is None else timeout,
    )


def connect_auth(
    settings: OrderQuerySettings, http: httpx.AsyncClient, *, timeout: float
) -> InternalApi:
    """The auth service's /internal/ routes (its event log: the users)."""
    return InternalApi(
        settings.auth_url, http, service_tokens(settings, http), timeout=timeout, name="auth"
    )


def create_app(
    settings: OrderQuerySettings | None = None,
    *,
    keys: KeySource | None = None,
    command_side: CommandSide | None = None,
) -> FastAPI:
    """`keys` verify access tokens; by default the auth service's JWKS. `command_side` is where
    gaps are repaired from; by default ORDER_COMMAND_URL with a token from AUTH_TOKEN_URL
    (tests pass their own for both)."""
    settings = settings or OrderQuerySettings()
    broker = build_broker(settings.rabbitmq_url.get_secret_value(), service="order_query")
    app: FastAPI

    def projector() -> Projector:
        built: Projector = app.state.projector
        return built

    consumers.subscribe(broker, projector)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_redis(settings)
        http = httpx.AsyncClient()
        projection = Projection(redis)
        commands = command_side or connect_command_side(settings, http)
        app.state.verifier = TokenVerifier(
            keys or JwksKeys(settings.jwks_url, http),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app.state.queries = OrderQueries(projection, commands)
        app.state.changes = connect_feed(settings)
        app.state.projector = Projector(projection, commands, app.state.projection_metrics)
        app.state.metric_refreshers = [app.state.queue_depths.refresh]
        app.state.dependency_timeout = settings.dependency_timeout
        app.state.readiness = {
            "redis": redis.ping,
            "rabbitmq": lambda: require_broker(broker),
        }
        try:
            async with messaging(
                broker, dead_letter_queues=[consumers.ORDERS_QUEUE, consumers.USERS_QUEUE]
            ):
                yield
        finally:
            await app.state.changes.close()
            await http.aclose()
            await redis.aclose()

    app = create_service_app(
        title="order_query",
        version=VERSION,
        description="Reads orders from a Redis projection of the order events.",
        lifespan=lifespan,
        drivers=[REDIS],
        routers=[
            stream.router,  # before api.router: /orders/stream is not /orders/{order_id}
            api.router,
            board.router,
            asyncapi_router(broker, title="order_query", version=VERSION),
        ],
    )
    registry = app.state.metrics_registry
    app.state.projection_metrics = ProjectionMetrics(registry)
    app.state.queue_depths = QueueDepths(
        registry, broker, [consumers.ORDERS_QUEUE, consumers.USERS_QUEUE]
    )
    return app
