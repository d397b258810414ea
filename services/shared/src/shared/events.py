"""Every event and command on the wire, declared once: small frozen models in one envelope.

Each payload class has a schema version (`SCHEMA_VERSION`). An envelope carries the version
its payload was written in; one written in an older one is upcast (shared.upcasting) before
anything validates it, wherever it comes from: the log, the broker, or a catch-up read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    model_validator,
)

from shared.upcasting import upcast

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        """No status follows it: no change and no timer moves an order on from it."""
        return self is OrderStatus.CANCELED


def lenient_status(value: Any) -> Any:
    """A status as people type it: any case, and seed004's British `cancelled`."""
    if isinstance(value, str):
        value = value.strip().upper()
        return OrderStatus.CANCELED.value if value == "CANCELLED" else value
    return value


StatusInput = Annotated[OrderStatus, BeforeValidator(lenient_status)]


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"  # another service of the platform, calling /internal/


class Message(BaseModel):
    """A payload. Its class names the exchange and routing key it travels under, and the
    version of its schema (raised with every change an older reader could not take)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    EXCHANGE: ClassVar[str]
    ROUTING_KEY: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    @property
    def actor_id(self) -> uuid.UUID | None:
        """Who did it, as the event log records it; None: the platform itself."""
        return None


class OrderItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    price: Money
    quantity: int


class UserRegistered(Message):
    """A user signed up (or an admin was made from the command line)."""

    EXCHANGE = "auth.events"
    ROUTING_KEY = "user.registered"

    id: uuid.UUID
    username: str
    email: str
    role: Role

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.id


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]


class OrderCreated(Message):
    """The whole order as it was created. Schema 2 added `currency` (ISO 4217); a schema-1
    event is upcast with the one currency the platform had then (shared.upcasting)."""

    EXCHANGE = "orders.events"
    ROUTING_KEY = "order.created"
    SCHEMA_VERSION = 2

    id: uuid.UUID
    user_id: uuid.UUID
    items: tuple[OrderItem, ...]
    total_price: Money
    currency: Currency
    status: OrderStatus
    version: int
    is_deleted: bool
    created_at: datetime
    updated_at: datetime

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.user_id


class OrderStatusChanged(Message):
    EXCHANGE = "orders.events"
    ROUTING_KEY = "order.status_changed"

    from_status: OrderStatus
    to_status: OrderStatus
    changed_by: uuid.UUID | None  # None: the status worker's timer

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.changed_by


class OrderUpdated(Message):
    EXCHANGE = "orders.events"
    ROUTING_KEY = "order.updated"

    items: tuple[OrderItem, ...]
    total_price: Money
    updated_by: uuid.UUID | None = None  # beyond DESIGN.md's payload: who, for the history

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.updated_by


class OrderDeleted(Message):
    EXCHANGE = "orders.events"
    ROUTING_KEY = "order.deleted"

    deleted_by: uuid.UUID

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.deleted_by


class AdvanceStatus(Message):
    """A command: move the order on from `expected_status`, if it is still there."""

    EXCHANGE = "orders.commands"
    ROUTING_KEY = "order.advance_status"

    order_id: uuid.UUID
    expected_status: OrderStatus


P = TypeVar("P", bound=Message)


class Envelope(BaseModel, Generic[P]):
    """One envelope for everything on the wire. `version` is the aggregate's version after it;
    `schema_version` the version of the payload's schema it was written in."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    type: str
    schema_version: int = 1  # envelopes from before schema versions were written are 1
    occurred_at: datetime
    aggregate_id: uuid.UUID
    version: int
    payload: P

    @model_validator(mode="before")
    @classmethod
    def _upcast(cls, data: Any) -> Any:
        """An envelope of an older schema becomes one of the current before it is validated."""
        return upcast(data) if isinstance(data, dict) else data

    @classmethod
    def wrap(
        cls,
        payload: P,
        *,
        aggregate_id: uuid.UUID,
        version: int,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope[P]:
        """`occurred_at` is when the change happened (now by default): an order's event
        carries the order's own `updated_at`, so a projection of the events holds exactly
        what the command side holds. `event_id` is a new random id unless the caller derives
        one (a timer's, from the event that set it)."""
        # Parametrized by the payload's own class, so it serializes every field of it.
        model = cast("type[Envelope[P]]", Envelope[type(payload)])  # type: ignore[misc]
        return model(
            event_id=event_id or uuid.uuid4(),
            type=payload.ROUTING_KEY,
            schema_version=payload.SCHEMA_VERSION,
            occurred_at=occurred_at or datetime.now(UTC),
            aggregate_id=aggregate_id,
            version=version,
            payload=payload,
        )


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.ROUTING_KEY: cls
    for cls in (
        UserRegistered,
        OrderCreated,
        OrderStatusChanged,
        OrderUpdated,
        OrderDeleted,
        AdvanceStatus,
    )
}


def exchange_of(message_type: str) -> str:
    """The exchange an event or command of this type travels through."""
    return MESSAGE_TYPES[message_type].EXCHANGE


def message_type(value: Any) -> Any:
    """An envelope's `type`, parsed or not: the discriminator of a union of envelopes."""
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


# Any order event, told apart by its `type`: what the read side consumes and folds.
OrderEvent = Annotated[
    Annotated[Envelope[OrderCreated], Tag(OrderCreated.ROUTING_KEY)]
    | Annotated[Envelope[OrderStatusChanged], Tag(OrderStatusChanged.ROUTING_KEY)]
    | Annotated[Envelope[OrderUpdated], Tag(OrderUpdated.ROUTING_KEY)]
    | Annotated[Envelope[OrderDeleted], Tag(OrderDeleted.ROUTING_KEY)],
    Discriminator(message_type),
]
ORDER_EVENT: TypeAdapter[OrderEvent] = TypeAdapter(OrderEvent)
