"""Logging in: the OAuth2 password form, HTTP Basic, and seed004's JSON login."""

from __future__ import annotations

import httpx


async def test_the_password_form_gives_a_token_pair(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/token", data={"username": registered["username"], "password": registered["password"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 40


async def test_http_basic_gives_a_token_pair(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/token", auth=(registered["username"], registered["password"])
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_the_email_and_any_case_log_in_too(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    for name in (registered["email"].upper(), registered["username"].upper()):
        response = await client.post(
            "/auth/token", data={"username": name, "password": registered["password"]}
        )
        assert response.status_code == 200, name


async def test_a_wrong_password_is_401(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/token", data={"username": registered["username"], "password": "wrong-pass-1"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Wrong username or password"
    assert "Bearer" in response.headers["www-authenticate"]


async def test_an_unknown_user_gets_the_same_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", data={"username": "nobody-at-all", "password": "whatever-1"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Wrong username or password"


async def test_no_credentials_at_all_is_401_saying_how(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token")
    assert response.status_code == 401
    assert "form" in response.json()["error"]["message"]


async def test_seed004_login_answers_access_and_refresh_too(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/login/",
        json={"username": registered["username"], "password": registered["password"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["access"] == body["access_token"]
    assert body["refresh"] == body["refresh_token"]
    assert body["token_type"] == "bearer"


async def test_seed004_login_with_a_wrong_password_is_401(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/login/", json={"username": registered["username"], "password": "nope-nope-1"}
    )
    assert response.status_code == 401
