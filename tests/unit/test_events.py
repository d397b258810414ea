import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.events import (
    MESSAGE_TYPES,
    AdvanceStatus,
    Envelope,
    OrderCreated,
    Role,
    UserRegistered,
)
from shared.upcasting import CURRENCY_BEFORE_SCHEMA_2, upcast
from tests.support.factories import order_created


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
    envelope = order_created(at=datetime.now(UTC), currency="EUR")
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


def test_an_order_created_of_schema_1_is_read_as_schema_2_with_the_old_currency() -> None:
    """Written before orders recorded their currency: no `currency`, no `schema_version`."""
    order_id, now = uuid.uuid4(), "2026-01-02T03:04:05Z"
    v1 = {
        "event_id": str(uuid.uuid4()),
        "type": "order.created",
        "occurred_at": now,
        "aggregate_id": str(order_id),
        "version": 1,
        "payload": {
            "id": str(order_id),
            "user_id": str(uuid.uuid4()),
            "items": [{"name": "tea", "price": "2.50", "quantity": 2}],
            "total_price": "5.00",
            "status": "PENDING",
            "version": 1,
            "is_deleted": False,
            "created_at": now,
            "updated_at": now,
        },
    }
    read = Envelope[OrderCreated].model_validate(v1)
    assert read.schema_version == 2
    assert read.payload.currency == CURRENCY_BEFORE_SCHEMA_2
    assert upcast(v1)["payload"]["currency"] == CURRENCY_BEFORE_SCHEMA_2
    assert "currency" not in str(v1)  # the stored event itself is left as it was


def test_an_event_of_the_current_schema_is_left_alone() -> None:
    event = {"type": "order.status_changed", "schema_version": 1, "payload": {}}
    assert upcast(event) is event
    assert OrderCreated.SCHEMA_VERSION == 2
