"""Service tokens: the platform's services prove themselves to each other's /internal/."""

from __future__ import annotations

import httpx

from shared.security import TokenVerifier
from shared.service_tokens import ServiceTokens


async def test_a_known_client_gets_a_service_token(
    client: httpx.AsyncClient, auth_app: object
) -> None:
    response = await client.post(
        "/internal/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "order_query",
            "client_secret": "local-order-query-secret",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    verifier: TokenVerifier = auth_app.state.verifier  # type: ignore[attr-defined]
    principal = await verifier.verify(body["access_token"])
    assert principal.is_service
    assert not principal.is_admin


async def test_a_wrong_secret_or_an_unknown_client_is_401(client: httpx.AsyncClient) -> None:
    for client_id, secret in [("order_query", "guess"), ("stranger", "local-order-query-secret")]:
        response = await client.post(
            "/internal/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 401
        assert 'error="invalid_client"' in response.headers["www-authenticate"]


async def test_the_client_fetches_once_and_reuses_the_token(client: httpx.AsyncClient) -> None:
    tokens = ServiceTokens(
        "http://auth/internal/token", "order_query", "local-order-query-secret", client
    )
    first = await tokens.headers()
    assert first["Authorization"].startswith("Bearer ")
    assert await tokens.headers() == first


async def test_the_public_token_endpoint_grants_passwords_only(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("order_query", "local-order-query-secret"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_grant_type"


async def test_a_service_token_acts_for_no_user(client: httpx.AsyncClient) -> None:
    tokens = ServiceTokens(
        "http://auth/internal/token", "order_query", "local-order-query-secret", client
    )
    response = await client.get("/auth/me", headers=await tokens.headers())
    assert response.status_code == 403
    assert "/internal/" in response.json()["error"]["message"]
