"""Passwords and tokens never reach the logs, whatever the flow."""

from __future__ import annotations

import logging

import httpx
import pytest

from shared.logs import JsonFormatter
from tests.support.factories import user_body


async def test_no_password_or_token_is_ever_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = user_body()
    await client.post("/auth/create_user", json=body)
    await client.post("/auth/create_user", json={**body, "password": "no-digits-here"})
    tokens = (await client.post("/auth/token", auth=(body["username"], body["password"]))).json()
    await client.post("/auth/token", data={"username": body["username"], "password": "Wrong-1x"})
    await client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    await client.get("/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
    rotated = (await client.post("/auth/refresh", json=tokens)).json()
    await client.post("/auth/refresh", json=tokens)  # reuse
    await client.post("/auth/logout", json=rotated)

    formatter = JsonFormatter("auth_service")
    written = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records, "expected the flows above to log something"
    for secret in (
        body["password"],
        "Wrong-1x",
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["refresh_token"],
    ):
        assert secret not in written
