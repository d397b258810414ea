"""The auth service's settings (each field reads the environment variable of its own name)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr, model_validator

from shared.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    auth_database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/auth")
    auth_host: str = "127.0.0.1"
    auth_port: int = 8001
    # The event log relay's process (`auth-service relay`): where its probes and /metrics are.
    auth_relay_host: str = "127.0.0.1"
    auth_relay_port: int = 8011
    # PEM of an Ed25519 key. Empty: generated once into the key file, and reused from there.
    auth_jwt_private_key: SecretStr = SecretStr("")
    auth_jwt_key_file: Path = Path(".run/keys/auth_ed25519.pem")
    auth_access_token_ttl_seconds: int = 900
    auth_refresh_token_ttl_seconds: int = 14 * 24 * 3600
    auth_hash_threads: int = 2
    # argon2id cost: OWASP's first recommended set (19 MiB, 2 passes, 1 lane); see bench/.
    auth_argon2_memory_kib: int = 19 * 1024
    auth_argon2_time_cost: int = 2
    auth_argon2_parallelism: int = 1
    # The platform's own services, as `name:secret` pairs separated by commas: they get
    # service tokens (role `service`, for /internal/ calls) by the client-credentials grant.
    auth_service_clients: SecretStr = SecretStr("order_query:local-order-query-secret")

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.auth_access_token_ttl_seconds)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.auth_refresh_token_ttl_seconds)

    def argon2_parameters(self) -> dict[str, int]:
        """PasswordHasher's keyword arguments."""
        return {
            "memory_kib": self.auth_argon2_memory_kib,
            "time_cost": self.auth_argon2_time_cost,
            "parallelism": self.auth_argon2_parallelism,
            "threads": self.auth_hash_threads,
        }

    def service_clients(self) -> dict[str, str]:
        pairs = (p.strip() for p in self.auth_service_clients.get_secret_value().split(","))
        return dict(pair.split(":", 1) for pair in pairs if ":" in pair)

    @model_validator(mode="after")
    def _refuse_local_client_secrets(self) -> AuthSettings:
        if self.environment == "production" and any(
            secret.startswith("local-") or len(secret) < 16
            for secret in self.service_clients().values()
        ):
            raise ValueError("AUTH_SERVICE_CLIENTS holds a placeholder secret in production")
        return self
