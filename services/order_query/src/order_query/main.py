"""The composition root: builds every part of order_query from its settings."""

from fastapi import FastAPI

from order_query import api, board, consumers, stream
from order_query.connections import REDIS, Reach, connect_feed, serve_redis
from order_query.projection import Projection
from order_query.queries import OrderQueries
from order_query.settings import OrderQuerySettings
from shared.runtime import Started, service_app, token_verifier


def create_app(s: OrderQuerySettings | None = None, reach: Reach = Reach()) -> FastAPI:
    s = s or OrderQuerySettings()
    metrics = consumers.ProjectionMetrics()

    async def build(started: Started) -> None:
        projection = Projection(serve_redis(started, s))
        commands = reach.commands(s, started.http)
        started.state.verifier = token_verifier(s, started.http, reach.keys)
        started.state.queries = OrderQueries(projection, commands)
        started.state.changes = started.closes(connect_feed(s))
        started.state.projector = consumers.Projector(projection, commands, metrics)

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
