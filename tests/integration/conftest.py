"""What the integration tests of several services share: order_command's app, in process, on
its session database. There is one such app per session, so that no second order_command
competes with it for its command queue (the status worker's tests send it commands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from order_command.cli import MIGRATIONS
from order_command.main import create_app
from order_command.settings import OrderCommandSettings
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


# Callers of the API: each a fresh user id with a token from the test key.


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
