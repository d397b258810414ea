"""The composition root: builds every part of order_query from its settings."""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from order_query import api, board, consumers, stream
from order_query.command_side import CommandSide
from order_query.connections import REDIS, connect_command_side, connect_feed, connect_redis
from order_query.consumers import ProjectionMetrics, Projector
from order_query.projection import Projection
from order_query.queries import OrderQueries
from order_query.settings import OrderQuerySettings
from shared.runtime import Started, service_app, token_verifier
from shared.security import KeySource


def create_app(
    s: OrderQuerySettings | None = None,
    *,
    keys: KeySource | None = None,
    command_side: CommandSide | None = None,
) -> FastAPI:
    """Tests pass their own `keys` (else the auth service's JWKS) and `command_side` (where
    gaps are repaired from; else ORDER_COMMAND_URL's /internal/ routes)."""
    s = s or OrderQuerySettings()
    metrics = ProjectionMetrics(registry := CollectorRegistry())

    async def build(started: Started) -> None:
        projection = Projection(redis := started.closes(connect_redis(s)))
        commands = command_side or connect_command_side(s, started.http)
        started.app.state.verifier = token_verifier(s, started.http, keys)
        started.app.state.queries = OrderQueries(projection, commands)
        started.app.state.changes = started.closes(connect_feed(s))
        started.app.state.projector = Projector(projection, commands, metrics)
        started.ready_when("redis", redis.ping)

    return service_app(
        s,
        name="order_query",
        description="Reads orders from a Redis projection of the order events.",
        build=build,
        registry=registry,
        drivers=[REDIS],
        routers=[stream.router, api.router, board.router],  # /orders/stream before /orders/{id}
        consumes=lambda broker, app: consumers.subscribe(broker, lambda: app.state.projector),
    )
