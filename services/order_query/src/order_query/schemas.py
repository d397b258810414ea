"""The query API's shapes (the order itself is served as the projection stores it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.events import OrderItem, OrderStatus


def _status(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper()
        return "CANCELED" if value == "CANCELLED" else value
    return value


Status = Annotated[OrderStatus, BeforeValidator(_status)]


class OrderOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    items: list[OrderItem]
    total_price: str = Field(examples=["12.50"])
    status: OrderStatus
    version: int
    is_deleted: bool
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(description="Pass it as `cursor` for the next page")


class Actor(BaseModel):
    kind: str = Field(examples=["user", "system"])
    id: uuid.UUID | None
    username: str | None


class HistoryEntry(BaseModel):
    version: int
    type: str
    occurred_at: datetime
    event_id: uuid.UUID | None
    actor: Actor
    details: dict[str, Any]


class ListParams(BaseModel):
    """The filters of `GET /orders`."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_total: Decimal | None = Field(default=None, ge=0)
    max_total: Decimal | None = Field(default=None, ge=0)
    user_id: uuid.UUID | None = Field(default=None, description="Admins only")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _ranges(self) -> ListParams:
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from is after created_to")
        low, high = self.min_total, self.max_total
        if low is not None and high is not None and low > high:
            raise ValueError("min_total is above max_total")
        return self
