"""Test data: users with names nobody else uses, so tests share one database without
clashing, and order events as order_command's relay sends them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.events import Envelope, OrderCreated, OrderItem, OrderStatus, OrderStatusChanged
from shared.schemas import OrderOut

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def user_body(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    body = {"username": f"user_{tag}", "email": f"{tag}@example.com", "password": f"pw-{tag}-9"}
    return {**body, **overrides}


def order_created(
    order_id: uuid.UUID | None = None, *, at: datetime = NOW, currency: str = "USD"
) -> Envelope[OrderCreated]:
    """A new order's `order.created`: two teas, PENDING, version 1."""
    order_id = order_id or uuid.uuid4()
    order = OrderCreated(
        id=order_id,
        user_id=uuid.uuid4(),
        items=(OrderItem(name="tea", price=Decimal("2.50"), quantity=2),),
        total_price=Decimal("5.00"),
        currency=currency,
        status=OrderStatus.PENDING,
        version=1,
        is_deleted=False,
        created_at=at,
        updated_at=at,
    )
    return Envelope.wrap(order, aggregate_id=order_id, version=1, occurred_at=at)


def status_changed(
    order_id: uuid.UUID, to: OrderStatus, *, from_: OrderStatus, version: int
) -> Envelope[OrderStatusChanged]:
    """A status change the status worker's timer made (by nobody)."""
    payload = OrderStatusChanged(from_status=from_, to_status=to, changed_by=None)
    return Envelope.wrap(payload, aggregate_id=order_id, version=version)


def order_json(**overrides: Any) -> dict[str, Any]:
    """An order's JSON as the API answers it and the projection stores it: two teas,
    PENDING, version 1."""
    order = {
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "items": [{"name": "tea", "price": "2.50", "quantity": 2}],
        "total_price": "5.00",
        "currency": "USD",
        "status": "PENDING",
        "version": 1,
        "is_deleted": False,
        "created_at": NOW.isoformat().replace("+00:00", "Z"),
        "updated_at": NOW.isoformat().replace("+00:00", "Z"),
    }
    return {**order, **overrides}


def order_out(**overrides: Any) -> OrderOut:
    """`order_json`'s order as the model (fields overridden in their JSON form)."""
    return OrderOut.model_validate(order_json(**overrides))
