"""A user signed up and logged in through a stack's gateway, as the tests' clients are."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.support.factories import user_body


@dataclass
class Account:
    id: str
    refresh_token: str
    http: httpx.AsyncClient  # sends this user's access token


async def sign_up(http: httpx.AsyncClient) -> Account:
    """Register a new user through the gateway `http` reaches, log in by the form, and have
    `http` send the access token from then on."""
    body = user_body()
    created = await http.post("/auth/create_user", json=body)
    assert created.status_code == 201, created.text
    tokens = await http.post(
        "/auth/token", data={"username": body["username"], "password": body["password"]}
    )
    assert tokens.status_code == 200, tokens.text
    http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
    return Account(
        id=created.json()["id"],
        refresh_token=tokens.json()["refresh_token"],
        http=http,
    )
