"""Access tokens (short-lived EdDSA JWTs) and refresh tokens (random, kept only as a hash)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt

from auth_service.keys import SigningKey
from shared.events import Role


class AccessTokenIssuer:
    def __init__(self, key: SigningKey, issuer: str, audience: str, ttl: timedelta) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(
        self,
        user_id: uuid.UUID,
        role: Role,
        *,
        username: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """`username` goes in `preferred_username` (OpenID Connect's claim): the services name
        the caller by it where an answer shows names (seed004's `user`)."""
        now = now or datetime.now(UTC)
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "role": role.value,
            "typ": "access",
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        if username is not None:
            claims["preferred_username"] = username
        return jwt.encode(
            claims, self.key.private_key, algorithm="EdDSA", headers={"kid": self.key.kid}
        )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    """SHA-256 is enough here: the token is 256 random bits, not a guessable password."""
    return hashlib.sha256(token.encode()).digest()
