"""How order_query reaches what it depends on: Redis (the projection, and the change feed's
blocking reads), and the command side's and the auth service's /internal/ routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from redis import exceptions as redis_exc
from redis.asyncio import Redis

from order_query.changes import ChangeFeed
from order_query.command_side import CommandSide, InternalApi
from order_query.settings import OrderQuerySettings
from shared.faults import DriverFaults
from shared.security import KeySource
from shared.service_tokens import ServiceTokens

if TYPE_CHECKING:
    from shared.runtime import Started  # the serving process's: a command does not load it

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


def serve_redis(started: Started, settings: OrderQuerySettings) -> Redis:
    """The service's Redis: closed at the stop, and in the readiness checks."""
    redis = started.closes(connect_redis(settings))
    started.ready_when("redis", redis.ping)
    return redis


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


@dataclass(frozen=True)
class Reach:
    """What order_query reaches, where not by its settings' URLs: tests pass their own keys
    for access tokens (else JWKS_URL's) and their own command side (else ORDER_COMMAND_URL)."""

    keys: KeySource | None = None
    command_side: CommandSide | None = None

    def commands(self, settings: OrderQuerySettings, http: httpx.AsyncClient) -> CommandSide:
        return self.command_side or connect_command_side(settings, http)
