"""The JWKS cache: fetched once, refetched for an unknown kid, at most once per interval."""

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys import SigningKey, _thumbprint
from shared.failures import DependencyUnavailable
from shared.security import JwksKeys


def _key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(kid=_thumbprint(private), private_key=private)


class FakeAuthService:
    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.calls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, json={"keys": [k.public_jwk for k in self.keys]})


async def test_keys_are_cached_and_refetched_on_rotation() -> None:
    old, new = _key(), _key()
    auth = FakeAuthService(old)
    async with httpx.AsyncClient(transport=httpx.MockTransport(auth.handler)) as client:
        keys = JwksKeys("http://auth/jwks", client, min_refetch=0)
        assert (await keys.key(old.kid)) is not None
        assert (await keys.key(old.kid)) is not None
        assert auth.calls == 1
        auth.keys.append(new)  # the auth service rotates its key
        assert (await keys.key(new.kid)) is not None
        assert auth.calls == 2


async def test_unknown_kids_cannot_make_it_hammer_the_auth_service() -> None:
    auth = FakeAuthService(_key())
    async with httpx.AsyncClient(transport=httpx.MockTransport(auth.handler)) as client:
        keys = JwksKeys("http://auth/jwks", client, min_refetch=60)
        for n in range(20):
            assert await keys.key(f"garbage-{n}") is None
        assert auth.calls == 1


async def test_no_keys_at_all_is_a_dependency_fault() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        with pytest.raises(DependencyUnavailable):
            await JwksKeys("http://auth/jwks", client).key("any")
