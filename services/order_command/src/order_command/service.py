"""The order service layer: each method is one use case in one transaction (the unit of work
owns the commit, and the order's events go to the event log inside it)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from order_command import idempotency, repository
from order_command.domain import Actor, Order
from order_command.idempotency import Answer, IdempotentRequest
from order_command.schemas import OrderDraft, OrderOut
from shared.errors import NotFound, PreconditionFailed
from shared.events import OrderStatus

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


@dataclass
class OrderService:
    engine: AsyncEngine
    idempotency_ttl: timedelta
    currency: str = "USD"

    def __post_init__(self) -> None:
        # The same pool, without BEGIN and COMMIT: for a use case that is one statement.
        self.one_statement = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def create(
        self, actor: Actor, draft: OrderDraft, key: IdempotentRequest | None = None
    ) -> Answer:
        assert actor.user_id is not None
        order = Order.create(
            user_id=actor.user_id,
            items=draft.domain_items(),
            total_price=draft.total_price,
            currency=self.currency,
            now=_now(),
        )
        answer = Answer(201, OrderOut.of(order).model_dump(mode="json"))
        if key is None:
            async with self.one_statement.connect() as conn:
                await repository.add(conn, order)
            _logged(None, order, actor.user_id)
            return answer
        async with self.engine.begin() as conn:
            if first := await idempotency.claim(conn, key, self.idempotency_ttl):
                return first
            await idempotency.remember(conn, key, answer)
            await repository.add(conn, order)  # last: appending to the log holds its turn
        _logged(None, order, actor.user_id)
        return answer

    async def replace_items(
        self, actor: Actor, order_id: uuid.UUID, draft: OrderDraft, if_match: Versions
    ) -> Order:
        return await self._change(
            actor,
            order_id,
            if_match,
            lambda order: order.replace_items(
                draft.domain_items(), draft.total_price, now=_now(), by=actor
            ),
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
            lambda order: order.change_status(status, by=actor, now=_now()),
        )

    async def delete(self, actor: Actor, order_id: uuid.UUID, if_match: Versions) -> Order:
        return await self._change(
            actor, order_id, if_match, lambda order: order.delete(by=actor, now=_now())
        )

    async def advance(self, order_id: uuid.UUID, expected: OrderStatus) -> Order | None:
        """The status worker's timer fired. None: nothing to do (stale timer, or no order)."""
        async with self.engine.begin() as conn:
            order = await repository.get(conn, order_id, lock=True)
            changed = order.advance(expected, now=_now()) if order else None
            if order is not None and changed is not None:
                await repository.save(conn, changed, was=order.version)
        if order is not None and changed is not None:
            _logged(order, changed, None)
        return changed

    async def read(self, order_id: uuid.UUID) -> Order:
        """The internal read the query side repairs from: deleted orders included."""
        async with self.engine.connect() as conn:
            order = await repository.get(conn, order_id)
        if order is None:
            raise NotFound("No such order")
        return order

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]:
        """Every order in id order, for the query side's rebuild."""
        async with self.engine.connect() as conn:
            return await repository.page(conn, after, limit)

    async def _change(
        self,
        actor: Actor,
        order_id: uuid.UUID,
        if_match: Versions,
        change: Callable[[Order], Order],
    ) -> Order:
        """Lock the row, so concurrent writers take turns and none loses an update."""
        async with self.engine.begin() as conn:
            order = await repository.get(conn, order_id, lock=True)
            if order is None or order.is_deleted or not actor.may_touch(order.user_id):
                raise NotFound("No such order")  # another user's order does not exist for you
            if if_match is not None and order.version not in if_match:
                raise PreconditionFailed(
                    "The order has changed since that version",
                    details={"version": order.version, "status": order.status.value},
                )
            changed = change(order)
            await repository.save(conn, changed, was=order.version)
        _logged(order, changed, actor.user_id)
        return changed
