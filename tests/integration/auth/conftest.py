"""The auth service against real Postgres and RabbitMQ, driven in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from shared.db import asyncpg_dsn
from tests.support.factories import user_body


@pytest.fixture(scope="session")
async def client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
        yield http


@pytest.fixture
async def registered(client: httpx.AsyncClient) -> dict[str, str]:
    """A user who has signed up: the body they signed up with, plus their id."""
    body = user_body()
    response = await client.post("/auth/create_user", json=body)
    assert response.status_code == 201, response.text
    return {**body, "id": response.json()["id"]}


@pytest.fixture
async def tokens(client: httpx.AsyncClient, registered: dict[str, str]) -> dict[str, str]:
    response = await client.post(
        "/auth/token", data={"username": registered["username"], "password": registered["password"]}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


@pytest.fixture
async def count_users(auth_db_url: str) -> AsyncIterator[object]:
    conn = await asyncpg.connect(asyncpg_dsn(auth_db_url))

    async def count() -> int:
        value: int = await conn.fetchval("select count(*) from users")
        return value

    yield count
    await conn.close()
