"""order_query's consumers: order events into the projection, user names for the history."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry, Counter, Histogram

from order_query.batches import GroupCommit
from order_query.command_side import CommandSide
from order_query.projection import Outcome, Projection
from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from shared.broker import PREFETCH
from shared.events import Envelope, OrderEvent, UserRegistered
from shared.faults import wait_out_faults
from shared.metrics import LAG_BUCKETS
from shared.topology import AUTH_EVENTS, ORDERS_EVENTS, consumer_queue

log = logging.getLogger(__name__)


class ProjectionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.outcomes = Counter(
            "projection_events",
            "Order events by what they did to the projection",
            ["outcome"],
            registry=registry,
        )
        self.lag = Histogram(
            "projection_lag_seconds",
            "From an order event's occurred_at (the change, on order_command) to its "
            "application to the projection",
            registry=registry,
            buckets=LAG_BUCKETS,
        )


@dataclass
class Projector:
    """Applies one event, together with those delivered beside it (one Redis read and one
    write a batch); a gap is repaired from the command side, then the event is judged again
    (it is then old news, and only its history entry is added)."""

    projection: Projection
    command_side: CommandSide
    metrics: ProjectionMetrics

    def __post_init__(self) -> None:
        # At most the deliveries a consumer has in flight (the channel's prefetch).
        self.together = GroupCommit(self.projection.apply_many, most=PREFETCH)

    async def project(self, event: OrderEvent) -> Outcome:
        outcome = await self.together.submit(event)
        if outcome is None:  # another process wrote its order between the batch's read and write
            outcome = await self.projection.apply(event)
        if outcome is Outcome.GAP:
            order_id = event.aggregate_id
            fetched = await self.command_side.order(str(order_id))
            if fetched is None:
                raise LookupError(f"order {order_id} is unknown to order_command")
            await self.projection.put(fetched)
            self.metrics.outcomes.labels("repaired").inc()
            outcome = await self.projection.apply(event)
            if outcome is Outcome.GAP:  # the command side is behind its own event: never ack
                raise LookupError(
                    f"order {order_id} is at v{fetched.version} on order_command, "
                    f"older than its event v{event.version}"
                )
        self.metrics.outcomes.labels(outcome.value).inc()
        if outcome is Outcome.APPLIED:
            lag = (datetime.now(UTC) - event.occurred_at).total_seconds()
            self.metrics.lag.observe(max(0.0, lag))
        return outcome


def subscribe(broker: RabbitBroker, projector: Callable[[], Projector]) -> list[str]:
    """`projector` gives the projector once the app's lifespan has built it. Returns the
    queues consumed."""

    @broker.subscriber(
        consumer_queue(ORDERS_QUEUE, "order.*"),
        ORDERS_EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="order events",
        description="Every order event, applied to the projection in version order.",
    )
    @wait_out_faults
    async def on_order_event(event: OrderEvent) -> None:
        await projector().project(event)

    @broker.subscriber(
        consumer_queue(USERS_QUEUE, UserRegistered.ROUTING_KEY),
        AUTH_EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="user.registered",
        description="Users' names, to say who did what in an order's history.",
    )
    @wait_out_faults
    async def on_user_registered(event: Envelope[UserRegistered]) -> None:
        await projector().projection.add_user(event.payload)

    return [ORDERS_QUEUE, USERS_QUEUE]
