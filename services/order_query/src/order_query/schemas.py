"""The query API's shapes (the order itself is served as the projection stores it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from shared.events import StatusInput
from shared.schemas import OrderOut, RequestModel


class OrderList(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null: there is no next page"
    )


class Actor(BaseModel):
    kind: Literal["user", "system"] = Field(description="system: the status worker's timer")
    id: uuid.UUID | None
    username: str | None = Field(description="From `user.registered`; null if never heard of")


class HistoryEntry(BaseModel):
    version: int
    type: str = Field(examples=["order.created", "order.status_changed", "order.snapshot"])
    occurred_at: datetime
    event_id: uuid.UUID | None
    actor: Actor | None = Field(description="null: unknown (a snapshot, or an old update)")
    details: dict[str, Any]


class ListParams(RequestModel):
    """The filters of `GET /orders`."""

    status: StatusInput | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_total: Decimal | None = Field(default=None, ge=0)
    max_total: Decimal | None = Field(default=None, ge=0)
    user_id: uuid.UUID | None = Field(default=None, description="Admins only")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)

    @field_validator("created_from", "created_to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is taken as UTC, the zone every time here is in."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ranges(self) -> ListParams:
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from is after created_to")
        low, high = self.min_total, self.max_total
        if low is not None and high is not None and low > high:
            raise ValueError("min_total is above max_total")
        return self
