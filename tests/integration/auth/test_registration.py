"""Signing up: who gets in, who gets a clear 4xx, and that a refusal stores nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.factories import user_body

CountUsers = Callable[[], Awaitable[int]]


async def test_a_new_user_is_created_and_answered_without_the_password(
    client: httpx.AsyncClient,
) -> None:
    body = user_body(email="Mixed.Case@Example.com")
    response = await client.post("/auth/create_user", json=body)
    assert response.status_code == 201
    user = response.json()
    assert user["username"] == body["username"]
    assert user["email"] == "mixed.case@example.com"
    assert user["role"] == "user"
    assert set(user) == {"id", "username", "email", "role", "created_at"}


async def test_a_taken_username_is_409_whatever_its_case(
    client: httpx.AsyncClient, registered: dict[str, str], count_users: CountUsers
) -> None:
    before = await count_users()
    response = await client.post(
        "/auth/create_user", json=user_body(username=registered["username"].upper())
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"field": "username"}
    assert await count_users() == before


async def test_a_taken_email_is_409_whatever_its_case(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/create_user", json=user_body(email=registered["email"].upper())
    )
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "That email is taken",
        "details": {"field": "email"},
    }


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"username": ""}, "username", "at least 1 character"),
        ({"username": "x" * 51}, "username", "at most 50 characters"),
        ({"username": "has space"}, "username", "pattern"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"password": "short1"}, "password", "at least 8 characters"),
        ({"password": "lettersonly"}, "password", "must contain a digit"),
        ({"password": "1234567890"}, "password", "must contain a letter"),
        ({"password": "a1" * 65}, "password", "at most 128 characters"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_the_rule(
    client: httpx.AsyncClient,
    count_users: CountUsers,
    overrides: dict[str, Any],
    field: str,
    says: str,
) -> None:
    before = await count_users()
    response = await client.post("/auth/create_user", json=user_body(**overrides))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    [detail] = [d for d in error["details"] if d["loc"][-1] == field]
    assert says in detail["msg"]
    assert await count_users() == before


async def test_a_password_equal_to_the_username_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/create_user", json=user_body(username="samename1", password="SameName1")
    )
    assert response.status_code == 422
    assert "must not be the username" in response.text


async def test_the_password_is_never_echoed_in_an_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/create_user", json=user_body(password="NoDigitsAtAllHere"))
    assert response.status_code == 422
    assert "NoDigitsAtAllHere" not in response.text


async def test_malformed_json_is_422(client: httpx.AsyncClient, count_users: CountUsers) -> None:
    before = await count_users()
    response = await client.post(
        "/auth/create_user", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["type"] == "json_invalid"
    assert await count_users() == before


async def test_a_form_where_json_is_expected_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/create_user", data=user_body())
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_missing_fields_are_each_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/create_user", json={})
    assert response.status_code == 422
    named = {d["loc"][-1] for d in response.json()["error"]["details"]}
    assert named == {"username", "email", "password"}
