"""order_command against real Postgres and RabbitMQ, driven in-process over ASGI, with
access tokens from a test key (the app itself is tests/integration/conftest.py's)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from shared.db import asyncpg_dsn
from tests.integration.conftest import make_settings as make_settings  # for test_faults
from tests.support.tokens import Caller


@pytest.fixture(scope="session")
async def client(command_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=command_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
        yield http


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
