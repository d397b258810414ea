"""What the order API takes and answers (DESIGN.md's shapes, and seed004's aliases)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from pydantic import AliasChoices, Field, field_validator

from order_command.domain import MAX_ITEMS, MAX_NAME, MAX_PRICE, MAX_QUANTITY
from shared.events import OrderItem, OrderStatus, StatusInput
from shared.schemas import RequestModel


class ItemIn(RequestModel):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    price: Decimal = Field(gt=0, le=MAX_PRICE, decimal_places=2)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)

    def to_domain(self) -> OrderItem:
        return OrderItem(name=self.name, price=self.price, quantity=self.quantity)


ITEMS_HINT = (
    'items must be a list of {"name", "price", "quantity"}, for example '
    '[{"name": "green tea", "price": "4.50", "quantity": 2}]; total_price may be left out '
    "(the server computes it; if sent, it must equal the sum)"
)


class OrderDraft(RequestModel):
    """A new order, or the items that replace an order's. seed004 clients send `products`."""

    items: list[ItemIn] = Field(
        min_length=1, max_length=MAX_ITEMS, validation_alias=AliasChoices("items", "products")
    )
    total_price: Decimal | None = Field(
        default=None, ge=0, decimal_places=2, description="If sent, must equal the computed total"
    )
    status: StatusInput | None = Field(default=None, description="The lifecycle is the server's")

    @field_validator("items", mode="before")
    @classmethod
    def _a_list(cls, items: Any) -> Any:
        """seed000's README sent `items` as an object: say what to send instead."""
        if isinstance(items, dict):
            raise ValueError(ITEMS_HINT)
        return items

    @field_validator("status")
    @classmethod
    def _only_pending(cls, status: OrderStatus | None) -> OrderStatus | None:
        if status not in (None, OrderStatus.PENDING):
            raise ValueError("a new order is PENDING; the server moves it on")
        return status

    def domain_items(self) -> list[OrderItem]:
        return [item.to_domain() for item in self.items]


class StatusChange(RequestModel):
    status: StatusInput


class LegacyStatusChange(RequestModel):
    """seed000's `PATCH /orders/update`."""

    order_id: uuid.UUID
    new_status: StatusInput
