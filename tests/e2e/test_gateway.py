"""The gateway's own behaviour, seen from a client of the running stack."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.factories import user_body

ALLOWED_ORIGIN = "http://localhost:3000"  # in .env's GATEWAY_CORS_ORIGINS


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


async def test_the_gateway_answers_its_own_health_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a_burst_of_logins_from_one_address_is_rate_limited_with_json_429(
    client: httpx.AsyncClient, gateway_url: str
) -> None:
    # From 127.0.0.2: the limit is per client address, so the other tests' 127.0.0.1 is spared.
    transport = httpx.AsyncHTTPTransport(
        local_address="127.0.0.2", limits=httpx.Limits(max_connections=300)
    )
    async with httpx.AsyncClient(base_url=gateway_url, transport=transport, timeout=60) as burst:
        form = {"username": "nobody-at-all", "password": "not-the-password"}
        responses = await asyncio.gather(
            *(burst.post("/auth/token", data=form) for _ in range(300))
        )
    statuses = Counter(response.status_code for response in responses)
    limited = [response for response in responses if response.status_code == 429]
    assert limited, statuses
    assert_json_error(limited[0], 429, "too_many_requests")
    assert limited[0].headers["retry-after"] == "1"
    assert all(status < 500 for status in statuses), statuses  # the rest: the service's answer

    from_elsewhere = await client.post("/auth/token", data=form)
    assert from_elsewhere.status_code != 429


async def test_a_body_past_the_limit_is_refused_with_json_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/create_user",
        content=b"x" * 3_000_000,
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(response, 413, "payload_too_large")


async def test_a_body_under_the_limit_reaches_the_service(client: httpx.AsyncClient) -> None:
    """A sign-up padded with white space to 500 KB is served as any other: the user is made."""
    user = user_body()
    body = json.dumps(user).encode().ljust(500_000)
    response = await client.post(
        "/auth/create_user", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["username"] == user["username"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_internal_paths_are_never_routed(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/internal/orders/00000000-0000-0000-0000-000000000000")
    assert_json_error(response, 404, "not_found")


async def test_an_unknown_path_is_a_json_404(client: httpx.AsyncClient) -> None:
    assert_json_error(await client.get("/no/such/thing"), 404, "not_found")


async def test_the_seed004_login_route_reaches_the_auth_service(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/login/", json={"username": "nobody-at-all", "password": "not-the-password"}
    )
    assert_json_error(response, 401)  # the service's answer: wrong credentials


async def test_a_service_error_passes_through_unchanged(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me")  # no token: the auth service's own 401
    assert_json_error(response, 401, "unauthorized")


async def test_a_cors_preflight_from_an_allowed_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/auth/token",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


async def test_a_cors_preflight_from_another_origin_gets_no_cors_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/auth/token",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-methods" not in response.headers


async def test_an_allowed_origin_can_read_an_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/.well-known/jwks.json", headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("path", ["/docs", "/swagger/"])
async def test_the_docs_page_shows_every_service(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/openapi/auth.json" in response.text


async def test_each_services_openapi_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi/auth.json")
    assert response.status_code == 200
    assert "/auth/token" in response.json()["paths"]


async def test_service_metrics_answer_loopback(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics/auth")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in response.text


async def test_every_answer_has_a_request_id(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/healthz"), await client.get("/no/such/thing")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert ids[0] != ids[1]


async def test_a_clients_request_id_is_kept(client: httpx.AsyncClient) -> None:
    for path in ("/auth/.well-known/jwks.json", "/no/such/thing"):
        response = await client.get(path, headers={"X-Request-ID": "e2e-gateway-id.1"})
        assert response.headers.get_list("x-request-id") == ["e2e-gateway-id.1"]


@pytest.mark.parametrize("given", ["has spaces; and more", "x" * 129])
async def test_a_malformed_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_service_that_is_down_is_a_fast_json_502(
    dead_upstream_gateway: str, method: str
) -> None:
    async with httpx.AsyncClient(base_url=dead_upstream_gateway, timeout=10) as client:
        response = await client.request(method, "/auth/token")
    assert response.status_code in {502, 503, 504}
    assert_json_error(response, response.status_code)
    assert response.elapsed.total_seconds() < 3
    assert response.headers["x-request-id"]


async def test_metrics_refuse_an_address_that_is_not_allowed(dead_upstream_gateway: str) -> None:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=dead_upstream_gateway, transport=transport) as client:
        assert_json_error(await client.get("/metrics/auth"), 403, "forbidden")
    async with httpx.AsyncClient(base_url=dead_upstream_gateway) as allowed:
        response = await allowed.get("/metrics/auth")  # 127.0.0.1 is let through, to nobody
    assert response.status_code == 502
