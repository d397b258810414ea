"""A service's process, declared once: what is built at start, what is served, what is
consumed and published. What every service has is here, once: the broker and its readiness,
the dependency timeout, background jobs run beside the broker, the AsyncAPI document of what
it really publishes and consumes, queue depths, and closing what start-up opened in reverse.
A service's `main.py` says only what is its own (its `build`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeVar

import httpx
from fastapi import APIRouter, FastAPI
from faststream.rabbit import RabbitBroker, RabbitQueue
from prometheus_client import CollectorRegistry, Gauge

from shared import faults
from shared.app import create_app
from shared.broker import Declare, asyncapi_router, build_broker, messaging, require_broker
from shared.db import DATABASE
from shared.event_log.catch_up import catch_up_router
from shared.events import Envelope, Message
from shared.queue_metrics import QueueDepths
from shared.security import JwksKeys, KeySource, TokenVerifier
from shared.settings import ServiceSettings

VERSION = "0.1.0"


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Started:
    """What `build` is handed: the app (to set its state), one HTTP client for
    the service's calls to others, and `closing` (what is pushed there closes at the stop,
    last pushed first)."""

    def __init__(
        self,
        app: FastAPI,
        http: httpx.AsyncClient,
        closing: AsyncExitStack,
    ) -> None:
        self.app = app
        self.http = http
        self.closing = closing
        self.background: list[Coroutine[Any, Any, None]] = []

    @property
    def state(self) -> Any:
        """The app's state, where routes and consumers find what `build` made."""
        return self.app.state

    def closes(self, resource: C) -> C:
        """`resource`, closed (`aclose()`) at the stop."""
        self.closing.push_async_callback(resource.aclose)
        return resource

    def run_beside(self, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` while the service runs (cancelled at the stop): a pruner, say."""
        self.background.append(job)

    def ready_when(self, name: str, check: Callable[[], Awaitable[object]]) -> None:
        self.app.state.readiness[name] = check

    def refresh_on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        self.app.state.metric_refreshers.append(refresh)


Build = Callable[[Started], Awaitable[None]]
# Subscribes a service's consumers (their handlers reach the parts `build` put on app.state)
# and names their queues.
Consumes = Callable[[RabbitBroker, FastAPI], Sequence[str]]


def service_app(
    settings: ServiceSettings,
    *,
    name: str,
    description: str,
    build: Build,
    routers: Sequence[APIRouter],
    registry: CollectorRegistry | None = None,
    event_log: bool = False,
    publishes: Sequence[type[Message]] = (),
    consumes: Consumes | None = None,
    other_queues: Mapping[str, tuple[RabbitQueue, Gauge]] | None = None,
    declare: Declare | None = None,
    described: RabbitBroker | None = None,
    drivers: Sequence[faults.DriverFaults] = (),
) -> FastAPI:
    """The service `name`'s app. `registry` holds the service's own metrics (built before,
    so they are registered once however often the app starts). A writer of an event log
    says `event_log=True` (`build` serves the log with
    `shared.event_log.serving.serve_event_log`): the app serves the log's catch-up route and
    answers Postgres' faults as a dependency's; its relay is a process of its own.
    `consumes(broker, app)` subscribes its consumers and names their queues (dead-letter
    queues declared, depths in /metrics); `other_queues` are depths it reports besides.
    `described`, for a service that consumes outside FastStream (status_worker's forwarder),
    is a broker that never connects, whose declarations make the AsyncAPI document."""
    broker = build_broker(settings.rabbitmq_url.get_secret_value(), service=name)
    for message in publishes:  # its relay publishes them; these only say so in AsyncAPI
        broker.publisher(
            message.ROUTING_KEY,
            exchange=message.EXCHANGE,
            title=message.ROUTING_KEY,
            description=(message.__doc__ or "").strip(),
            schema=Envelope[message],  # type: ignore[valid-type]
        )
    queues: list[str] = []
    if event_log:
        routers = [*routers, catch_up_router()]
        drivers = [*drivers, DATABASE]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.dependency_timeout = settings.dependency_timeout
        app.state.readiness = {"rabbitmq": lambda: require_broker(broker)}
        app.state.metric_refreshers = [app.state.queue_depths.refresh]
        async with AsyncExitStack() as closing:
            http = await closing.enter_async_context(httpx.AsyncClient())
            started = Started(app, http, closing)
            await build(started)
            async with messaging(
                broker, *started.background, dead_letter_queues=queues, declare=declare
            ):
                yield

    app = create_app(
        title=name,
        version=VERSION,
        description=description,
        lifespan=lifespan,
        drivers=drivers,
        routers=[*routers, asyncapi_router(described or broker, title=name, version=VERSION)],
        registry=registry,
    )
    queues += consumes(broker, app) if consumes else []
    app.state.queue_depths = QueueDepths(
        app.state.metrics_registry, broker, queues, others=other_queues
    )
    return app


def token_verifier(
    settings: ServiceSettings, http: httpx.AsyncClient, keys: KeySource | None = None
) -> TokenVerifier:
    """Access tokens checked against `keys`; by default the auth service's JWKS."""
    return TokenVerifier(
        keys or JwksKeys(settings.jwks_url, http),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
