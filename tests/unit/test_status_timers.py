"""The status worker's one rule: which timer an order event sets (none once it is CANCELED), and
the command a due message sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.events import (
    AdvanceStatus,
    Envelope,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
)
from status_worker.timers import Due, OrderEvent, command_for, timer_for
from tests.support.factories import order_created, status_changed

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ORDER_ID = uuid.uuid4()
EVENTS: TypeAdapter[OrderEvent] = TypeAdapter(OrderEvent)
DUE: TypeAdapter[Due] = TypeAdapter(Due)


def created() -> Envelope[OrderCreated]:
    return order_created(ORDER_ID, at=NOW)


def changed(
    to: OrderStatus, *, from_: OrderStatus = OrderStatus.PENDING, version: int = 2
) -> Envelope[OrderStatusChanged]:
    return status_changed(ORDER_ID, to, from_=from_, version=version)


def from_the_wire(event: Envelope[Any]) -> OrderEvent:
    """The event as the worker's consumer parses it from the message body."""
    return EVENTS.validate_json(event.model_dump_json())


def test_a_new_order_sets_a_timer_to_move_it_on_from_pending() -> None:
    timer = timer_for(from_the_wire(created()))
    assert timer is not None
    assert timer.payload == AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.PENDING)
    assert (timer.type, timer.aggregate_id, timer.version) == ("order.advance_status", ORDER_ID, 1)


@pytest.mark.parametrize(
    ("from_", "to"),
    [
        (OrderStatus.PENDING, OrderStatus.PAID),
        (OrderStatus.PAID, OrderStatus.SHIPPED),
        (OrderStatus.PENDING, OrderStatus.SHIPPED),  # a manual change may skip ahead
    ],
)
def test_a_status_change_sets_a_timer_from_the_new_status(
    from_: OrderStatus, to: OrderStatus
) -> None:
    timer = timer_for(from_the_wire(changed(to, from_=from_, version=3)))
    assert timer is not None
    assert timer.payload == AdvanceStatus(order_id=ORDER_ID, expected_status=to)
    assert timer.version == 3


@pytest.mark.parametrize("from_", [OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED])
def test_a_canceled_order_sets_no_timer(from_: OrderStatus) -> None:
    assert timer_for(from_the_wire(changed(OrderStatus.CANCELED, from_=from_))) is None


def test_the_same_event_delivered_twice_sets_the_same_timer() -> None:
    event = changed(OrderStatus.PAID)
    first, again = timer_for(from_the_wire(event)), timer_for(from_the_wire(event))
    assert first is not None and again is not None
    assert first.event_id == again.event_id
    assert first.payload == again.payload


def test_two_events_set_timers_with_different_ids() -> None:
    first = timer_for(changed(OrderStatus.PAID))
    second = timer_for(changed(OrderStatus.PAID))
    assert first is not None and second is not None
    assert first.event_id != second.event_id


def test_a_due_event_sends_the_timer_it_sets_and_a_final_one_sends_none() -> None:
    event = changed(OrderStatus.PAID)
    command, timer = command_for(DUE.validate_json(event.model_dump_json())), timer_for(event)
    assert command is not None and timer is not None
    assert (command.event_id, command.payload) == (timer.event_id, timer.payload)
    final = changed(OrderStatus.CANCELED, from_=OrderStatus.SHIPPED, version=4)
    assert command_for(DUE.validate_json(final.model_dump_json())) is None


def test_a_timer_set_before_the_upgrade_comes_due_as_the_command_it_is() -> None:
    """The old worker put the command itself in the wait queue (decision 107)."""
    old = Envelope.wrap(
        AdvanceStatus(order_id=ORDER_ID, expected_status=OrderStatus.SHIPPED),
        aggregate_id=ORDER_ID,
        version=3,
    )
    assert command_for(DUE.validate_json(old.model_dump_json())) == old
