"""The composition root: builds every part of order_command from its settings."""

from fastapi import FastAPI

from order_command import api, consumers, idempotency, unit_of_work
from order_command.metrics import AdvanceMetrics
from order_command.service import OrderService
from order_command.settings import OrderCommandSettings
from shared.event_log.serving import serve_event_log
from shared.events import OrderCreated, OrderDeleted, OrderStatusChanged, OrderUpdated
from shared.runtime import Started, service_app, token_verifier
from shared.security import KeySource


def create_app(s: OrderCommandSettings | None = None, *, keys: KeySource | None = None) -> FastAPI:
    """`keys` verify access tokens; by default the auth service's JWKS (tests pass their own)."""
    s = s or OrderCommandSettings()
    metrics = AdvanceMetrics()

    async def build(started: Started) -> None:
        pool = s.order_command_db_pool_size
        engine = serve_event_log(started, s, s.orders_database_url, pool_size=pool)
        started.state.verifier = token_verifier(s, started.http, keys)
        work = unit_of_work.postgres(engine, key_ttl=s.idempotency_key_ttl)
        started.state.orders = OrderService(work, currency=s.order_currency)
        started.run_beside(idempotency.prune_every(engine))

    return service_app(
        s,
        name="order_command",
        description="Creates and changes orders; every change is an event in its log.",
        build=build,
        registry=metrics.registry,
        event_log=True,
        routers=[api.router, api.internal],
        publishes=[OrderCreated, OrderStatusChanged, OrderUpdated, OrderDeleted],
        consumes=lambda broker, app: consumers.subscribe(broker, lambda: app.state.orders, metrics),
    )
