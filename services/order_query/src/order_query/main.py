"""The composition root: builds every part of order_query from its settings."""

from fastapi import FastAPI

from order_query import api, board, consumers, stream
from order_query.command_side import CommandSide
from order_query.connections import REDIS, connect_command_side, connect_feed, serve_redis
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
    """Tests pass their own `keys` (else JWKS_URL's) and `command_side` (else its URL's)."""
    s = s or OrderQuerySettings()
    metrics = ProjectionMetrics()

    async def build(started: Started) -> None:
        projection = Projection(serve_redis(started, s))
        commands = command_side or connect_command_side(s, started.http)
        started.state.verifier = token_verifier(s, started.http, keys)
        started.state.queries = OrderQueries(projection, commands)
        started.state.changes = started.closes(connect_feed(s))
        started.state.projector = Projector(projection, commands, metrics)

    return service_app(
        s,
        name="order_query",
        description="Reads orders from a Redis projection of the order events.",
        build=build,
        registry=metrics.registry,
        drivers=[REDIS],
        routers=[stream.router, api.router, board.router],  # /orders/stream before /orders/{id}
        consumes=lambda broker, app: consumers.subscribe(broker, lambda: app.state.projector),
    )
