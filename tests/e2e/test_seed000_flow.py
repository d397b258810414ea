"""seed000's README (../shared/seeds/000_...), walked through the gateway as its users did: sign
up, log in by the form (or HTTP Basic), create an order, watch the worker move it along
PENDING -> PAID -> SHIPPED -> CANCELED once an interval, change another by hand, list your
orders, refresh the token. On the lifecycle stack, whose interval is 2 s."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.accounts import Account
from tests.e2e.stacks import PROCESSES, LifecycleStack
from tests.support.factories import user_body
from tests.support.waiting import eventually

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]
LIFECYCLE = ["PENDING", "PAID", "SHIPPED", "CANCELED"]


@pytest.fixture
async def http(lifecycle_stack: LifecycleStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=lifecycle_stack.url, timeout=10) as client:
        yield client


async def test_a_new_user_signs_up_logs_in_by_form_or_basic_and_sees_themself(
    http: httpx.AsyncClient,
) -> None:
    body = user_body()
    created = await http.post("/auth/create_user", json=body)
    assert created.status_code == 201, created.text

    by_form = await http.post(
        "/auth/token", data={"username": body["username"], "password": body["password"]}
    )
    by_basic = await http.post("/auth/token", auth=(body["username"], body["password"]))
    for answer in (by_form, by_basic):
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        assert tokens["token_type"] == "bearer"
        me = await http.get(
            "/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200, me.text
        assert me.json() | {"created_at": None} == {
            "id": created.json()["id"],
            "username": body["username"],
            "email": body["email"],
            "role": "user",
            "created_at": None,
        }


async def test_an_order_walks_its_lifecycle_one_step_per_interval(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack
) -> None:
    interval = lifecycle_stack.interval
    started = time.monotonic()  # before the order exists, so before its first timer starts
    created = await lifecycle_user.http.post(
        "/orders/create_new_order", json={"items": ITEMS, "total_price": "5.00"}
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["status"], order["version"], order["total_price"]) == ("PENDING", 1, "5.00")

    statuses: list[str] = []  # each status the order was seen in, in turn
    first_seen: list[float] = []  # when, in seconds after the create

    async def status() -> str:
        answer = await lifecycle_user.http.get(f"/orders/{order['id']}")
        assert answer.status_code == 200, answer.text
        current: str = answer.json()["status"]
        if not statuses or statuses[-1] != current:
            statuses.append(current)
            first_seen.append(time.monotonic() - started)
        return current

    await eventually(
        status,
        until=lambda current: current == "CANCELED",
        timeout=3 * interval + 20,
        interval=0.05,
        what="the order reaching CANCELED",
    )
    assert statuses == LIFECYCLE, first_seen  # every step seen, in order, none skipped
    steps = [later - earlier for earlier, later in itertools.pairwise(first_seen)]
    # At the interval: never early (a timer waits out its interval after the change before,
    # give or take the read side's lag), nor far late. Generous: behaviour, not a benchmark.
    assert all(0.75 * interval <= step <= 2 * interval + 3 for step in steps), steps
    assert first_seen[-1] >= 3 * interval, first_seen

    history = (await lifecycle_user.http.get(f"/orders/{order['id']}/history")).json()
    steps_taken = [
        (e["version"], e["actor"]["kind"], e["details"]["from_status"], e["details"]["to_status"])
        for e in history[1:]
    ]
    assert steps_taken == [  # each by the worker, none by a user
        (2, "system", "PENDING", "PAID"),
        (3, "system", "PAID", "SHIPPED"),
        (4, "system", "SHIPPED", "CANCELED"),
    ], history


async def _timer_counts(http: httpx.AsyncClient) -> dict[str, float]:
    """Timers sent on (status_worker's `fired`) and what order_command made of them
    (`applied`, `stale`), summed over each service's processes (`/metrics/<service>.<n>`, each
    process's own: `/metrics/<service>` reaches one of them)."""
    counts = {"fired": 0.0, "applied": 0.0, "stale": 0.0}
    for service, n in itertools.product(
        ("status_worker", "order_command"), range(1, PROCESSES + 1)
    ):
        answer = await http.get(f"/metrics/{service}.{n}")
        assert answer.status_code == 200, answer.text
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                if sample.name == "timers_fired_total":
                    counts["fired"] += sample.value
                elif sample.name == "advance_status_commands_total":
                    counts[sample.labels["outcome"]] += sample.value
    return counts


async def _ship_then_cancel(user: Account) -> tuple[str, dict[str, Any]]:
    """A new order, moved by hand to SHIPPED, then CANCELED: its id and the last answer.

    Both steps are allowed whichever step the worker took meanwhile (SHIPPED is forward from
    PENDING and from PAID, and its own timer comes an interval after it), so the race with
    the order's first timer cannot fail a test."""
    created = await user.http.post("/orders", json={"items": ITEMS})
    assert created.status_code == 201, created.text
    order_id: str = created.json()["id"]
    shipped = await user.http.patch(f"/orders/{order_id}/status", json={"status": "SHIPPED"})
    assert (shipped.status_code, shipped.json()["status"]) == (200, "SHIPPED"), shipped.text
    canceled = await user.http.patch(
        "/orders/update", json={"order_id": order_id, "new_status": "CANCELED"}
    )
    assert (canceled.status_code, canceled.json()["status"]) == (200, "CANCELED"), canceled.text
    return order_id, canceled.json()


async def test_a_status_changed_by_hand_is_kept_and_cannot_go_back(
    lifecycle_user: Account,
) -> None:
    order_id, final = await _ship_then_cancel(lifecycle_user)

    back = await lifecycle_user.http.patch(f"/orders/{order_id}/status", json={"status": "PAID"})
    assert back.status_code == 409, back.text
    assert back.json()["error"]["details"]["status"] == "CANCELED"

    async def read() -> dict[str, Any]:
        order: dict[str, Any] = (await lifecycle_user.http.get(f"/orders/{order_id}")).json()
        return order

    seen = await eventually(read, until=lambda order: order["status"] == "CANCELED")
    assert seen["version"] == final["version"]
    history = (await lifecycle_user.http.get(f"/orders/{order_id}/history")).json()
    last = history[-1]
    assert (last["version"], last["actor"]["kind"], last["actor"]["id"]) == (
        final["version"],
        "user",
        lifecycle_user.id,
    ), history


async def test_the_timers_a_change_by_hand_overtook_are_found_stale(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack
) -> None:
    before = await _timer_counts(lifecycle_user.http)
    order_id, final = await _ship_then_cancel(lifecycle_user)

    # Two timers were overtaken: the creation's (or the PAID step's, if it came first) and
    # the SHIPPED change's. Each comes due an interval later and is sent on as a command...
    await eventually(
        lambda: _timer_counts(lifecycle_user.http),
        until=lambda now: now["fired"] >= before["fired"] + 2,
        timeout=2 * lifecycle_stack.interval + 10,
        what="both overtaken timers sent on",
    )
    # ... which order_command finds stale and says so.
    await eventually(
        lambda: _timer_counts(lifecycle_user.http),
        until=lambda now: now["stale"] >= before["stale"] + 2,
        timeout=5,
        what="both overtaken timers found stale",
    )
    seen = (await lifecycle_user.http.get(f"/orders/{order_id}")).json()
    assert (seen["status"], seen["version"]) == ("CANCELED", final["version"])


async def _listed(http: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    answer = await http.get(path)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_user_lists_their_own_orders_and_no_one_elses(
    lifecycle_user: Account, http: httpx.AsyncClient
) -> None:
    made = {
        (await lifecycle_user.http.post(path, json={"items": ITEMS})).json()["id"]
        for path in ("/orders", "/orders/create_new_order")
    }
    mine = await eventually(
        lambda: _listed(lifecycle_user.http, "/orders"),
        until=lambda items: {o["id"] for o in items} == made,
        what="both orders in GET /orders",
    )
    assert {o["user_id"] for o in mine} == {lifecycle_user.id}
    by_user = await _listed(lifecycle_user.http, f"/orders/user/{lifecycle_user.id}")
    assert {o["id"] for o in by_user} == made

    other = user_body()
    other_id = (await http.post("/auth/create_user", json=other)).json()["id"]
    theirs = await lifecycle_user.http.get(f"/orders/user/{other_id}")
    assert theirs.status_code == 404, theirs.text


async def test_a_refreshed_token_works_and_the_spent_refresh_token_does_not(
    lifecycle_user: Account, http: httpx.AsyncClient
) -> None:
    rotated = await http.post("/auth/refresh", json={"refresh_token": lifecycle_user.refresh_token})
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()
    assert fresh["refresh_token"] != lifecycle_user.refresh_token

    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert (me.status_code, me.json()["id"]) == (200, lifecycle_user.id)
    orders = await http.get("/orders", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert orders.status_code == 200, orders.text

    spent = await http.post("/auth/refresh", json={"refresh_token": lifecycle_user.refresh_token})
    assert spent.status_code == 401, spent.text


async def test_the_create_body_of_seed000s_readme_is_a_422_that_says_what_to_send(
    lifecycle_user: Account,
) -> None:
    readme_body = {"items": {"additionalProp1": {}}, "total_price": 0}
    refused = await lifecycle_user.http.post("/orders/create_new_order", json=readme_body)
    assert refused.status_code == 422, refused.text
    [problem] = [d for d in refused.json()["error"]["details"] if d["loc"][-1] == "items"]
    assert "items must be a list of" in problem["msg"]
    assert '[{"name": "green tea", "price": "4.50", "quantity": 2}]' in problem["msg"]
