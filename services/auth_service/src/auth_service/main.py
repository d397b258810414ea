"""The composition root: builds every part of the auth service from its settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI

from auth_service import api
from auth_service.keys import load_signing_key
from auth_service.passwords import PasswordHasher
from auth_service.service import AuthService
from auth_service.settings import AuthSettings
from auth_service.tokens import AccessTokenIssuer
from shared.app import create_app as create_service_app
from shared.broker import asyncapi_router, build_broker, messaging, require_broker
from shared.db import DATABASE, create_engine, ping
from shared.event_log import BacklogMetrics, LogRelay, RelayMetrics, catch_up_router
from shared.events import Envelope, UserRegistered
from shared.security import StaticKeys, TokenVerifier
from shared.topology import AUTH_EVENTS

VERSION = "0.1.0"


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    broker = build_broker(settings.rabbitmq_url.get_secret_value(), service="auth")
    broker.publisher(
        UserRegistered.ROUTING_KEY,
        exchange=AUTH_EVENTS,
        title="user.registered",
        description="A user signed up (or an admin was made from the command line).",
        schema=Envelope[UserRegistered],
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.auth_database_url.get_secret_value(), timeout=settings.dependency_timeout
        )
        key = load_signing_key(
            settings.auth_jwt_private_key.get_secret_value(), settings.auth_jwt_key_file
        )
        hasher = PasswordHasher(
            memory_kib=settings.auth_argon2_memory_kib,
            time_cost=settings.auth_argon2_time_cost,
            parallelism=settings.auth_argon2_parallelism,
            threads=settings.auth_hash_threads,
        )
        app.state.jwks = key.jwks
        app.state.verifier = TokenVerifier(
            StaticKeys(key.jwks), issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        app.state.auth = AuthService(
            engine=engine,
            hasher=hasher,
            access_tokens=AccessTokenIssuer(
                key,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl=timedelta(seconds=settings.auth_access_token_ttl_seconds),
            ),
            refresh_ttl=timedelta(seconds=settings.auth_refresh_token_ttl_seconds),
            service_clients=settings.service_clients(),
        )
        app.state.event_log_engine = engine
        app.state.dependency_timeout = settings.dependency_timeout
        app.state.readiness = {
            "postgres": lambda: ping(engine),
            "rabbitmq": lambda: require_broker(broker),
        }
        relay = LogRelay(
            database_url=settings.auth_database_url.get_secret_value(),
            amqp_url=settings.rabbitmq_url.get_secret_value(),
            metrics=app.state.relay_metrics,
        )
        app.state.metric_refreshers = [lambda: app.state.backlog_metrics.refresh(engine)]
        try:
            async with messaging(broker, relay.run()):
                yield
        finally:
            await engine.dispose()
            hasher.close()

    app = create_service_app(
        title="auth_service",
        version=VERSION,
        description="Users, password hashes, and JWT access/refresh tokens (EdDSA, with JWKS).",
        lifespan=lifespan,
        drivers=[DATABASE],
        routers=[
            api.router,
            api.internal,
            catch_up_router(),
            asyncapi_router(broker, title="auth_service", version=VERSION),
        ],
    )
    app.state.relay_metrics = RelayMetrics(app.state.metrics_registry)
    app.state.backlog_metrics = BacklogMetrics(app.state.metrics_registry)
    return app
