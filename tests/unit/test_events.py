import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.events import (
    MESSAGE_TYPES,
    AdvanceStatus,
    Envelope,
    OrderCreated,
    OrderItem,
    OrderStatus,
    Role,
    UserRegistered,
)


def test_every_routing_key_of_the_design_has_one_model() -> None:
    assert set(MESSAGE_TYPES) == {
        "order.created",
        "order.status_changed",
        "order.updated",
        "order.deleted",
        "user.registered",
        "order.advance_status",
    }
    assert AdvanceStatus.EXCHANGE == "orders.commands"


def test_an_envelope_round_trips_through_json() -> None:
    now = datetime.now(UTC)
    order = OrderCreated(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        items=(OrderItem(name="tea", price=Decimal("2.50"), quantity=2),),
        total_price=Decimal("5.00"),
        status=OrderStatus.PENDING,
        version=1,
        is_deleted=False,
        created_at=now,
        updated_at=now,
    )
    envelope = Envelope.wrap(order, aggregate_id=order.id, version=1)
    wire = envelope.model_dump_json()
    back = Envelope[OrderCreated].model_validate_json(wire)
    assert back == envelope
    assert back.type == "order.created"
    assert '"total_price":"5.00"' in wire


def test_payloads_are_frozen_and_strict() -> None:
    user = UserRegistered(id=uuid.uuid4(), username="a", email="a@b.c", role=Role.USER)
    with pytest.raises(ValidationError):
        user.username = "b"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        UserRegistered(id=uuid.uuid4(), username="a", email="a@b.c", role="user", extra=1)  # type: ignore[call-arg]
