"""Reading orders through the gateway as a signed-up user: order_query's projection, kept
from order_command's events, answers. The projection is asynchronous, so what a change
shows is waited for (with a deadline), never assumed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared import seed004
from tests.support.factories import user_body
from tests.support.waiting import eventually


@dataclass
class User:
    http: httpx.AsyncClient  # sends the user's access token
    id: str
    username: str

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params)


@contextlib.asynccontextmanager
async def signed_up(gateway_url: str, *, seed004: bool = False) -> AsyncIterator[User]:
    """A new user, logged in through the gateway (by seed004's login if asked)."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        body = user_body()
        assert (await http.post("/auth/create_user", json=body)).status_code == 201
        credentials = {"username": body["username"], "password": body["password"]}
        if seed004:
            token = (await http.post("/api/v1/login/", json=credentials)).json()["access"]
        else:
            form = await http.post("/auth/token", auth=(body["username"], body["password"]))
            token = form.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        me = (await http.get("/auth/me")).json()
        yield User(http, me["id"], me["username"])


@pytest.fixture
async def user(gateway_url: str) -> AsyncIterator[User]:
    async with signed_up(gateway_url) as made:
        yield made


@pytest.fixture
async def stranger(gateway_url: str) -> AsyncIterator[User]:
    async with signed_up(gateway_url) as made:
        yield made


async def order(user: User, price: str = "2.50") -> dict[str, Any]:
    items = [{"name": "tea", "price": price, "quantity": 2}]
    response = await user.http.post("/orders", json={"items": items})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def listed(user: User, path: str = "/orders", **params: Any) -> list[str]:
    response = await user.get(path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    orders = body if path.startswith("/api/v1/") else body["items"]  # seed004's: a bare list
    return [o["id"] for o in orders]


async def until_listed(
    user: User, expected: list[str], path: str = "/orders", **params: Any
) -> None:
    await eventually(
        lambda: listed(user, path, **params),
        until=lambda ids: ids == expected,
        what=f"{path} {params} listing {expected}",
    )


async def test_a_user_reads_back_the_order_they_made(user: User) -> None:
    made = await order(user)
    read = await eventually(
        lambda: user.get(f"/orders/{made['id']}"),
        until=lambda r: r.status_code == 200,
        what="the new order readable",
    )
    assert read.json() == made
    # seed004's shape, the owner named once user.registered has reached the read side.
    await eventually(
        lambda: user.get(f"/api/v1/orders/{made['id']}/"),
        until=lambda r: r.status_code == 200 and r.json() == seed004.order(made, user.username),
        what="the order in seed004's shape",
    )


async def test_a_user_lists_filters_and_pages_their_orders(user: User) -> None:
    cheap, middling, dear = [await order(user, price) for price in ("1.00", "5.00", "9.00")]
    paid = await user.http.patch(f"/orders/{middling['id']}/status", json={"status": "PAID"})
    assert paid.status_code == 200
    newest_first = [dear["id"], middling["id"], cheap["id"]]
    await until_listed(user, [middling["id"]], status="PAID")

    assert await listed(user) == newest_first
    assert await listed(user, status="PENDING") == [dear["id"], cheap["id"]]
    assert await listed(user, min_total="10", max_total="18") == [dear["id"], middling["id"]]
    assert await listed(user, created_from=middling["created_at"]) == newest_first[:2]
    assert await listed(user, f"/orders/user/{user.id}") == newest_first
    assert await listed(user, "/api/v1/orders/") == newest_first

    first = (await user.get("/orders", limit=2)).json()
    assert [o["id"] for o in first["items"]] == newest_first[:2]
    second = (await user.get("/orders", limit=2, cursor=first["next_cursor"])).json()
    assert ([o["id"] for o in second["items"]], second["next_cursor"]) == ([cheap["id"]], None)

    bad = await user.get("/orders", limit=0)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
    bad = await user.get("/orders", cursor="not-a-cursor")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_cursor")


async def test_the_history_names_who_did_what(user: User) -> None:
    made = await order(user)
    await user.http.patch(f"/orders/{made['id']}/status", json={"status": "PAID"})
    username = user.username

    history = await eventually(
        lambda: user.get(f"/orders/{made['id']}/history"),
        until=lambda r: (
            r.status_code == 200
            and [(e["type"], e["actor"] and e["actor"]["username"]) for e in r.json()]
            == [("order.created", username), ("order.status_changed", username)]
        ),
        what="the history of a create and a payment, by name",
    )
    assert history.json()[1]["details"] == {"from_status": "PENDING", "to_status": "PAID"}


async def test_a_seed004_client_lists_and_reads_its_orders(gateway_url: str) -> None:
    async with signed_up(gateway_url, seed004=True) as client:
        products = [{"name": "affe", "price": "42", "quantity": 1}]
        made = (await client.http.post("/api/v1/orders/", json={"products": products})).json()
        await until_listed(client, [made["order_id"]], "/api/v1/orders/")
        listing = (await client.get("/api/v1/orders/")).json()
        product = listing[0]["products"][0]
        assert product == {
            "product_id": seed004.product_id(made["order_id"], 0),
            "name": "affe",
            "price": "42.00",
            "quantity": 1,
        }
        one = (await client.get(f"/api/v1/orders/{made['order_id']}/")).json()
        assert (one["order_id"], one["total_price"], one["status"]) == (
            made["order_id"],
            "42.00",
            "PENDING",
        )


async def test_a_deleted_order_is_hidden_and_its_read_a_404(user: User) -> None:
    kept, gone = await order(user), await order(user)
    assert (await user.http.delete(f"/orders/{gone['id']}")).status_code == 200

    await until_listed(user, [kept["id"]])
    await until_listed(user, [kept["id"]], "/api/v1/orders/")
    for path in (f"/orders/{gone['id']}", f"/orders/{gone['id']}/history"):
        response = await user.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert (await user.get(f"/api/v1/orders/{gone['id']}/")).status_code == 404


async def test_another_users_orders_do_not_exist_for_you(user: User, stranger: User) -> None:
    mine = await order(user)
    await until_listed(user, [mine["id"]])

    for path in (
        f"/orders/{mine['id']}",
        f"/orders/{mine['id']}/history",
        f"/api/v1/orders/{mine['id']}/",
        f"/orders/user/{user.id}",
    ):
        response = await stranger.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert await listed(stranger) == []
    other = await stranger.get("/orders", user_id=user.id)
    assert other.status_code == 404
