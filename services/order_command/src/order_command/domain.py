"""The Order aggregate: items and their total, the lifecycle, who may do what. No I/O.

Every change returns the events it caused and bumps the version by one, so the version of
an event is the order's version right after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.access import owner_or_admin
from shared.events import (
    Message,
    OrderCreated,
    OrderDeleted,
    OrderItem,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
)
from shared.failures import Invalid, Refused

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_PRICE = Decimal("1000000.00")
# What the column and the event hold (14 digits, 2 after the point).
MAX_TOTAL = Decimal("999999999999.99")
MAX_NAME = 200
CENT = Decimal("0.01")

CHAIN = (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELED)


class InvalidOrder(Invalid):
    """The items or the total are not acceptable (saying which)."""


class TransitionRefused(Refused):
    """Not allowed from the order's current state (with that state and version)."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a user (maybe an admin), or the status worker's timer (`user_id` None)."""

    user_id: uuid.UUID | None
    is_admin: bool = False

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def may_touch(self, owner: uuid.UUID) -> bool:
        return self.is_system or owner_or_admin(self.user_id, is_admin=self.is_admin, owner=owner)


SYSTEM = Actor(user_id=None)


def validate_items(items: list[OrderItem]) -> tuple[OrderItem, ...]:
    problems = []
    if not 1 <= len(items) <= MAX_ITEMS:
        problems.append(f"an order has 1 to {MAX_ITEMS} items")
    for n, item in enumerate(items):
        name = item.name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            problems.append(f"items[{n}].name: 1 to {MAX_NAME} characters")
        if not Decimal(0) < item.price <= MAX_PRICE:
            problems.append(f"items[{n}].price: above 0 and at most {MAX_PRICE}")
        if item.price != item.price.quantize(CENT):
            problems.append(f"items[{n}].price: at most 2 decimal places")
        if not 1 <= item.quantity <= MAX_QUANTITY:
            problems.append(f"items[{n}].quantity: 1 to {MAX_QUANTITY}")
    if problems:
        raise InvalidOrder("The items are not valid", details=problems)
    return tuple(
        OrderItem(name=i.name.strip(), price=i.price.quantize(CENT), quantity=i.quantity)
        for i in items
    )


def total_of(items: tuple[OrderItem, ...]) -> Decimal:
    return sum((i.price * i.quantity for i in items), Decimal(0)).quantize(CENT)


def check_total(items: tuple[OrderItem, ...], claimed: Decimal | None) -> Decimal:
    total = total_of(items)
    if total > MAX_TOTAL:
        raise InvalidOrder(f"The total is above {MAX_TOTAL}", details={"computed": str(total)})
    if claimed is not None and claimed != total:
        raise InvalidOrder(
            "total_price does not match the items",
            details={"total_price": str(claimed), "computed": str(total)},
        )
    return total


def allowed_targets(status: OrderStatus) -> tuple[OrderStatus, ...]:
    """A manual change moves forward along the chain; CANCELED is final."""
    if status.is_final:
        return ()
    return CHAIN[CHAIN.index(status) + 1 :]


def next_status(status: OrderStatus) -> OrderStatus | None:
    targets = allowed_targets(status)
    return targets[0] if targets else None


@dataclass(frozen=True)
class Order:
    id: uuid.UUID
    user_id: uuid.UUID
    items: tuple[OrderItem, ...]
    total_price: Decimal
    currency: str
    status: OrderStatus
    version: int
    is_deleted: bool
    created_at: datetime
    updated_at: datetime
    events: tuple[Message, ...] = field(default=(), compare=False)

    @classmethod
    def create(
        cls,
        *,
        user_id: uuid.UUID,
        items: list[OrderItem],
        total_price: Decimal | None,
        currency: str,
        now: datetime,
        order_id: uuid.UUID | None = None,
    ) -> Order:
        valid = validate_items(items)
        order = cls(
            id=order_id or uuid.uuid4(),
            user_id=user_id,
            items=valid,
            total_price=check_total(valid, total_price),
            currency=currency,
            status=OrderStatus.PENDING,
            version=1,
            is_deleted=False,
            created_at=now,
            updated_at=now,
        )
        return replace(order, events=(order.snapshot(),))

    @classmethod
    def of_created(cls, event: OrderCreated) -> Order:
        """The order as its `order.created` event says it was made."""
        return cls(**{name: getattr(event, name) for name in OrderCreated.model_fields})

    def snapshot(self) -> OrderCreated:
        """The whole order as an event: what `order.created` carries."""
        return OrderCreated(**{name: getattr(self, name) for name in OrderCreated.model_fields})

    def change_status(self, target: OrderStatus, *, by: Actor, now: datetime) -> Order:
        if target not in allowed_targets(self.status):
            raise TransitionRefused(
                f"An order that is {self.status.value} cannot become {target.value}",
                details={
                    "status": self.status.value,
                    "version": self.version,
                    "allowed": [s.value for s in allowed_targets(self.status)],
                },
            )
        event = OrderStatusChanged(from_status=self.status, to_status=target, changed_by=by.user_id)
        return self._changed(now, event, status=target)

    def advance(self, expected: OrderStatus, *, now: datetime) -> Order | None:
        """The timer's step: one along the chain, only if the order is still `expected`.
        None when there is nothing to do (a manual change came first, or it is gone)."""
        target = next_status(self.status)
        if self.is_deleted or self.status is not expected or target is None:
            return None
        return self.change_status(target, by=SYSTEM, now=now)

    def replace_items(
        self,
        items: list[OrderItem],
        total_price: Decimal | None,
        *,
        now: datetime,
        by: Actor | None = None,
    ) -> Order:
        if self.status is not OrderStatus.PENDING:
            raise TransitionRefused(
                f"Items can change only while PENDING; this order is {self.status.value}",
                details={"status": self.status.value, "version": self.version},
            )
        valid = validate_items(items)
        total = check_total(valid, total_price)
        return self._changed(
            now,
            OrderUpdated(items=valid, total_price=total, updated_by=by.user_id if by else None),
            items=valid,
            total_price=total,
        )

    def delete(self, *, by: Actor, now: datetime) -> Order:
        assert by.user_id is not None, "the timer never deletes"
        return self._changed(now, OrderDeleted(deleted_by=by.user_id), is_deleted=True)

    def _changed(self, now: datetime, event: Message, **changes: Any) -> Order:
        return replace(
            self,
            **changes,
            version=self.version + 1,
            updated_at=now,
            events=(*self.events, event),
        )
