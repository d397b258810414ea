"""order_query's settings (each field reads the environment variable of its own name)."""

from __future__ import annotations

from pydantic import SecretStr

from shared.settings import ServiceSettings


class OrderQuerySettings(ServiceSettings):
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    order_query_host: str = "127.0.0.1"
    order_query_port: int = 8003
    # Where gaps are repaired from (and the order events' log is read), where the users' log
    # is read, and how this service proves itself there.
    order_command_url: str = "http://127.0.0.1:8009/order_command"
    auth_url: str = "http://127.0.0.1:8009/auth"
    auth_token_url: str = "http://127.0.0.1:8009/auth/internal/token"  # noqa: S105 (a URL)
    order_query_client_id: str = "order_query"
    order_query_client_secret: SecretStr = SecretStr("local-order-query-secret")
