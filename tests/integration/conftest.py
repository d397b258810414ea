"""What the integration tests of several services share: order_command's app and the auth
service's, in process, each on its session database with its relay beside it. There is one
order_command app per session, so that no second one competes with it for its command queue
(the status worker's tests have their own, in a vhost of their own); the auth app's log holds
the users order_query's rebuild replays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from deploy.stack.databases import fresh_database
from fastapi import FastAPI

from auth_service.cli import MIGRATIONS as AUTH_MIGRATIONS
from auth_service.main import create_app as create_auth_app
from auth_service.settings import AuthSettings
from order_command.cli import MIGRATIONS
from order_command.main import create_app
from order_command.settings import OrderCommandSettings
from shared.events import Role
from tests.support.relaying import relayed
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
    settings = make_settings(servers, orders_db_url)
    app = create_app(settings, keys=TEST_KEYS)
    async with relayed(app, settings, settings.orders_database_url):
        yield app


@pytest.fixture(scope="session")
def auth_db_url(servers: Servers) -> str:
    """A fresh `auth_it` database, migrated by the service's own Alembic history."""
    return fresh_database(servers.database("auth_it"), AUTH_MIGRATIONS)


@pytest.fixture(scope="session")
def auth_settings(
    servers: Servers, auth_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AuthSettings:
    return make_auth_settings(servers, auth_db_url, tmp_path_factory.mktemp("keys") / "auth.pem")


def make_auth_settings(servers: Servers, database_url: str, key_file: Path) -> AuthSettings:
    return AuthSettings(
        environment="test",
        auth_database_url=database_url,
        rabbitmq_url=servers.rabbitmq,
        auth_jwt_key_file=key_file,
    )


@pytest.fixture(scope="session")
async def auth_app(auth_settings: AuthSettings) -> AsyncIterator[FastAPI]:
    app = create_auth_app(auth_settings)
    async with relayed(app, auth_settings, auth_settings.auth_database_url):
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
