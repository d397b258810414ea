"""The order service layer: each method is one use case in one unit of work (which owns the
commit; the order's events go to the event log inside it). No HTTP here: results are domain
objects, refusals are shared.failures kinds."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from order_command.domain import Actor, Order
from order_command.idempotency import IdempotentRequest
from order_command.unit_of_work import UnitOfWorkFactory
from shared.events import OrderItem, OrderStatus
from shared.failures import NotFound, Stale, found

log = logging.getLogger(__name__)

# The versions a change is conditional on (If-Match); None: whatever the current one is.
Versions = frozenset[int] | None


def _logged(was: Order | None, now: Order, by: uuid.UUID | None) -> None:
    """One INFO line per business event, once it is committed (the trace id of the request, or
    of the timer, that caused it is on the line: shared.logs)."""
    who = str(by) if by else "status_worker"
    fields: dict[str, object] = {"order_id": str(now.id), "owner_id": str(now.user_id)}
    fields |= {"actor": who, "version": now.version}
    if was is None:
        log.info(
            "order %s created by %s: %d item(s), total %s %s",
            now.id,
            who,
            len(now.items),
            now.total_price,
            now.currency,
            extra={"event": "order.created", **fields},
        )
    elif now.is_deleted and not was.is_deleted:
        log.info("order %s deleted by %s", now.id, who, extra={"event": "order.deleted", **fields})
    elif now.status is not was.status:
        log.info(
            "order %s %s -> %s by %s",
            now.id,
            was.status.value,
            now.status.value,
            who,
            extra={
                "event": "order.status_changed",
                "from_status": was.status.value,
                "to_status": now.status.value,
                **fields,
            },
        )
    else:
        log.info(
            "order %s items replaced by %s: total %s %s",
            now.id,
            who,
            now.total_price,
            now.currency,
            extra={"event": "order.updated", **fields},
        )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Created:
    """A create's result: the order as it was made, and whether this was a replay of a
    request already done (an idempotency key seen before)."""

    order: Order
    replayed: bool = False


@dataclass
class OrderService:
    """Every rule of the use cases, over a unit of work: the routes and the consumer call one
    method each, and shape its result themselves."""

    unit_of_work: UnitOfWorkFactory
    currency: str = "USD"
    clock: Callable[[], datetime] = _now

    async def create(
        self,
        actor: Actor,
        items: list[OrderItem],
        total_price: Decimal | None,
        key: IdempotentRequest | None = None,
    ) -> Created:
        assert actor.user_id is not None
        order = Order.create(
            user_id=actor.user_id,
            items=items,
            total_price=total_price,
            currency=self.currency,
            now=self.clock(),
        )
        async with self.unit_of_work(one_statement=True) as work:
            if (first := await work.orders.add(order, key)) is not None:
                return Created(await work.orders.as_created(first), replayed=True)
        _logged(None, order, actor.user_id)
        return Created(order)

    async def replace_items(
        self,
        actor: Actor,
        order_id: uuid.UUID,
        items: list[OrderItem],
        total_price: Decimal | None,
        if_match: Versions,
    ) -> Order:
        return await self._change(
            actor,
            order_id,
            if_match,
            lambda order: order.replace_items(items, total_price, now=self.clock(), by=actor),
        )

    async def change_status(
        self,
        actor: Actor,
        order_id: uuid.UUID,
        status: OrderStatus,
        if_match: Versions,
    ) -> Order:
        return await self._change(
            actor,
            order_id,
            if_match,
            lambda order: order.change_status(status, by=actor, now=self.clock()),
        )

    async def delete(self, actor: Actor, order_id: uuid.UUID, if_match: Versions) -> Order:
        return await self._change(
            actor, order_id, if_match, lambda order: order.delete(by=actor, now=self.clock())
        )

    async def advance(self, order_id: uuid.UUID, expected: OrderStatus) -> Order | None:
        """The status worker's timer fired. None: nothing to do (stale timer, or no order)."""
        async with self.unit_of_work() as work:
            order = await work.orders.get(order_id, lock=True)
            changed = order.advance(expected, now=self.clock()) if order else None
            if order is not None and changed is not None:
                await work.orders.save(changed, was=order.version)
        if order is not None and changed is not None:
            _logged(order, changed, None)
        return changed

    async def read(self, order_id: uuid.UUID) -> Order:
        """The internal read the query side repairs from: deleted orders included."""
        async with self.unit_of_work() as work:
            return found(await work.orders.get(order_id), "No such order")

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]:
        """Every order in id order, for the query side's rebuild."""
        async with self.unit_of_work() as work:
            return await work.orders.page(after, limit)

    async def _change(
        self,
        actor: Actor,
        order_id: uuid.UUID,
        if_match: Versions,
        change: Callable[[Order], Order],
    ) -> Order:
        """Lock the row, so concurrent writers take turns and none loses an update."""
        async with self.unit_of_work() as work:
            order = await work.orders.get(order_id, lock=True)
            if order is None or order.is_deleted or not actor.may_touch(order.user_id):
                raise NotFound("No such order")  # another user's order does not exist for you
            if if_match is not None and order.version not in if_match:
                raise Stale(
                    "The order has changed since that version",
                    details={"version": order.version, "status": order.status.value},
                )
            changed = change(order)
            await work.orders.save(changed, was=order.version)
        _logged(order, changed, actor.user_id)
        return changed
