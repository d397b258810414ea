"""How one order event changes the projected order and what it adds to the history; and that
any delivery order of one order's events, with duplicates, folds to its last version."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from order_query.folding import Entry, Verdict, fold, history_entry, judge, snapshot_entry
from shared.events import ORDER_EVENT, OrderEvent, OrderStatus
from shared.schemas import OrderOut
from tests.support.factories import order_json

START = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
STATUSES = ("PENDING", "PAID", "SHIPPED", "CANCELED")


def at(seconds: float) -> str:
    """A time as the events carry it (pydantic's JSON form of an aware UTC datetime)."""
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def an_order(**overrides: Any) -> dict[str, Any]:
    """An order as the API answers it, at version 1."""
    return order_json(**{"created_at": at(0), "updated_at": at(0), **overrides})


def an_event(
    kind: str, order: dict[str, Any], version: int, payload: dict[str, Any], when: str
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": when,
        "aggregate_id": order["id"],
        "version": version,
        "payload": payload,
    }


def created(order: dict[str, Any]) -> dict[str, Any]:
    return an_event("order.created", order, 1, dict(order), order["created_at"])


def status_changed(
    order: dict[str, Any], to: str, *, by: str | None, version: int = 2, when: str = ""
) -> dict[str, Any]:
    payload = {"from_status": order["status"], "to_status": to, "changed_by": by}
    return an_event("order.status_changed", order, version, payload, when or at(version))


def updated(
    order: dict[str, Any],
    items: list[dict[str, Any]],
    total: str,
    *,
    by: str | None,
    version: int = 2,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"items": items, "total_price": total}
    if by is not None:
        payload["updated_by"] = by
    return an_event("order.updated", order, version, payload, at(version))


def deleted(order: dict[str, Any], *, by: str, version: int = 2) -> dict[str, Any]:
    return an_event("order.deleted", order, version, {"deleted_by": by}, at(version))


# The data above is JSON, as on the wire and in Redis; the fold takes and gives models.
def event_of(event: dict[str, Any]) -> OrderEvent:
    return ORDER_EVENT.validate_python(event)


def order_of(order: dict[str, Any]) -> OrderOut:
    return OrderOut.model_validate(order)


def as_json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def folded(order: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    return as_json(fold(order_of(order) if order else None, event_of(event)))


def entry(event: dict[str, Any]) -> dict[str, Any]:
    return as_json(history_entry(event_of(event)))


# --- judge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "incoming", "verdict"),
    [
        (0, 1, Verdict.APPLY),
        (3, 4, Verdict.APPLY),
        (3, 3, Verdict.OLD),
        (3, 1, Verdict.OLD),
        (1, 1, Verdict.OLD),
        (0, 2, Verdict.GAP),
        (3, 5, Verdict.GAP),
    ],
)
def test_judge_applies_only_the_next_version(current: int, incoming: int, verdict: Verdict) -> None:
    assert judge(current, incoming) is verdict


@given(current=st.integers(0, 10_000), incoming=st.integers(1, 10_000))
def test_judge_has_exactly_one_verdict_for_each_pair(current: int, incoming: int) -> None:
    verdict = judge(current, incoming)
    assert (verdict is Verdict.APPLY) == (incoming == current + 1)
    assert (verdict is Verdict.OLD) == (incoming <= current)
    assert (verdict is Verdict.GAP) == (incoming > current + 1)


# --- fold -------------------------------------------------------------------------------


def test_a_created_event_is_the_whole_order() -> None:
    order = an_order()
    assert folded(None, created(order)) == order


def test_a_status_change_sets_the_status_the_version_and_the_time() -> None:
    order = an_order()
    before = order_of(order)
    event = status_changed(order, "PAID", by=order["user_id"], when=at(30))
    after = fold(before, event_of(event))
    assert as_json(after) == {**order, "status": "PAID", "version": 2, "updated_at": at(30)}
    assert before.status is OrderStatus.PENDING  # the old state is not changed in place


def test_an_update_replaces_the_items_and_the_total() -> None:
    order = an_order()
    items = [{"name": "cake", "price": "3.99", "quantity": 3}]
    event = updated(order, items, "11.97", by=order["user_id"])
    assert folded(order, event) == {
        **order,
        "items": items,
        "total_price": "11.97",
        "version": 2,
        "updated_at": at(2),
    }


def test_a_delete_marks_the_order_deleted_and_keeps_the_rest() -> None:
    order = an_order(status="PAID", version=2)
    event = deleted(order, by=order["user_id"], version=3)
    assert folded(order, event) == {**order, "is_deleted": True, "version": 3, "updated_at": at(3)}


@pytest.mark.parametrize(
    "change",
    [
        lambda order: status_changed(order, "PAID", by=None),
        lambda order: updated(order, order["items"], "5.00", by=None),
        lambda order: deleted(order, by=order["user_id"]),
    ],
    ids=["status_changed", "updated", "deleted"],
)
def test_a_change_without_the_order_it_changes_is_refused(change: Any) -> None:
    with pytest.raises(ValueError, match="needs the order"):
        folded(None, change(an_order()))


def test_an_event_that_is_not_an_order_event_is_refused() -> None:
    order = an_order()
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        event_of(an_event("user.registered", order, 2, {}, at(2)))


# --- history ----------------------------------------------------------------------------


def test_the_created_entry_names_the_owner_and_what_was_ordered() -> None:
    order = an_order()
    event = created(order)
    assert entry(event) == {
        "version": 1,
        "type": "order.created",
        "occurred_at": order["created_at"],
        "event_id": event["event_id"],
        "actor": {"kind": "user", "id": order["user_id"]},
        "details": {"status": "PENDING", "total_price": "5.00", "items": order["items"]},
    }


def test_a_status_change_by_a_user_names_the_user() -> None:
    order = an_order()
    admin = str(uuid.uuid4())
    shown = entry(status_changed(order, "SHIPPED", by=admin))
    assert shown["actor"] == {"kind": "user", "id": admin}
    assert shown["details"] == {"from_status": "PENDING", "to_status": "SHIPPED"}
    assert (shown["type"], shown["version"]) == ("order.status_changed", 2)


def test_a_status_change_by_nobody_is_the_timers() -> None:
    order = an_order()
    assert entry(status_changed(order, "PAID", by=None))["actor"] == {"kind": "system", "id": None}


def test_an_update_names_who_updated_and_the_new_items() -> None:
    order = an_order()
    items = [{"name": "cake", "price": "1.00", "quantity": 1}]
    shown = entry(updated(order, items, "1.00", by=order["user_id"]))
    assert shown["actor"] == {"kind": "user", "id": order["user_id"]}
    assert shown["details"] == {"total_price": "1.00", "items": items}


def test_an_update_from_before_updated_by_existed_has_an_unknown_actor_not_the_timer() -> None:
    order = an_order()
    assert entry(updated(order, order["items"], "5.00", by=None))["actor"] is None


def test_a_delete_names_who_deleted() -> None:
    order = an_order()
    admin = str(uuid.uuid4())
    shown = entry(deleted(order, by=admin))
    assert shown["actor"] == {"kind": "user", "id": admin}
    assert (shown["details"], shown["type"]) == ({}, "order.deleted")


def test_a_snapshot_entry_is_the_state_at_that_version_with_no_event_and_no_actor() -> None:
    order = an_order(status="SHIPPED", version=4, total_price="9.99", updated_at=at(40))
    assert as_json(snapshot_entry(order_of(order))) == {
        "version": 4,
        "type": "order.snapshot",
        "occurred_at": at(40),
        "event_id": None,
        "actor": None,
        "details": {"status": "SHIPPED", "total_price": "9.99", "is_deleted": False},
    }


# --- any delivery order -----------------------------------------------------------------

PRICES = st.decimals(min_value="0.01", max_value="999.99", places=2)
ITEMS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["tea", "cake", "soup"]),
            "price": PRICES.map(str),
            "quantity": st.integers(1, 9),
        }
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def lifetimes(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One order's events in version order, and its state after the last one, kept by hand
    (not by `fold`) as the command side would hold it."""
    owner = str(uuid.uuid4())
    state = an_order(user_id=owner)
    events = [created(state)]
    for version in range(2, draw(st.integers(1, 10)) + 1):
        if state["is_deleted"]:
            break
        moves = ["delete"]
        if state["status"] != "CANCELED":
            moves.append("status")
        if state["status"] == "PENDING":
            moves.append("update")
        move = draw(st.sampled_from(moves))
        by = draw(st.sampled_from([owner, str(uuid.uuid4()), None]))
        if move == "status":
            to = draw(st.sampled_from(STATUSES[STATUSES.index(state["status"]) + 1 :]))
            event = status_changed(state, to, by=by, version=version)
            state = {**state, "status": to}
        elif move == "update":
            items: list[dict[str, Any]] = draw(ITEMS)
            total = str(sum(i["quantity"] * Decimal(i["price"]) for i in items))
            event = updated(state, items, total, by=by, version=version)
            state = {**state, "items": items, "total_price": total}
        else:
            event = deleted(state, by=by or owner, version=version)
            state = {**state, "is_deleted": True}
        state = {**state, "version": version, "updated_at": event["occurred_at"]}
        events.append(event)
    return events, state


def deliver(events: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[int, Entry]]:
    """What a consumer does: apply the next version, ignore an old one, park one after a gap
    and try the parked ones again after each apply. Returns the state and the history."""
    state: OrderOut | None = None
    history: dict[int, Entry] = {}
    parked: list[OrderEvent] = []

    def offer(event: OrderEvent) -> bool:
        nonlocal state
        verdict = judge(state.version if state else 0, event.version)
        if verdict is Verdict.GAP:
            parked.append(event)
            return False
        history[event.version] = history_entry(event)
        if verdict is Verdict.APPLY:
            state = fold(state, event)
            return True
        return False

    for event in map(event_of, events):
        if offer(event):
            while True:
                waiting, parked[:] = list(parked), []
                if not any([offer(e) for e in waiting]):
                    break
    return (as_json(state) if state else None), history


@settings(max_examples=300, deadline=None)
@given(lifetime=lifetimes(), seed=st.randoms(use_true_random=False), copies=st.integers(0, 12))
def test_any_shuffled_duplicated_delivery_converges_to_the_last_version(
    lifetime: tuple[list[dict[str, Any]], dict[str, Any]], seed: random.Random, copies: int
) -> None:
    events, expected = lifetime
    stream = events + [seed.choice(events) for _ in range(copies)]
    seed.shuffle(stream)

    state, history = deliver(stream)

    assert state == expected
    assert sorted(history) == list(range(1, len(events) + 1))
    assert [str(history[e["version"]].event_id) for e in events] == [e["event_id"] for e in events]


def test_the_timers_change_folds_like_any_other() -> None:
    order = an_order()
    events = [created(order), status_changed(order, "PAID", by=None)]
    state, history = deliver(list(reversed(events)))
    assert state is not None and state["status"] == "PAID"
    assert as_json(history[2])["actor"] == {"kind": "system", "id": None}


def test_every_kind_of_entry_reads_back_from_its_json_as_it_was() -> None:
    """The projection stores entries as JSON: each kind's details come back as that kind."""
    order = an_order()
    made = [
        created(order),
        status_changed(order, "PAID", by=None),
        updated(order, order["items"], "5.00", by=order["user_id"]),
        deleted(order, by=order["user_id"]),
    ]
    entries = [history_entry(event_of(e)) for e in made] + [snapshot_entry(order_of(order))]
    for stored in entries:
        assert Entry.model_validate_json(stored.model_dump_json()) == stored
    assert len({type(e.details) for e in entries}) == len(entries)
