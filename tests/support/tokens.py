"""Access tokens from a test key, for services under test that verify with `StaticKeys`."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys import SigningKey, _thumbprint
from auth_service.tokens import AccessTokenIssuer
from shared.events import Role
from shared.security import StaticKeys

_private = Ed25519PrivateKey.generate()
TEST_KEY = SigningKey(kid=_thumbprint(_private), private_key=_private)
TEST_KEYS = StaticKeys(TEST_KEY.jwks)
_issuer = AccessTokenIssuer(
    TEST_KEY, issuer="orders-platform-auth", audience="orders-platform", ttl=timedelta(hours=1)
)


def bearer(user_id: uuid.UUID, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {_issuer.issue(user_id, role)}"}


class Caller:
    """Someone calling the API: a user id (a fresh one unless given) and the header that
    proves it."""

    def __init__(self, role: Role = Role.USER, user_id: uuid.UUID | None = None) -> None:
        self.id = user_id or uuid.uuid4()
        self.role = role
        self.headers = bearer(self.id, role)
