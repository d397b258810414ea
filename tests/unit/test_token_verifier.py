"""The verifier every service uses, against keys known in advance: no I/O."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys import SigningKey, _thumbprint
from auth_service.tokens import AccessTokenIssuer
from shared.events import Role
from shared.failures import Unauthenticated
from shared.security import StaticKeys, TokenVerifier
from tests.support.forged import unsigned


def _key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(kid=_thumbprint(private), private_key=private)


KEY = _key()
ISSUER = AccessTokenIssuer(KEY, issuer="iss", audience="aud", ttl=timedelta(minutes=5))
VERIFIER = TokenVerifier(StaticKeys(KEY.jwks), issuer="iss", audience="aud")


async def test_a_good_token_gives_the_principal() -> None:
    user = uuid.uuid4()
    principal = await VERIFIER.verify(ISSUER.issue(user, Role.ADMIN))
    assert principal.user_id == user
    assert principal.is_admin


async def test_an_expired_token_is_refused() -> None:
    token = ISSUER.issue(uuid.uuid4(), Role.USER, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="expired"):
        await VERIFIER.verify(token)


async def test_a_token_from_another_issuer_is_refused() -> None:
    other = AccessTokenIssuer(KEY, issuer="evil", audience="aud", ttl=timedelta(minutes=5))
    with pytest.raises(Unauthenticated):
        await VERIFIER.verify(other.issue(uuid.uuid4(), Role.USER))


async def test_alg_none_is_refused() -> None:
    token = unsigned({"alg": "none", "kid": KEY.kid}, {"sub": str(uuid.uuid4())})
    with pytest.raises(Unauthenticated, match="algorithm"):
        await VERIFIER.verify(token)


async def test_a_rotated_away_key_is_unknown() -> None:
    stranger = AccessTokenIssuer(_key(), issuer="iss", audience="aud", ttl=timedelta(minutes=5))
    with pytest.raises(Unauthenticated, match="unknown key"):
        await VERIFIER.verify(stranger.issue(uuid.uuid4(), Role.USER))


def test_the_key_id_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K

    private = K.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert _thumbprint(private) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_a_remembered_token_still_expires() -> None:
    verifier = TokenVerifier(StaticKeys(KEY.jwks), issuer="iss", audience="aud")
    token = ISSUER.issue(uuid.uuid4(), Role.USER, now=datetime.now(UTC) - timedelta(minutes=4))
    assert await verifier.verify(token) == await verifier.verify(token)
    short = AccessTokenIssuer(KEY, issuer="iss", audience="aud", ttl=timedelta(seconds=0))
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(short.issue(uuid.uuid4(), Role.USER))


async def test_a_refused_token_is_never_remembered() -> None:
    verifier = TokenVerifier(StaticKeys(KEY.jwks), issuer="iss", audience="aud")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify("not.a.token")
    assert verifier._verified == {}
