"""What an operator reads in the logs: one INFO line per business event, each with the trace id
of the request that caused it, in every service, the changes the status worker's timers made
included. Read from the lifecycle stack's output (its processes' JSON lines, prefixed by
their names)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy.stack.config import ROOT

from tests.e2e.accounts import Account
from tests.e2e.stacks import LifecycleStack
from tests.support.factories import user_body
from tests.support.waiting import eventually

STACK_LOG = ROOT / ".run" / "e2e_lifecycle" / "stack.log"
ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


def _lines(log: Path, needle: str) -> list[dict[str, Any]]:
    """Each service's JSON line that mentions `needle`, with the process's name."""
    found = []
    for raw in log.read_text(errors="replace").splitlines():
        name, _, entry = raw.partition(" | ")
        if needle in entry and entry.startswith('{"ts"'):
            # `order_command.1`: the service, whichever of its processes wrote the line
            found.append({"process": name.strip().split(".")[0], **json.loads(entry)})
    return found


async def _lines_until(needle: str, count: int) -> list[dict[str, Any]]:
    return await eventually(
        lambda: asyncio.to_thread(_lines, STACK_LOG, needle),
        until=lambda lines: len([line for line in lines if line["level"] == "INFO"]) >= count,
        timeout=20,
        what=f"{count} lines about {needle}",
    )


@pytest.fixture(autouse=True)
def _our_stack(lifecycle_stack: LifecycleStack) -> None:
    if lifecycle_stack.env is None:
        pytest.skip("a platform not started by the tests: its logs are not here")


async def test_an_order_walking_its_lifecycle_is_logged_with_its_requests_trace_id(
    lifecycle_user: Account,
) -> None:
    trace_id = uuid.uuid4().hex  # as a request id of this form, it is the trace id too
    created = await lifecycle_user.http.post(
        "/orders", json={"items": ITEMS}, headers={"X-Request-ID": trace_id}
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    lines = await _lines_until(order_id, 4)  # created, 3 x changed by a timer

    said = [(line["process"], line["msg"]) for line in lines if line.get("event")]
    assert said[0] == (
        "order_command",
        f"order {order_id} created by {lifecycle_user.id}: 1 item(s), total 5.00 USD",
    )
    for step in ("PENDING -> PAID", "PAID -> SHIPPED", "SHIPPED -> CANCELED"):
        assert ("order_command", f"order {order_id} {step} by status_worker") in said, said
    # The worker says nothing at INFO of a timer it sent on: order_command's line says it.
    assert not any(process == "status_worker" for process, _ in said), said
    assert {line.get("trace_id") for line in lines if line.get("event")} == {trace_id}


async def test_a_change_by_hand_names_who_and_the_stale_timer_names_the_create(
    lifecycle_user: Account,
) -> None:
    create_id, cancel_id = uuid.uuid4().hex, uuid.uuid4().hex
    created = await lifecycle_user.http.post(
        "/orders", json={"items": ITEMS}, headers={"X-Request-ID": create_id}
    )
    order_id = created.json()["id"]
    canceled = await lifecycle_user.http.patch(
        f"/orders/{order_id}/status",
        json={"status": "CANCELED"},
        headers={"X-Request-ID": cancel_id},
    )
    assert canceled.status_code == 200, canceled.text
    lines = await _lines_until(f"order {order_id} found stale", 1)
    stale = [line for line in lines if "found stale" in line["msg"]]
    assert stale[0]["process"] == "order_command" and stale[0]["trace_id"] == create_id

    changed = _lines(STACK_LOG, f"order {order_id} PENDING -> CANCELED by {lifecycle_user.id}")
    assert [line["trace_id"] for line in changed] == [cancel_id]


async def test_a_sign_up_and_a_failed_login_are_logged_without_the_password(
    lifecycle_stack: LifecycleStack,
) -> None:
    body = user_body()
    sign_up_id, login_id = uuid.uuid4().hex, uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=lifecycle_stack.url, timeout=10) as http:
        created = await http.post(
            "/auth/create_user", json=body, headers={"X-Request-ID": sign_up_id}
        )
        user_id = created.json()["id"]
        refused = await http.post(
            "/auth/token",
            data={"username": body["username"], "password": "not-" + body["password"]},
            headers={"X-Request-ID": login_id},
        )
    assert refused.status_code == 401
    lines = await _lines_until(user_id, 2)
    by_event = {line["event"]: line for line in lines if "event" in line}
    assert by_event["user.registered"]["trace_id"] == sign_up_id
    assert by_event["login.failed"]["trace_id"] == login_id
    assert by_event["login.failed"]["msg"] == (
        f"login failed for {body['username']} ({user_id}): wrong password"
    )
    assert body["password"] not in STACK_LOG.read_text(errors="replace")
