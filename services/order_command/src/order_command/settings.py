"""order_command's settings (each field reads the environment variable of its own name)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class OrderCommandSettings(ServiceSettings):
    orders_database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/orders"
    )
    order_command_host: str = "127.0.0.1"
    order_command_port: int = 8002
    # The event log relay's process (`order-command relay`): where its probes and /metrics are.
    order_command_relay_host: str = "127.0.0.1"
    order_command_relay_port: int = 8012
    # How long an Idempotency-Key replays its first answer.
    idempotency_key_ttl_seconds: int = 24 * 3600
    # The shop's currency (ISO 4217): every new order is priced in it.
    order_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    order_command_db_pool_size: int = 5

    @property
    def idempotency_key_ttl(self) -> timedelta:
        return timedelta(seconds=self.idempotency_key_ttl_seconds)
