"""How one event changes the projected order, and what it adds to the history. Pure code.

The projected order is the JSON the API answers (DESIGN.md's order shape), so a read is
one Redis GET handed back as it is.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from shared.events import MESSAGE_TYPES, Envelope

ORDER_EVENTS = ("order.created", "order.status_changed", "order.updated", "order.deleted")


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    """An order event checked against its contract (upcast first, if it is of an older
    schema), in its canonical JSON form: the same bytes whether it came from the broker or
    from the log, so an order folded from either is stored alike."""
    kind = body.get("type")
    if kind not in ORDER_EVENTS:
        raise ValueError(f"not an order event: {kind!r}")
    model = Envelope[MESSAGE_TYPES[kind]]  # type: ignore[valid-type]
    event: dict[str, Any] = model.model_validate(body).model_dump(mode="json")
    return event


class Verdict(Enum):
    APPLY = "apply"  # the next version: apply it
    OLD = "old"  # this version or an older one is in already: ignore it
    GAP = "gap"  # versions are missing before it: repair from the command side first


def judge(current_version: int, event_version: int) -> Verdict:
    if event_version <= current_version:
        return Verdict.OLD
    if event_version == current_version + 1:
        return Verdict.APPLY
    return Verdict.GAP


def fold(order: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """The order after `event`, which `judge` said is the next version."""
    payload = event["payload"]
    kind = event["type"]
    if kind == "order.created":
        return dict(payload)
    if order is None:
        raise ValueError(f"{kind} v{event['version']} needs the order it changes")
    changed = {**order, "version": event["version"], "updated_at": event["occurred_at"]}
    if kind == "order.status_changed":
        changed["status"] = payload["to_status"]
    elif kind == "order.updated":
        changed["items"] = payload["items"]
        changed["total_price"] = payload["total_price"]
    elif kind == "order.deleted":
        changed["is_deleted"] = True
    else:
        raise ValueError(f"not an order event: {kind}")
    return changed


def history_entry(event: dict[str, Any]) -> dict[str, Any]:
    """Who did what, when. The actor is a user, the status worker's timer (a status change
    by nobody), or unknown (None: an update from before events named who made it)."""
    payload = event["payload"]
    kind = event["type"]
    actor: str | None
    details: dict[str, Any]
    if kind == "order.created":
        actor = payload["user_id"]
        details = {
            "status": payload["status"],
            "total_price": payload["total_price"],
            "items": payload["items"],
        }
    elif kind == "order.status_changed":
        actor = payload["changed_by"]
        details = {"from_status": payload["from_status"], "to_status": payload["to_status"]}
        if actor is None:
            return _entry(event, {"kind": "system", "id": None}, details)
    elif kind == "order.updated":
        actor = payload.get("updated_by")
        details = {"total_price": payload["total_price"], "items": payload["items"]}
    else:
        actor = payload["deleted_by"]
        details = {}
    return _entry(event, {"kind": "user", "id": actor} if actor else None, details)


def _entry(
    event: dict[str, Any], actor: dict[str, Any] | None, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": event["version"],
        "type": event["type"],
        "occurred_at": event["occurred_at"],
        "event_id": event["event_id"],
        "actor": actor,
        "details": details,
    }


def snapshot_entry(order: dict[str, Any]) -> dict[str, Any]:
    """A history entry for a version whose event has not arrived: the state the command side
    held at that version, by an unknown actor (replaced by the event's entry if it comes)."""
    return {
        "version": order["version"],
        "type": "order.snapshot",
        "occurred_at": order["updated_at"],
        "event_id": None,
        "actor": None,
        "details": {
            "status": order["status"],
            "total_price": order["total_price"],
            "is_deleted": order["is_deleted"],
        },
    }
