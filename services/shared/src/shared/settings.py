"""The settings base: the environment first, then the committed `.env` with local defaults."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "nobody set this yet". Production refuses to start with one of them.
PLACEHOLDERS = frozenset({"", "changeme", "change-me", "changethis", "secret", "guest", "dev"})


class ServiceSettings(BaseSettings):
    """Fields every service shares. Each field reads the environment variable of its own name."""

    model_config = SettingsConfigDict(
        env_file=os.environ.get("ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["local", "test", "production"] = "local"
    log_level: str = "INFO"
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    jwt_issuer: str = "orders-platform-auth"
    jwt_audience: str = "orders-platform"
    jwks_url: str = "http://127.0.0.1:8009/auth/auth/.well-known/jwks.json"
    # Where a dependency that does not answer stops being waited for (seconds).
    dependency_timeout: float = 1.5

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        for name, value in self:
            if isinstance(value, SecretStr) and _is_placeholder(value.get_secret_value()):
                raise ValueError(f"{name.upper()} holds a placeholder secret in production")
        return self


def _is_placeholder(secret: str) -> bool:
    """True for a placeholder, and for a URL whose password is one (amqp://guest:guest@...)."""
    if secret.lower() in PLACEHOLDERS:
        return True
    if "://" in secret and "@" in secret:
        credentials = secret.split("://", 1)[1].rsplit("@", 1)[0]
        password = credentials.split(":", 1)[1] if ":" in credentials else ""
        return password.lower() in PLACEHOLDERS
    return False
