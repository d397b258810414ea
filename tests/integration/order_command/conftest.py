"""order_command against real Postgres and RabbitMQ, driven in-process over ASGI, with
access tokens from a test key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from order_command.cli import MIGRATIONS
from order_command.main import create_app
from order_command.settings import OrderCommandSettings
from shared.db import asyncpg_dsn
from shared.events import Role
from tests.support.databases import fresh_database
from tests.support.servers import Servers
from tests.support.tokens import TEST_KEYS, Caller


@pytest.fixture(scope="session")
def orders_db_url(servers: Servers) -> str:
    return fresh_database(servers.database("orders_it"), MIGRATIONS)


def make_settings(servers: Servers, database_url: str, **overrides: Any) -> OrderCommandSettings:
    values = {"rabbitmq_url": servers.rabbitmq, **overrides}
    return OrderCommandSettings(environment="test", orders_database_url=database_url, **values)


@pytest.fixture(scope="session")
async def command_app(servers: Servers, orders_db_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(servers, orders_db_url), keys=TEST_KEYS)
    async with LifespanManager(app):
        yield app


@pytest.fixture(scope="session")
async def client(command_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=command_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
        yield http


@pytest.fixture
def alice() -> Caller:
    return Caller()


@pytest.fixture
def bob() -> Caller:
    return Caller()


@pytest.fixture
def admin() -> Caller:
    return Caller(Role.ADMIN)


@pytest.fixture
def service() -> Caller:
    return Caller(Role.SERVICE)


def order_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "items": [
            {"name": "tea", "price": "2.50", "quantity": 2},
            {"name": "cake", "price": "3.99", "quantity": 1},
        ]
    }
    return {**body, **overrides}


@pytest.fixture
def create_order(
    client: httpx.AsyncClient, alice: Caller
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """POST /orders as `by` (alice by default); returns the created order."""

    async def create(by: Caller | None = None, **overrides: Any) -> dict[str, Any]:
        response = await client.post(
            "/orders", json=order_body(**overrides), headers=(by or alice).headers
        )
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    return create


@pytest.fixture
async def orders_db(orders_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(orders_db_url))
    yield conn
    await conn.close()
