"""Upcasters: each turns an event written in one schema version of its type into the next
version, so every reader sees only the current schema, however old the event (from the log,
in flight on the broker, from a catch-up read).

To change an event's schema: raise its class's SCHEMA_VERSION in shared.events, and add the
step from the old version here. Steps are pure functions of the envelope's JSON form; they
never change once written, since old events stay in the log for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Body = dict[str, Any]

# The one currency every order had before orders recorded theirs (order.created schema 1).
CURRENCY_BEFORE_SCHEMA_2 = "USD"


def _order_created_1_to_2(event: Body) -> Body:
    return {**event, "payload": {**event["payload"], "currency": CURRENCY_BEFORE_SCHEMA_2}}


# (type, the version it reads) -> the step to the next version.
STEPS: dict[tuple[str, int], Callable[[Body], Body]] = {
    ("order.created", 1): _order_created_1_to_2,
}


def upcast(event: Body) -> Body:
    """`event` (an envelope's JSON form) in the current schema of its type."""
    kind = event.get("type")
    version = event.get("schema_version", 1)
    if not isinstance(kind, str) or not isinstance(version, int):
        return event  # not an envelope this knows: validation says what is wrong with it
    while (step := STEPS.get((kind, version))) is not None:
        event = {**step(event), "schema_version": version + 1}
        version += 1
    return event
