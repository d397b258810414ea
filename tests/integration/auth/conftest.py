"""The auth service against real Postgres and RabbitMQ, driven in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from auth_service.cli import MIGRATIONS
from auth_service.main import create_app
from auth_service.settings import AuthSettings
from shared.db import asyncpg_dsn
from tests.support.databases import fresh_database
from tests.support.factories import user_body
from tests.support.servers import Servers


@pytest.fixture(scope="session")
def auth_db_url(servers: Servers) -> str:
    """A fresh `auth_it` database, migrated by the service's own Alembic history."""
    return fresh_database(servers.database("auth_it"), MIGRATIONS)


@pytest.fixture(scope="session")
def auth_settings(
    servers: Servers, auth_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AuthSettings:
    return make_settings(servers, auth_db_url, tmp_path_factory.mktemp("keys") / "auth.pem")


def make_settings(servers: Servers, database_url: str, key_file: Path) -> AuthSettings:
    return AuthSettings(
        environment="test",
        auth_database_url=database_url,
        rabbitmq_url=servers.rabbitmq,
        auth_jwt_key_file=key_file,
    )


@pytest.fixture(scope="session")
async def auth_app(auth_settings: AuthSettings) -> AsyncIterator[FastAPI]:
    app = create_app(auth_settings)
    async with LifespanManager(app):
        yield app


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
