"""What every HTTP API shares in its schemas: the base of what a client sends (text a database
can store, nothing unknown), the order as both sides answer it, and the error shape its
OpenAPI document declares."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import Currency, Money, OrderItem, OrderStatus


def storable(text: str) -> str:
    """Refuse what Postgres cannot store in a text column (NUL) and what no UTF-8 encoder
    takes (an unpaired surrogate, which JSON's `\\ud800` escape can carry): caught here, a
    client's mistake is a 422 naming the field rather than a driver's error deep inside."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return text


class RequestModel(BaseModel):
    """The base of every request body and form: unknown fields refused, and every text field
    (of this model and of the models inside it) checked by `storable`."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return storable(value)
        if isinstance(value, list | tuple) and any(isinstance(v, str) for v in value):
            for item in value:
                if isinstance(item, str):
                    storable(item)
        return value


class OrderOut(BaseModel):
    """An order as the API answers it, on either side (DESIGN.md's shape). The API's own
    model: `shared.events.OrderCreated`, the wire contract, holds the same fields today, and
    either may change without the other."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID = Field(description="Its owner")
    items: tuple[OrderItem, ...]
    total_price: Money = Field(
        examples=["12.50"], description="The sum of the items' price times quantity"
    )
    currency: Currency = Field(description="ISO 4217: the platform's ORDER_CURRENCY")
    status: OrderStatus = Field(description="PENDING, then PAID, SHIPPED and CANCELED")
    version: int = Field(description="1 when made, one more with each change: send it as If-Match")
    is_deleted: bool = Field(description="Soft-deleted: only an admin still sees it")
    created_at: datetime
    updated_at: datetime = Field(description="When its last change happened")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["validation_error"], description="Stable: clients may match on it")
    message: str = Field(description="For people: what went wrong, and what to do")
    details: Any = Field(default=None, description="Where and why, when there is more to say")


class ErrorBody(BaseModel):
    """Every error this platform answers: `{error: {code, message, details}}`."""

    error: ErrorDetail


_MEANINGS = {
    400: "The request is malformed (a header, a cursor, the HTTP itself)",
    401: "No valid access token",
    403: "The token is valid but may not do this",
    404: "No such resource (another user's is not yours to see)",
    409: "Refused in the resource's current state",
    412: "If-Match names a version that is not the current one",
    413: "The body is larger than the limit",
    415: "The body is not JSON",
    422: "The body, the query or a header is not valid: `details` lists where and why",
    429: "Too many requests from this address: wait `Retry-After` seconds",
    503: "A dependency is down, or the service is full: try again shortly (`Retry-After`)",
}
# What any route may answer, whatever it does: the gateway's and the server's own refusals.
COMMON_ERRORS = (400, 413, 415, 422, 429, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the error shape."""
    return {
        status: {"model": ErrorBody, "description": _MEANINGS[status]}
        for status in sorted(statuses)
    }
