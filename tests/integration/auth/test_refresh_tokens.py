"""Refresh tokens: rotation, reuse detection that revokes the family, logout, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from auth_service.tokens import refresh_token_hash
from shared.db import asyncpg_dsn


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_both_tokens(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    response = await _refresh(client, tokens["refresh_token"])
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    me = await client.get(
        "/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 200


async def test_a_reused_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    successor = (await _refresh(client, tokens["refresh_token"])).json()["refresh_token"]
    reuse = await _refresh(client, tokens["refresh_token"])
    assert reuse.status_code == 401
    assert "revoked" in reuse.json()["error"]["message"]
    # The thief's replay cost the legitimate holder the session too: that is the point.
    assert (await _refresh(client, successor)).status_code == 401


async def test_another_login_is_a_family_of_its_own(
    client: httpx.AsyncClient, registered: dict[str, str], tokens: dict[str, str]
) -> None:
    second = (
        await client.post(
            "/auth/token",
            data={"username": registered["username"], "password": registered["password"]},
        )
    ).json()
    await _refresh(client, tokens["refresh_token"])
    await _refresh(client, tokens["refresh_token"])  # reuse: revokes the first family only
    assert (await _refresh(client, second["refresh_token"])).status_code == 200


async def test_logout_revokes_the_family(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    successor = (await _refresh(client, tokens["refresh_token"])).json()["refresh_token"]
    response = await client.post("/auth/logout", json={"refresh_token": successor})
    assert response.status_code == 204
    assert (await _refresh(client, successor)).status_code == 401


async def test_logout_with_an_unknown_token_is_still_204(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout", json={"refresh_token": "never-issued"})
    assert response.status_code == 204


async def test_an_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await _refresh(client, "never-issued")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Unknown refresh token"


@pytest.fixture
async def auth_db(auth_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(auth_db_url))
    yield conn
    await conn.close()


async def test_an_expired_refresh_token_is_401(
    client: httpx.AsyncClient, tokens: dict[str, str], auth_db: asyncpg.Connection
) -> None:
    await auth_db.execute(
        "update refresh_tokens set expires_at = now() - interval '1 second' where token_hash = $1",
        refresh_token_hash(tokens["refresh_token"]),
    )
    response = await _refresh(client, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This refresh token has expired"


async def test_refresh_tokens_are_stored_only_as_hashes(
    tokens: dict[str, str], auth_db: asyncpg.Connection
) -> None:
    raw = tokens["refresh_token"].encode()
    stored = await auth_db.fetch("select token_hash from refresh_tokens")
    assert all(raw not in row["token_hash"] for row in stored)
    assert any(row["token_hash"] == refresh_token_hash(tokens["refresh_token"]) for row in stored)


async def test_a_missing_refresh_token_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/refresh", json={})
    assert response.status_code == 422
