"""The first admin comes from the command line, never from the public API."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from auth_service.settings import AuthSettings
from tests.support.factories import user_body


async def _create_admin(
    settings: AuthSettings, tmp_path: Path, username: str, password: str
) -> tuple[int, str]:
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": settings.auth_database_url.get_secret_value(),
        "RABBITMQ_URL": settings.rabbitmq_url.get_secret_value(),
        "AUTH_JWT_KEY_FILE": str(tmp_path / "cli.pem"),
        "ADMIN_PASSWORD": password,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "auth_service.cli",
        "create-admin",
        "--email",
        f"{username}@example.com",
        "--username",
        username,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def _role(client: httpx.AsyncClient, username: str, password: str) -> str:
    tokens = (await client.post("/auth/token", auth=(username, password))).json()
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    role: str = me.json()["role"]
    return role


async def test_create_admin_makes_an_admin_who_can_log_in(
    client: httpx.AsyncClient, auth_settings: AuthSettings, tmp_path: Path
) -> None:
    body = user_body()
    code, out = await _create_admin(auth_settings, tmp_path, body["username"], body["password"])
    assert code == 0, out
    assert f"created admin {body['username']}" in out
    assert body["password"] not in out
    assert await _role(client, body["username"], body["password"]) == "admin"


async def test_create_admin_promotes_an_existing_user_and_sets_their_password(
    client: httpx.AsyncClient,
    auth_settings: AuthSettings,
    registered: dict[str, str],
    tmp_path: Path,
) -> None:
    code, out = await _create_admin(
        auth_settings, tmp_path, registered["username"], "Another-pass-1"
    )
    assert code == 0, out
    assert "promoted" in out and "set their password" in out
    assert await _role(client, registered["username"], "Another-pass-1") == "admin"
    old = await client.post(
        "/auth/token",
        data={"username": registered["username"], "password": registered["password"]},
    )
    assert old.status_code == 401, old.text


async def test_create_admin_refuses_a_weak_password(
    auth_settings: AuthSettings, tmp_path: Path
) -> None:
    code, out = await _create_admin(auth_settings, tmp_path, "weakling", "short")
    assert code == 2
    assert "must be at least 8 characters" in out


async def test_the_public_api_cannot_make_an_admin(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/create_user", json={**user_body(), "role": "admin"})
    assert response.status_code == 422
