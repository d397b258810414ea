"""Text no database column or UTF-8 encoder takes, in every field the auth API reads: a 422
that names the field, never a 500 (and nothing stored)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.factories import user_body

HOSTILE = ["a\x00b", "a\ud800b"]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, str]) -> httpx.Response:
    """Sent as a client writes it: NUL as \\u0000, a lone surrogate as \\ud800."""
    return await client.post(
        path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["username", "email", "password"])
async def test_sign_up(client: httpx.AsyncClient, field: str, text: str) -> None:
    body = {**user_body(), field: text}
    response = await _post(client, "/auth/create_user", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"][-1] == field


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/login/", "username"),
        ("/api/v1/login/", "password"),
        ("/auth/refresh", "refresh_token"),
        ("/auth/logout", "refresh_token"),
    ],
)
async def test_json_bodies(client: httpx.AsyncClient, path: str, field: str, text: str) -> None:
    body = {"username": "someone", "password": "green-tea-42", "refresh_token": "x", field: text}
    response = await _post(client, path, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"][-1] == field


@pytest.mark.parametrize("field", ["username", "password"])
async def test_the_login_form_and_basic(client: httpx.AsyncClient, field: str) -> None:
    form = {"username": "someone", "password": "green-tea-42", field: "a\x00b"}
    by_form = await client.post("/auth/token", data=form)
    by_basic = await client.post("/auth/token", auth=(form["username"], form["password"]))
    for response in (by_form, by_basic):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["loc"][-1] == field
