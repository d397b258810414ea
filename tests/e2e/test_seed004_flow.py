"""seed004's README (../shared/seeds/004_...), walked through the gateway as its clients did:
log in at /api/v1/login/, list, create with `products`, get, put, delete (the list hides it),
and read each service's metrics, labelled by route template. On the main stack."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.stacks import PROCESSES
from tests.support.factories import user_body
from tests.support.waiting import eventually

ONE = "/api/v1/orders/{order_id}/"  # the route template the metrics name
Labels = frozenset[tuple[str, str]]


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Logged in the seed004 way: JSON to /api/v1/login/, then the `access` token."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        body = user_body()
        assert (await http.post("/auth/create_user", json=body)).status_code == 201
        login = await http.post(
            "/api/v1/login/", json={"username": body["username"], "password": body["password"]}
        )
        assert login.status_code == 200, login.text
        tokens = login.json()
        assert tokens["access"] == tokens["access_token"]
        assert tokens["refresh"] == tokens["refresh_token"]
        http.headers["Authorization"] = f"Bearer {tokens['access']}"
        yield http


async def _listed(client: httpx.AsyncClient) -> list[str]:
    answer = await client.get("/api/v1/orders/")
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json(), list), answer.text  # seed004's bare list
    return [order["order_id"] for order in answer.json()]


async def _calls(client: httpx.AsyncClient, service: str) -> dict[Labels, float]:
    """`http_calls_total` and `http_failures_total` of one service, by their labels (plus
    the sample's name), summed over its processes (`/metrics/<service>.<n>`, each process's
    own)."""
    summed: dict[Labels, float] = defaultdict(float)
    for n in range(1, PROCESSES + 1):
        answer = await client.get(f"/metrics/{service}.{n}")
        assert answer.status_code == 200, answer.text
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                if sample.name in {"http_calls_total", "http_failures_total"}:
                    labels = frozenset({("name", sample.name), *sample.labels.items()})
                    summed[labels] += float(sample.value)
    return summed


def _count(metrics: dict[Labels, float], name: str, **labels: str) -> float:
    return metrics.get(frozenset({("name", name), *labels.items()}), 0.0)


async def test_the_seed004_clients_walk_lists_creates_changes_and_deletes(
    client: httpx.AsyncClient,
) -> None:
    assert await _listed(client) == []  # a new user has none

    products = [{"name": "affe", "price": "42", "quantity": 2}]
    created = await client.post(
        "/api/v1/orders/", json={"total_price": "84.00", "products": products}
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["order_id"] == order["id"]
    assert (order["status"], order["total_price"], order["is_deleted"]) == (
        "PENDING",
        "84.00",
        False,
    )
    assert [{k: v for k, v in p.items() if k != "product_id"} for p in order["products"]] == [
        {"name": "affe", "price": "42.00", "quantity": 2}
    ]
    me = (await client.get("/auth/me")).json()
    assert order["user"] == me["username"]
    kept = (
        await client.post("/api/v1/orders/", json={"products": [{**products[0], "quantity": 1}]})
    ).json()

    read = await client.get(f"/api/v1/orders/{order['id']}/")
    assert read.status_code == 200, read.text
    assert (read.json()["order_id"], read.json()["products"]) == (order["id"], order["products"])
    assert read.json()["user"] == me["username"]  # from the read side's own record of names
    assert order["products"][0]["product_id"]  # the same line's id in every answer
    await eventually(
        lambda: _listed(client),
        until=lambda ids: set(ids) == {order["id"], kept["id"]},
        what="both orders listed",
    )

    replaced = await client.put(
        f"/api/v1/orders/{order['id']}/",
        json={"products": [{"name": "cake", "price": "3.50", "quantity": 2}]},
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["total_price"], replaced.json()["version"]) == ("7.00", 2)
    assert replaced.json()["products"][0]["name"] == "cake"

    deleted = await client.delete(f"/api/v1/orders/{order['id']}/")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["is_deleted"] is True
    await eventually(
        lambda: _listed(client), until=lambda ids: ids == [kept["id"]], what="the list hides it"
    )
    gone = await client.get(f"/api/v1/orders/{order['id']}/")
    assert gone.status_code == 404, gone.text


async def test_each_services_metrics_count_the_seed004_routes_by_template(
    client: httpx.AsyncClient,
) -> None:
    before = {s: await _calls(client, s) for s in ("auth", "order_command", "order_query")}
    order_id = (
        await client.post(
            "/api/v1/orders/", json={"products": [{"name": "affe", "price": "42", "quantity": 1}]}
        )
    ).json()["id"]
    await client.put(
        f"/api/v1/orders/{order_id}/",
        json={"products": [{"name": "cake", "price": "3.50", "quantity": 2}]},
    )
    await client.delete(f"/api/v1/orders/{order_id}/")
    await eventually(
        lambda: client.get(f"/api/v1/orders/{order_id}/"),
        until=lambda answer: answer.status_code == 404,
        what="the deleted order's read answering 404",
    )
    await client.post("/api/v1/login/", json={"username": "nobody-at-all", "password": "x" * 12})

    def grew(service: str, name: str, by: float, **labels: str) -> Any:
        async def probe() -> float:
            now = await _calls(client, service)
            return _count(now, name, **labels) - _count(before[service], name, **labels)

        return eventually(
            probe, until=lambda delta: delta >= by, what=f"{service} {name} {labels} +{by}"
        )

    calls = "http_calls_total"
    assert await grew("order_command", calls, 1, method="POST", route="/api/v1/orders/") == 1
    assert await grew("order_command", calls, 1, method="PUT", route=ONE) == 1
    assert await grew("order_command", calls, 1, method="DELETE", route=ONE) == 1
    await grew("order_query", calls, 1, method="GET", route=ONE)
    await grew("order_query", "http_failures_total", 1, method="GET", route=ONE, status="404")
    login = {"method": "POST", "route": "/api/v1/login/"}
    await grew("auth", "http_failures_total", 1, **login, status="401")

    for service in ("order_command", "order_query"):
        routes = {dict(labels).get("route", "") for labels in await _calls(client, service)}
        assert not any(order_id in route for route in routes), routes  # never the raw path


async def test_the_seed004_list_is_a_bare_list_with_the_next_page_in_a_link_header(
    client: httpx.AsyncClient,
) -> None:
    products = [{"name": "affe", "price": "42", "quantity": 1}]
    made = [
        (await client.post("/api/v1/orders/", json={"products": products})).json()["id"]
        for _ in range(3)
    ]
    first = await eventually(
        lambda: client.get("/api/v1/orders/", params={"limit": 2}),
        until=lambda answer: len(answer.json()) == 2 and "link" in answer.headers,
        what="a first page of two with a link to the next",
    )
    assert [o["order_id"] for o in first.json()] == made[:0:-1]
    following = first.headers["link"].split(";")[0].strip("<>")
    assert following.startswith("/api/v1/orders/?") and 'rel="next"' in first.headers["link"]
    rest = await client.get(following)
    assert [o["order_id"] for o in rest.json()] == [made[0]]
    assert "link" not in rest.headers


async def test_seed004s_metrics_count_calls_successes_and_failures_per_endpoint(
    client: httpx.AsyncClient,
) -> None:
    async def counts() -> dict[tuple[str, str, str], float]:
        answer = await client.get("/metrics/")
        assert answer.status_code == 200, answer.text
        return {
            (s.name, s.labels["method"], s.labels["route"]): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples
            if s.name in {"http_calls_total", "http_successes_total", "http_failures_total"}
        }

    before = await counts()
    await client.get("/api/v1/orders/")
    await client.get(f"/api/v1/orders/{uuid.uuid4()}/")  # a 404
    one = "/api/v1/orders/{order_id}/"

    def grew(now: dict[tuple[str, str, str], float], *key: str) -> bool:
        return now.get(key, 0) > before.get(key, 0)  # type: ignore[arg-type]

    await eventually(
        counts,
        until=lambda now: (
            grew(now, "http_successes_total", "GET", "/api/v1/orders/")
            and grew(now, "http_failures_total", "GET", one)
            and grew(now, "http_calls_total", "GET", one)
        ),
        what="the calls counted per endpoint",
    )
