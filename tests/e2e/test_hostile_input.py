"""Hostile and careless input at the gateway (issue 12's findings, each one): a JSON 4xx, no harm
to another client, nothing trusted that should not be."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.accounts import Account, sign_up
from tests.e2e.test_gateway import assert_json_error

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


@pytest.fixture
async def alice(gateway_url: str) -> AsyncIterator[Account]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        yield await sign_up(http)


@pytest.fixture
async def bob(gateway_url: str) -> AsyncIterator[Account]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        yield await sign_up(http)


async def _raw(gateway_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written as bytes, as no HTTP client library would send it."""
    address = urlsplit(gateway_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


# 1. One client's bad header never breaks another client's write -----------------------------


@pytest.mark.parametrize("if_match", [b"1" * 5000, "\u00b2".encode(), b'"1", nonsense'])
async def test_a_bad_if_match_is_a_json_400_and_another_users_creates_go_on(
    alice: Account, bob: Account, if_match: bytes
) -> None:
    created = await alice.http.post("/orders", json={"items": ITEMS})
    path = f"/orders/{created.json()['id']}/status"
    for _ in range(10):
        bad, good = await asyncio.gather(
            alice.http.patch(path, json={"status": "PAID"}, headers=[(b"If-Match", if_match)]),
            bob.http.post("/orders", json={"items": ITEMS}),
        )
        assert_json_error(bad, 400, "bad_request")
        assert good.status_code == 201, good.text
    assert (await alice.http.get(f"/orders/{created.json()['id']}")).json()["version"] == 1


async def test_if_match_star_matches_the_current_version(alice: Account) -> None:
    created = await alice.http.post("/orders", json={"items": ITEMS})
    path = f"/orders/{created.json()['id']}/status"
    changed = await alice.http.patch(path, json={"status": "PAID"}, headers={"If-Match": "*"})
    assert changed.status_code == 200, changed.text


# 2. Text Postgres cannot store: a 422 that names the field, nothing stored -------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/orders", {"items": [{"name": "tea\u0000", "price": "1.00", "quantity": 1}]}, "name"),
        (
            "/api/v1/orders/",
            {"products": [{"name": "\u0000", "price": "1.00", "quantity": 1}]},
            "name",
        ),
        ("/orders", {"items": [{"name": "tea\ud800", "price": "1.00", "quantity": 1}]}, "name"),
    ],
)
async def test_a_nul_in_an_item_name_is_a_422_naming_it(
    alice: Account, path: str, body: dict[str, object], field: str
) -> None:
    before = (await alice.http.get("/orders")).json()["items"]
    response = await alice.http.post(
        path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert_json_error(response, 422, "validation_error")
    assert response.json()["error"]["details"][0]["loc"][-1] == field
    assert (await alice.http.get("/orders")).json()["items"] == before


async def test_a_nul_in_replaced_items_is_a_422(alice: Account) -> None:
    created = (await alice.http.post("/orders", json={"items": ITEMS})).json()
    body = json.dumps({"items": [{"name": "x\u0000", "price": "1.00", "quantity": 1}]})
    response = await alice.http.put(
        f"/orders/{created['id']}", content=body, headers={"Content-Type": "application/json"}
    )
    assert_json_error(response, 422, "validation_error")


@pytest.mark.parametrize("how", ["form", "basic", "seed004"])
async def test_a_nul_in_a_username_at_login_is_a_422_naming_it(gateway_url: str, how: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        if how == "form":
            response = await http.post(
                "/auth/token",
                content=b"username=al%00ice&password=green-tea-42",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        elif how == "basic":
            credentials = base64.b64encode(b"al\x00ice:green-tea-42").decode()
            response = await http.post(
                "/auth/token", headers={"Authorization": f"Basic {credentials}"}
            )
        else:
            response = await http.post(
                "/api/v1/login/",
                content=b'{"username": "al\\u0000ice", "password": "green-tea-42"}',
                headers={"Content-Type": "application/json"},
            )
    assert_json_error(response, 422, "validation_error")
    assert "username" in response.json()["error"]["details"][0]["loc"]


# 3. Service tokens open /internal/ only, and are not handed out through the gateway -----------


async def test_the_gateway_grants_no_service_token(gateway_url: str) -> None:
    client = ("order_query", "local-order-query-secret")
    form = {"grant_type": "client_credentials"}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        public = await http.post("/auth/token", data=form, auth=client)
        internal = await http.post("/internal/token", data=form, auth=client)
    assert_json_error(public, 400, "unsupported_grant_type")
    assert_json_error(internal, 404, "not_found")


async def test_a_service_token_is_refused_on_every_user_route(
    gateway_url: str, main_stack_env: dict[str, str]
) -> None:
    auth = f"http://127.0.0.1:{main_stack_env['AUTH_PORT']}"
    async with httpx.AsyncClient(timeout=30) as http:
        granted = await http.post(
            f"{auth}/internal/token",
            data={"grant_type": "client_credentials"},
            auth=("order_query", "local-order-query-secret"),
        )
        assert granted.status_code == 200, granted.text
        bearer = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        answers = [
            await http.post(f"{gateway_url}/orders", json={"items": ITEMS}, headers=bearer),
            await http.get(f"{gateway_url}/orders", headers=bearer),
            await http.get(f"{gateway_url}/api/v1/orders/", headers=bearer),
            await http.get(f"{gateway_url}/auth/me", headers=bearer),
        ]
    for answer in answers:
        assert_json_error(answer, 403, "forbidden")


# 4. No redirect is built from the client's Host header ---------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/auth/token/"), ("GET", "/orders/"), ("GET", "/api/v1/orders"), ("GET", "/auth")],
)
async def test_no_redirect_names_the_clients_host(
    gateway_url: str, alice: Account, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        response = await http.request(
            method,
            path,
            headers={**alice.http.headers, "Host": "evil.example"},
            data={"username": "a", "password": "b"} if method == "POST" else None,
        )
    assert "evil.example" not in response.headers.get("location", "")
    assert response.status_code == 404
    assert_json_error(response, 404)


# 5. Every error anything answers by itself is JSON -------------------------------------------


async def test_a_control_byte_in_a_header_is_a_json_400(gateway_url: str) -> None:
    status, headers, body = await _raw(
        gateway_url,
        b"GET /auth/.well-known/jwks.json HTTP/1.1\r\nHost: t\r\nX-Note: a\x01b\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400),
    ],
)
async def test_the_gateways_own_refusals_are_json(
    gateway_url: str, request_bytes: bytes, status: int
) -> None:
    answered, headers, body = await _raw(gateway_url, request_bytes)
    assert answered == status
    assert headers["content-type"].startswith("application/json")
    assert set(json.loads(body)["error"]) == {"code", "message", "details"}


# 6. The public docs show public routes only, from the platform's own assets -----------------


@pytest.mark.parametrize("service", ["auth", "order_command", "order_query"])
async def test_no_public_openapi_document_lists_an_internal_route(
    gateway_url: str, service: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        paths = (await http.get(f"/openapi/{service}.json")).json()["paths"]
    hidden = ("/internal/", "/healthz", "/readyz", "/metrics", "/asyncapi.json")
    assert paths and not [p for p in paths if p.startswith(hidden)]


async def test_the_docs_page_loads_only_the_gateways_own_assets(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        page = await http.get("/docs")
        assets = {
            name: await http.get(f"/docs/assets/{name}")
            for name in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "docs.css")
        }
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "://" not in page.text
    for name, answer in assets.items():
        assert answer.status_code == 200, name
        kind = "javascript" if name.endswith(".js") else "css"
        assert kind in answer.headers["content-type"], name
    assert "persistAuthorization: false" in assets["docs.js"].text
