"""Changing an order over HTTP: items while PENDING, the lifecycle, If-Match, deleting, who may,
and the event each change publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shared import seed004
from shared.events import Role
from tests.integration.order_command.conftest import order_body
from tests.support.rabbit import capture
from tests.support.servers import Servers
from tests.support.tokens import Caller

CreateOrder = Callable[..., Awaitable[dict[str, Any]]]
SERVICE = Caller(Role.SERVICE)

NEW_ITEMS = [{"name": "coffee", "price": "4.20", "quantity": 3}]


async def internal_read(client: httpx.AsyncClient, order_id: str) -> httpx.Response:
    """The order as the command side holds it, read with a service token."""
    return await client.get(f"/internal/orders/{order_id}", headers=SERVICE.headers)


async def version_of(client: httpx.AsyncClient, order_id: str) -> int:
    response = await internal_read(client, order_id)
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


async def set_status(
    client: httpx.AsyncClient, order_id: str, status: str, by: Caller, **headers: str | bytes
) -> httpx.Response:
    sent = [
        (name.encode(), value if isinstance(value, bytes) else value.encode())
        for name, value in {**by.headers, **headers}.items()
    ]
    return await client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=sent)


# --- replacing items --------------------------------------------------------------------------


async def test_put_while_pending_replaces_the_items_and_the_total(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.put(
        f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["items"] == NEW_ITEMS
    assert changed["total_price"] == "12.60"
    assert changed["version"] == 2
    assert changed["status"] == "PENDING"
    assert response.headers["etag"] == '"2"'
    stored = (await internal_read(client, order["id"])).json()
    assert (stored["items"], stored["total_price"], stored["version"]) == (NEW_ITEMS, "12.60", 2)


async def test_put_publishes_order_updated_with_the_new_items_and_total(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, servers: Servers
) -> None:
    order = await create_order()
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        await client.put(f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=alice.headers)
        event = await captured.wait_for(
            lambda e: e["aggregate_id"] == order["id"] and e["type"] == "order.updated"
        )
    assert event["version"] == 2
    assert event["payload"] == {
        "items": NEW_ITEMS,
        "total_price": "12.60",
        "updated_by": str(alice.id),
    }


async def test_put_with_a_total_that_does_not_match_is_422_and_changes_nothing(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.put(
        f"/orders/{order['id']}",
        json={"items": NEW_ITEMS, "total_price": "12.61"},
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"total_price": "12.61", "computed": "12.60"}
    assert await version_of(client, order["id"]) == 1


async def test_put_on_a_paid_order_is_409_with_its_status_and_version(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    assert (await set_status(client, order["id"], "PAID", alice)).status_code == 200
    response = await client.put(
        f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=alice.headers
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"status": "PAID", "version": 2}
    assert (await internal_read(client, order["id"])).json()["items"] == order["items"]


async def test_the_seed004_put_path_replaces_items_sent_as_products(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.put(
        f"/api/v1/orders/{order['id']}/", json={"products": NEW_ITEMS}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_id"] == order["id"]
    assert body["items"] == NEW_ITEMS
    assert [
        {k: v for k, v in product.items() if k != "product_id"} for product in body["products"]
    ] == NEW_ITEMS
    assert body["products"][0]["product_id"] == seed004.product_id(order["id"], 0)
    assert body["version"] == 2


# --- the lifecycle ----------------------------------------------------------------------------


async def test_a_forward_status_change_is_200_and_bumps_the_version(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await set_status(client, order["id"], "PAID", alice)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PAID"
    assert response.json()["version"] == 2
    assert response.headers["etag"] == '"2"'
    response = await set_status(client, order["id"], "CANCELED", alice)
    assert (response.json()["status"], response.json()["version"]) == ("CANCELED", 3)


async def test_a_status_change_publishes_status_changed_naming_the_caller(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, servers: Servers
) -> None:
    order = await create_order()
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        await set_status(client, order["id"], "SHIPPED", alice)
        event = await captured.wait_for(
            lambda e: e["aggregate_id"] == order["id"] and e["type"] == "order.status_changed"
        )
    assert event["version"] == 2
    assert event["payload"] == {
        "from_status": "PENDING",
        "to_status": "SHIPPED",
        "changed_by": str(alice.id),
    }


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["PAID"], "PENDING"),  # backward
        (["PAID"], "PAID"),  # the same
        (["SHIPPED"], "PAID"),
        (["CANCELED"], "SHIPPED"),  # after CANCELED
        (["CANCELED"], "CANCELED"),
        ([], "PENDING"),
    ],
)
async def test_a_refused_status_change_is_409_with_the_current_status_and_version(
    client: httpx.AsyncClient,
    alice: Caller,
    create_order: CreateOrder,
    path: list[str],
    target: str,
) -> None:
    order = await create_order()
    for status in path:
        assert (await set_status(client, order["id"], status, alice)).status_code == 200
    current = path[-1] if path else "PENDING"
    response = await set_status(client, order["id"], target, alice)
    assert response.status_code == 409
    details = response.json()["error"]["details"]
    assert (details["status"], details["version"]) == (current, 1 + len(path))
    assert await version_of(client, order["id"]) == 1 + len(path)


@pytest.mark.parametrize(("sent", "becomes"), [("paid", "PAID"), ("cancelled", "CANCELED")])
async def test_lower_case_and_seed004_spellings_of_a_status_are_accepted(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, sent: str, becomes: str
) -> None:
    order = await create_order()
    response = await set_status(client, order["id"], sent, alice)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == becomes


@pytest.mark.parametrize("status", ["LOST", "", "pend", 3])
async def test_an_unknown_status_is_422(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, status: Any
) -> None:
    order = await create_order()
    response = await client.patch(
        f"/orders/{order['id']}/status", json={"status": status}, headers=alice.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await version_of(client, order["id"]) == 1


async def test_the_seed000_update_path_changes_the_status(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.patch(
        "/orders/update",
        json={"order_id": order["id"], "new_status": "PAID"},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["status"]) == (order["id"], "PAID")
    assert response.json()["version"] == 2


async def test_the_seed000_update_path_follows_the_lifecycle_too(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    await set_status(client, order["id"], "SHIPPED", alice)
    response = await client.patch(
        "/orders/update",
        json={"order_id": order["id"], "new_status": "PAID"},
        headers=alice.headers,
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"]["status"] == "SHIPPED"


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/orders/{id}", {"items": NEW_ITEMS}),
        ("PUT", "/api/v1/orders/{id}/", {"items": NEW_ITEMS}),
        ("PATCH", "/orders/{id}/status", {"status": "PAID"}),
        ("PATCH", "/orders/update", {"order_id": "{id}", "new_status": "PAID"}),
        ("DELETE", "/orders/{id}", None),
        ("DELETE", "/api/v1/orders/{id}/", None),
    ],
)
async def test_another_users_order_is_404_and_stays_unchanged(
    client: httpx.AsyncClient,
    bob: Caller,
    create_order: CreateOrder,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    order = await create_order()  # alice's
    if body is not None:
        body = {
            k: v.replace("{id}", order["id"]) if isinstance(v, str) else v for k, v in body.items()
        }
    response = await client.request(
        method, path.replace("{id}", order["id"]), json=body, headers=bob.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    stored = (await internal_read(client, order["id"])).json()
    assert (stored["version"], stored["status"], stored["is_deleted"]) == (1, "PENDING", False)
    assert stored["items"] == order["items"]


async def test_an_admin_may_change_anyones_order(
    client: httpx.AsyncClient, admin: Caller, create_order: CreateOrder, servers: Servers
) -> None:
    order = await create_order()
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        put = await client.put(
            f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=admin.headers
        )
        patch = await set_status(client, order["id"], "PAID", admin)
        delete = await client.delete(f"/orders/{order['id']}", headers=admin.headers)
        event = await captured.wait_for(
            lambda e: e["aggregate_id"] == order["id"] and e["type"] == "order.status_changed"
        )
    assert (put.status_code, patch.status_code, delete.status_code) == (200, 200, 200)
    assert delete.json()["version"] == 4
    assert event["payload"]["changed_by"] == str(admin.id)


# --- If-Match ---------------------------------------------------------------------------------


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"'])
async def test_if_match_with_the_current_version_is_200(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, if_match: str
) -> None:
    order = await create_order()
    response = await set_status(client, order["id"], "PAID", alice, **{"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2


async def test_if_match_with_a_stale_version_is_412_with_the_current_version(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    await client.put(f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=alice.headers)
    response = await set_status(client, order["id"], "PAID", alice, **{"If-Match": '"1"'})
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert response.json()["error"]["details"]["version"] == 2
    assert await version_of(client, order["id"]) == 2


async def test_if_match_with_a_stale_version_refuses_put_and_delete_too(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    await set_status(client, order["id"], "PAID", alice)
    stale = {**alice.headers, "If-Match": '"1"'}
    put = await client.put(f"/orders/{order['id']}", json={"items": NEW_ITEMS}, headers=stale)
    delete = await client.delete(f"/orders/{order['id']}", headers=stale)
    assert (put.status_code, delete.status_code) == (412, 412)
    stored = (await internal_read(client, order["id"])).json()
    assert (stored["version"], stored["is_deleted"]) == (2, False)


@pytest.mark.parametrize("if_match", ["*", '"7", "1"'])
async def test_if_match_star_or_a_list_that_holds_the_version_is_200(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, if_match: str
) -> None:
    """RFC 9110: `*` matches any current version; a list matches if any of its tags does."""
    order = await create_order()
    response = await set_status(client, order["id"], "PAID", alice, **{"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "if_match",
    ["abc", '"-1"', '"1.0"', "1" * 5000, "\u00b2".encode(), "\u0661".encode(), '"1", abc', '"1'],
)
async def test_if_match_that_is_not_a_version_is_400(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, if_match: str | bytes
) -> None:
    order = await create_order()
    response = await set_status(client, order["id"], "PAID", alice, **{"If-Match": if_match})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert await version_of(client, order["id"]) == 1


# --- deleting ---------------------------------------------------------------------------------


async def test_delete_is_200_with_the_order_marked_deleted(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.delete(f"/orders/{order['id']}", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["is_deleted"], body["version"]) == (order["id"], True, 2)
    assert body["status"] == "PENDING"
    assert response.headers["etag"] == '"2"'


async def test_delete_publishes_order_deleted_naming_who(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder, servers: Servers
) -> None:
    order = await create_order()
    async with capture(servers.rabbitmq, "orders.events", "order.#") as captured:
        await client.delete(f"/orders/{order['id']}", headers=alice.headers)
        event = await captured.wait_for(
            lambda e: e["aggregate_id"] == order["id"] and e["type"] == "order.deleted"
        )
    assert event["version"] == 2
    assert event["payload"] == {"deleted_by": str(alice.id)}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/orders/{id}/status", {"status": "PAID"}),
        ("PUT", "/orders/{id}", {"items": NEW_ITEMS}),
        ("DELETE", "/orders/{id}", None),
    ],
)
async def test_a_deleted_order_is_404_to_further_changes(
    client: httpx.AsyncClient,
    alice: Caller,
    create_order: CreateOrder,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    order = await create_order()
    assert (await client.delete(f"/orders/{order['id']}", headers=alice.headers)).is_success
    response = await client.request(
        method, path.replace("{id}", order["id"]), json=body, headers=alice.headers
    )
    assert response.status_code == 404
    assert await version_of(client, order["id"]) == 2


async def test_the_seed004_delete_path_deletes(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.delete(f"/api/v1/orders/{order['id']}/", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["is_deleted"] is True
    assert response.json()["order_id"] == order["id"]  # in seed004's shape
    assert (await internal_read(client, order["id"])).json()["is_deleted"] is True


# --- ids and the internal read ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/orders/not-a-uuid", {"items": NEW_ITEMS}),
        ("PUT", "/api/v1/orders/42/", {"items": NEW_ITEMS}),
        ("PATCH", "/orders/42/status", {"status": "PAID"}),
        ("PATCH", "/orders/update", {"order_id": "42", "new_status": "PAID"}),
        ("DELETE", "/orders/not-a-uuid", None),
        ("DELETE", "/api/v1/orders/42/", None),
    ],
)
async def test_an_id_that_is_not_a_uuid_is_422(
    client: httpx.AsyncClient,
    alice: Caller,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await client.request(method, path, json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_an_unknown_order_is_404(client: httpx.AsyncClient, alice: Caller) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await set_status(client, unknown, "PAID", alice)
    assert response.status_code == 404


async def test_the_internal_read_refuses_a_users_token(
    client: httpx.AsyncClient, alice: Caller, admin: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    for caller in (alice, admin):
        response = await client.get(f"/internal/orders/{order['id']}", headers=caller.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


async def test_the_internal_read_needs_a_token(
    client: httpx.AsyncClient, create_order: CreateOrder
) -> None:
    order = await create_order()
    assert (await client.get(f"/internal/orders/{order['id']}")).status_code == 401


async def test_the_internal_read_answers_a_service_with_the_order(
    client: httpx.AsyncClient, service: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.get(f"/internal/orders/{order['id']}", headers=service.headers)
    assert response.status_code == 200
    assert response.json() == order
    assert response.headers["etag"] == '"1"'


async def test_the_internal_read_includes_a_deleted_order(
    client: httpx.AsyncClient, alice: Caller, service: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    await client.delete(f"/orders/{order['id']}", headers=alice.headers)
    response = await client.get(f"/internal/orders/{order['id']}", headers=service.headers)
    assert response.status_code == 200
    assert (response.json()["is_deleted"], response.json()["version"]) == (True, 2)


async def test_the_internal_read_of_an_unknown_order_is_404(
    client: httpx.AsyncClient, service: Caller
) -> None:
    response = await client.get(
        "/internal/orders/00000000-0000-4000-8000-000000000000", headers=service.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_put_with_bad_items_is_422_and_changes_nothing(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    order = await create_order()
    response = await client.put(
        f"/orders/{order['id']}",
        json=order_body(items=[{"name": "x", "price": "1.00", "quantity": 0}]),
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert await version_of(client, order["id"]) == 1


async def test_put_of_items_within_every_limit_is_never_a_500(
    client: httpx.AsyncClient, alice: Caller, create_order: CreateOrder
) -> None:
    """1,000,000.00 x 10,000 passes each item limit; the answer must be 200 or a 422."""
    order = await create_order()
    biggest = [{"name": "x", "price": "1000000.00", "quantity": 10_000}]
    response = await client.put(
        f"/orders/{order['id']}", json={"items": biggest}, headers=alice.headers
    )
    assert response.status_code in (200, 422)
