"""The Order aggregate, without I/O: the lifecycle, the items and their total, the versions."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from order_command.domain import (
    SYSTEM,
    Actor,
    InvalidOrder,
    Order,
    TransitionRefused,
)
from shared.events import (
    OrderCreated,
    OrderDeleted,
    OrderItem,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
)

PENDING, PAID, SHIPPED, CANCELED = (
    OrderStatus.PENDING,
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.CANCELED,
)
CHAIN = [PENDING, PAID, SHIPPED, CANCELED]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)
OWNER = uuid.uuid4()


def item(name: str = "tea", price: str = "2.50", quantity: int = 1) -> OrderItem:
    return OrderItem(name=name, price=Decimal(price), quantity=quantity)


def raw_item(name: Any = "tea", price: Any = "2.50", quantity: Any = 1) -> OrderItem:
    """An item the wire model would refuse (3 decimal places, say): the domain must too."""
    return OrderItem.model_construct(name=name, price=Decimal(price), quantity=quantity)


def new_order(items: list[OrderItem] | None = None, total: str | None = None) -> Order:
    return Order.create(
        user_id=OWNER,
        items=items if items is not None else [item(quantity=2), item("cake", "3.99")],
        total_price=None if total is None else Decimal(total),
        currency="USD",
        now=T0,
    )


def stored_order(
    status: OrderStatus = PENDING, *, version: int = 1, is_deleted: bool = False
) -> Order:
    """An order as the repository loads it: no pending events."""
    return Order(
        id=uuid.uuid4(),
        user_id=OWNER,
        items=(item(),),
        total_price=Decimal("2.50"),
        currency="USD",
        status=status,
        version=version,
        is_deleted=is_deleted,
        created_at=T0,
        updated_at=T0,
    )


# --- creating ---------------------------------------------------------------------------------


def test_a_new_order_is_pending_at_version_1_with_one_order_created_event() -> None:
    order = new_order()
    assert (order.status, order.version, order.is_deleted) == (PENDING, 1, False)
    assert order.total_price == Decimal("8.99")
    assert order.created_at == order.updated_at == T0
    assert len(order.events) == 1
    created = order.events[0]
    assert isinstance(created, OrderCreated)
    assert (created.id, created.user_id, created.version) == (order.id, OWNER, 1)
    assert created.items == order.items
    assert created.total_price == Decimal("8.99")


def test_a_sent_total_equal_to_the_computed_one_is_accepted() -> None:
    assert new_order(total="8.99").total_price == Decimal("8.99")


@pytest.mark.parametrize("claimed", ["8.98", "9.00", "0", "8.991"])
def test_a_sent_total_that_differs_from_the_computed_one_is_refused(claimed: str) -> None:
    with pytest.raises(InvalidOrder) as refused:
        new_order(total=claimed)
    assert refused.value.details == {"total_price": claimed, "computed": "8.99"}


def test_names_are_stored_stripped() -> None:
    assert new_order([item("  tea \t")]).items[0].name == "tea"


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([item()], id="1 item"),
        pytest.param([item()] * 100, id="100 items"),
        pytest.param([item("x")], id="name of 1"),
        pytest.param([item("x" * 200)], id="name of 200"),
        pytest.param([item("  " + "x" * 200 + "  ")], id="name of 200 after strip"),
        pytest.param([item(price="0.01")], id="price 0.01"),
        pytest.param([item(price="1000000.00")], id="price 1,000,000.00"),
        pytest.param([item(price="3")], id="price without decimals"),
        pytest.param([raw_item(price="2.500")], id="price 2.500 is 2.50"),
        pytest.param([item(quantity=1)], id="quantity 1"),
        pytest.param([item(quantity=10_000)], id="quantity 10,000"),
    ],
)
def test_items_at_the_boundaries_are_accepted(items: list[OrderItem]) -> None:
    assert len(new_order(items).items) == len(items)


@pytest.mark.parametrize(
    ("items", "says"),
    [
        pytest.param([], "an order has 1 to 100 items", id="no items"),
        pytest.param([item()] * 101, "an order has 1 to 100 items", id="101 items"),
        pytest.param([item("")], "items[0].name", id="empty name"),
        pytest.param([item("   ")], "items[0].name", id="blank name"),
        pytest.param([item("x" * 201)], "items[0].name", id="name of 201"),
        pytest.param([item(price="0")], "items[0].price", id="price 0"),
        pytest.param([item(price="-1.00")], "items[0].price", id="negative price"),
        pytest.param([item(price="1000000.01")], "items[0].price", id="price above 1,000,000"),
        pytest.param([raw_item(price="1.001")], "2 decimal places", id="3 decimal places"),
        pytest.param([item(quantity=0)], "items[0].quantity", id="quantity 0"),
        pytest.param([item(quantity=-1)], "items[0].quantity", id="negative quantity"),
        pytest.param([item(quantity=10_001)], "items[0].quantity", id="quantity 10,001"),
        pytest.param([item(), item(quantity=0)], "items[1].quantity", id="names the bad item"),
    ],
)
def test_items_past_the_boundaries_are_refused_saying_which(
    items: list[OrderItem], says: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        new_order(items)
    assert any(says in problem for problem in refused.value.details)


def test_the_largest_valid_order_has_a_total_the_order_can_hold() -> None:
    """1,000,000.00 x 10,000 is within every item limit; its total must not blow up."""
    order = new_order([item(price="1000000.00", quantity=10_000)])
    assert order.total_price == Decimal("10000000000.00")


def test_a_total_above_what_an_order_holds_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="The total is above"):
        new_order([item(price="1000000.00", quantity=10_000)] * 100)


prices = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("1000000.00"), places=2, allow_nan=False
)
valid_items = st.builds(
    OrderItem,
    name=st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != ""),
    price=prices,
    quantity=st.integers(min_value=1, max_value=10_000),
)


@given(st.lists(valid_items, min_size=1, max_size=100))
@settings(max_examples=200)
def test_the_total_is_the_sum_of_price_times_quantity_to_the_cent(items: list[OrderItem]) -> None:
    cents = sum(int(i.price * 100) * i.quantity for i in items)
    assume(cents < 10**14)  # totals the order can hold: at most 999,999,999,999.99
    order = new_order(items)
    assert order.total_price == Decimal(cents) / 100
    assert order.total_price.as_tuple().exponent == -2
    # and a client that sends that same total is accepted
    assert new_order(items, total=str(Decimal(cents) / 100)).total_price == order.total_price


# --- manual status changes --------------------------------------------------------------------


@pytest.mark.parametrize(("start", "target"), list(itertools.product(CHAIN, CHAIN)))
def test_a_manual_change_is_allowed_only_to_a_later_status(
    start: OrderStatus, target: OrderStatus
) -> None:
    order = stored_order(start, version=4)
    by = Actor(user_id=OWNER)
    allowed = start is not CANCELED and CHAIN.index(target) > CHAIN.index(start)
    if allowed:
        changed = order.change_status(target, by=by, now=LATER)
        assert (changed.status, changed.version, changed.updated_at) == (target, 5, LATER)
        assert changed.events == (
            OrderStatusChanged(from_status=start, to_status=target, changed_by=OWNER),
        )
    else:
        with pytest.raises(TransitionRefused) as refused:
            order.change_status(target, by=by, now=LATER)
        assert refused.value.details["status"] == start.value
        assert refused.value.details["version"] == 4


def test_a_refused_change_says_what_is_allowed() -> None:
    with pytest.raises(TransitionRefused) as refused:
        stored_order(PAID).change_status(PENDING, by=Actor(user_id=OWNER), now=LATER)
    assert refused.value.details["allowed"] == ["SHIPPED", "CANCELED"]


def test_a_change_does_not_alter_the_order_it_was_made_from() -> None:
    order = stored_order(PENDING, version=2)
    order.change_status(PAID, by=Actor(user_id=OWNER), now=LATER)
    assert (order.status, order.version, order.events) == (PENDING, 2, ())


def test_an_admins_change_names_the_admin() -> None:
    admin = uuid.uuid4()
    changed = stored_order(PENDING).change_status(
        CANCELED, by=Actor(user_id=admin, is_admin=True), now=LATER
    )
    event = changed.events[0]
    assert isinstance(event, OrderStatusChanged)
    assert event.changed_by == admin


# --- the timer's advance ----------------------------------------------------------------------


@pytest.mark.parametrize(("start", "then"), [(PENDING, PAID), (PAID, SHIPPED), (SHIPPED, CANCELED)])
def test_advance_moves_exactly_one_step_when_the_order_is_where_expected(
    start: OrderStatus, then: OrderStatus
) -> None:
    changed = stored_order(start, version=3).advance(start, now=LATER)
    assert changed is not None
    assert (changed.status, changed.version) == (then, 4)
    assert changed.events == (
        OrderStatusChanged(from_status=start, to_status=then, changed_by=None),
    )


@pytest.mark.parametrize(
    ("status", "expected"), [(s, e) for s, e in itertools.product(CHAIN, CHAIN) if s is not e]
)
def test_a_stale_advance_does_nothing(status: OrderStatus, expected: OrderStatus) -> None:
    assert stored_order(status).advance(expected, now=LATER) is None


def test_advance_on_a_canceled_order_does_nothing() -> None:
    assert stored_order(CANCELED).advance(CANCELED, now=LATER) is None


@pytest.mark.parametrize("status", [PENDING, PAID, SHIPPED])
def test_advance_on_a_deleted_order_does_nothing(status: OrderStatus) -> None:
    assert stored_order(status, is_deleted=True).advance(status, now=LATER) is None


def test_the_system_actor_may_touch_any_order_and_a_user_only_their_own() -> None:
    assert SYSTEM.may_touch(OWNER)
    assert Actor(user_id=uuid.uuid4(), is_admin=True).may_touch(OWNER)
    assert Actor(user_id=OWNER).may_touch(OWNER)
    assert not Actor(user_id=uuid.uuid4()).may_touch(OWNER)


# --- replacing items, deleting ----------------------------------------------------------------


def test_replacing_items_while_pending_replaces_them_and_the_total() -> None:
    order = stored_order(PENDING, version=1)
    changed = order.replace_items([item("coffee", "4.20", 3)], None, now=LATER)
    assert changed.items == (item("coffee", "4.20", 3),)
    assert changed.total_price == Decimal("12.60")
    assert changed.version == 2
    assert changed.events == (
        OrderUpdated(items=(item("coffee", "4.20", 3),), total_price=Decimal("12.60")),
    )


@pytest.mark.parametrize("status", [PAID, SHIPPED, CANCELED])
def test_replacing_items_after_pending_is_refused_with_the_state(status: OrderStatus) -> None:
    with pytest.raises(TransitionRefused) as refused:
        stored_order(status, version=7).replace_items([item()], None, now=LATER)
    assert refused.value.details == {"status": status.value, "version": 7}


def test_replacing_items_checks_them_and_a_sent_total() -> None:
    with pytest.raises(InvalidOrder):
        stored_order().replace_items([item(quantity=0)], None, now=LATER)
    with pytest.raises(InvalidOrder):
        stored_order().replace_items([item()], Decimal("2.51"), now=LATER)


def test_deleting_marks_the_order_deleted_and_names_who() -> None:
    deleted = stored_order(PAID, version=2).delete(by=Actor(user_id=OWNER), now=LATER)
    assert (deleted.is_deleted, deleted.status, deleted.version) == (True, PAID, 3)
    assert deleted.events == (OrderDeleted(deleted_by=OWNER),)


# --- versions ---------------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("change"), st.sampled_from(CHAIN)),
        st.tuples(st.just("advance"), st.sampled_from(CHAIN)),
        st.tuples(st.just("replace"), st.integers(min_value=1, max_value=5)),
        st.tuples(st.just("delete"), st.none()),
    ),
    max_size=30,
)


def _apply(order: Order, op: str, arg: Any) -> Order | None:
    """One use case as the service runs it on a stored order; None when nothing changes."""
    by = Actor(user_id=OWNER)
    if order.is_deleted:
        return None  # the service answers 404 before the aggregate is asked
    try:
        if op == "change":
            return order.change_status(arg, by=by, now=LATER)
        if op == "advance":
            return order.advance(arg, now=LATER)
        if op == "replace":
            return order.replace_items([item(quantity=arg)], None, now=LATER)
        return order.delete(by=by, now=LATER)
    except TransitionRefused:
        return None


@given(operations)
@settings(max_examples=300)
def test_versions_rise_by_exactly_one_per_event_and_never_skip(
    ops: list[tuple[str, Any]],
) -> None:
    order = new_order()
    assert [order.version] == [1] and len(order.events) == 1
    event_versions = [1]
    stored = replace(order, events=())
    for op, arg in ops:
        changed = _apply(stored, op, arg)
        if changed is None:
            continue
        assert len(changed.events) == 1
        assert changed.version == stored.version + 1
        event_versions.append(changed.version)
        stored = replace(changed, events=())
    assert event_versions == list(range(1, stored.version + 1))


@given(operations)
@settings(max_examples=300)
def test_changes_made_in_one_go_carry_one_event_per_version(ops: list[tuple[str, Any]]) -> None:
    """Changes chained on one aggregate (no reload) keep version == 1 + number of changes."""
    order = new_order()
    for op, arg in ops:
        order = _apply(order, op, arg) or order
        assert order.version == len(order.events)
        assert isinstance(order.events[0], OrderCreated)
