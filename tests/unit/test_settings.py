from typing import Any

import pytest
from pydantic import ValidationError

from auth_service.settings import AuthSettings


def test_local_mode_runs_on_the_committed_defaults() -> None:
    settings = AuthSettings(environment="local")
    assert settings.auth_port == 8001
    assert "guest" in settings.rabbitmq_url.get_secret_value()


@pytest.mark.parametrize(
    "secrets",
    [
        {"rabbitmq_url": "amqp://guest:guest@rabbit:5672/"},
        {"auth_database_url": "postgresql+asyncpg://postgres:changeme@db/auth"},
        {"auth_jwt_private_key": ""},
    ],
)
def test_production_refuses_placeholder_secrets(secrets: dict[str, str]) -> None:
    good: dict[str, Any] = {
        "auth_service_clients": "order_query:Vq3-a-long-real-secret",
        "rabbitmq_url": "amqp://orders:x7Kq2@rabbit:5672/",
        "auth_database_url": "postgresql+asyncpg://auth:Zr81q@db/auth",
        "auth_jwt_private_key": "-----BEGIN PRIVATE KEY-----...",
    }
    with pytest.raises(ValidationError, match="placeholder secret"):
        AuthSettings(environment="production", **{**good, **secrets})


def test_production_starts_with_real_secrets() -> None:
    settings = AuthSettings(
        environment="production",
        rabbitmq_url="amqp://orders:x7Kq2@rabbit:5672/",
        auth_database_url="postgresql+asyncpg://auth:Zr81q@db/auth",
        auth_jwt_private_key="-----BEGIN PRIVATE KEY-----...",
        auth_service_clients="order_query:Vq3-a-long-real-secret",
    )
    assert settings.environment == "production"


def test_production_refuses_local_service_client_secrets() -> None:
    with pytest.raises(ValidationError, match="AUTH_SERVICE_CLIENTS"):
        AuthSettings(
            environment="production",
            rabbitmq_url="amqp://orders:x7Kq2@rabbit:5672/",
            auth_database_url="postgresql+asyncpg://auth:Zr81q@db/auth",
            auth_jwt_private_key="-----BEGIN PRIVATE KEY-----...",
            auth_service_clients="order_query:local-order-query-secret",
        )
