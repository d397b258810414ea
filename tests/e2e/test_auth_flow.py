"""A user's whole auth flow through the gateway, as the seed000 README walks it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.factories import user_body


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        yield client


async def test_register_log_in_rotate_reuse_and_log_out(http: httpx.AsyncClient) -> None:
    body = user_body()
    created = await http.post("/auth/create_user", json=body)
    assert created.status_code == 201
    user_id = created.json()["id"]

    by_form = await http.post(
        "/auth/token", data={"username": body["username"], "password": body["password"]}
    )
    assert by_form.status_code == 200
    by_basic = await http.post("/auth/token", auth=(body["username"], body["password"]))
    assert by_basic.status_code == 200

    tokens = by_form.json()
    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user_id

    rotated = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    successor = rotated.json()["refresh_token"]

    reused = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "unauthorized"
    family_gone = await http.post("/auth/refresh", json={"refresh_token": successor})
    assert family_gone.status_code == 401

    basic_session = by_basic.json()["refresh_token"]
    assert (
        await http.post("/auth/logout", json={"refresh_token": basic_session})
    ).status_code == 204
    after_logout = await http.post("/auth/refresh", json={"refresh_token": basic_session})
    assert after_logout.status_code == 401


async def test_seed004_login_through_the_gateway(http: httpx.AsyncClient) -> None:
    body = user_body()
    await http.post("/auth/create_user", json=body)
    response = await http.post(
        "/api/v1/login/", json={"username": body["username"], "password": body["password"]}
    )
    assert response.status_code == 200
    assert {"access", "refresh", "access_token", "refresh_token"} <= set(response.json())


async def _verify_elsewhere(jwks_url: str, token: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.verify_token",
        jwks_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(token.encode()), 30)
    return process.returncode or 0, out.decode().strip()


async def test_another_process_verifies_a_token_with_nothing_but_the_jwks(
    http: httpx.AsyncClient, gateway_url: str
) -> None:
    body = user_body()
    user_id = (await http.post("/auth/create_user", json=body)).json()["id"]
    token = (await http.post("/auth/token", auth=(body["username"], body["password"]))).json()
    jwks_url = f"{gateway_url}/auth/.well-known/jwks.json"

    code, out = await _verify_elsewhere(jwks_url, token["access_token"])
    assert (code, out) == (0, f"{user_id} user")

    tampered = token["access_token"][:-4] + (
        "AAAA" if not token["access_token"].endswith("AAAA") else "BBBB"
    )
    code, out = await _verify_elsewhere(jwks_url, tampered)
    assert code == 1
    assert out.startswith("refused")
