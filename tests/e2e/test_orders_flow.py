"""Changing orders through the gateway as a signed-up user, with the auth service's tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.factories import user_body

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


@pytest.fixture
async def user(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as a new user through the gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        body = user_body()
        assert (await http.post("/auth/create_user", json=body)).status_code == 201
        tokens = (await http.post("/auth/token", auth=(body["username"], body["password"]))).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield http


async def test_a_user_creates_changes_and_deletes_an_order(user: httpx.AsyncClient) -> None:
    created = await user.post("/orders", json={"items": ITEMS}, headers={"Idempotency-Key": "a1"})
    assert created.status_code == 201
    order = created.json()
    assert (order["status"], order["version"], order["total_price"]) == ("PENDING", 1, "5.00")

    retried = await user.post("/orders", json={"items": ITEMS}, headers={"Idempotency-Key": "a1"})
    assert retried.status_code == 201
    assert retried.json()["id"] == order["id"]

    items = [{"name": "coffee", "price": "3.00", "quantity": 1}]
    replaced = await user.put(f"/orders/{order['id']}", json={"items": items})
    assert replaced.json()["total_price"] == "3.00"

    paid = await user.patch(
        f"/orders/{order['id']}/status", json={"status": "PAID"}, headers={"If-Match": '"2"'}
    )
    assert (paid.status_code, paid.json()["version"]) == (200, 3)
    back = await user.patch(
        "/orders/update", json={"order_id": order["id"], "new_status": "PENDING"}
    )
    assert back.status_code == 409
    assert back.json()["error"]["details"]["status"] == "PAID"

    deleted = await user.delete(f"/orders/{order['id']}")
    assert deleted.json()["is_deleted"] is True
    assert (
        await user.patch(f"/orders/{order['id']}/status", json={"status": "CANCELED"})
    ).status_code == 404


async def test_seed004_creates_with_products(user: httpx.AsyncClient) -> None:
    response = await user.post(
        "/api/v1/orders/", json={"products": [{"name": "affe", "price": "42", "quantity": 1}]}
    )
    assert response.status_code == 201
    assert response.json()["products"][0]["price"] == "42.00"
    refused = await user.post(
        "/api/v1/orders/",
        json={"status": "cancelled", "products": [{"name": "affe", "price": "42", "quantity": 1}]},
    )
    assert refused.status_code == 422


async def test_another_users_order_does_not_exist_for_you(
    user: httpx.AsyncClient, gateway_url: str
) -> None:
    order = (await user.post("/orders", json={"items": ITEMS})).json()
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as stranger:
        body = user_body()
        await stranger.post("/auth/create_user", json=body)
        token = (
            await stranger.post("/auth/token", auth=(body["username"], body["password"]))
        ).json()
        response = await stranger.delete(
            f"/orders/{order['id']}", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
    assert response.status_code == 404


async def test_the_internal_read_is_not_reachable_through_the_gateway(
    user: httpx.AsyncClient,
) -> None:
    order = (await user.post("/orders", json={"items": ITEMS})).json()
    response = await user.get(f"/internal/orders/{order['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
