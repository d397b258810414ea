"""/auth/me, the JWKS, and every kind of bad token: each a 401 with WWW-Authenticate."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys import SigningKey, load_signing_key
from auth_service.settings import AuthSettings
from auth_service.tokens import AccessTokenIssuer
from shared.events import Role
from tests.support.forged import hs256, unsigned


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def key(auth_settings: AuthSettings) -> SigningKey:
    return load_signing_key("", auth_settings.auth_jwt_key_file)


def _claims(user_id: str, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims = {
        "iss": "orders-platform-auth",
        "aud": "orders-platform",
        "sub": user_id,
        "role": "user",
        "typ": "access",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return {**claims, **overrides}


async def test_me_answers_who_the_token_belongs_to(
    client: httpx.AsyncClient, registered: dict[str, str], tokens: dict[str, str]
) -> None:
    response = await client.get("/auth/me", headers=_bearer(tokens["access_token"]))
    assert response.status_code == 200
    me = response.json()
    assert me["id"] == registered["id"]
    assert me["username"] == registered["username"]
    assert me["role"] == "user"


async def test_the_access_token_carries_the_claims_other_services_need(
    client: httpx.AsyncClient, registered: dict[str, str], tokens: dict[str, str], key: SigningKey
) -> None:
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] == key.kid
    claims = jwt.decode(
        tokens["access_token"],
        key.private_key.public_key(),
        algorithms=["EdDSA"],
        audience="orders-platform",
    )
    assert claims["sub"] == registered["id"]
    assert claims["role"] == "user"
    assert {"exp", "iat", "jti", "iss"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 900


async def test_the_jwks_publishes_the_public_key_only(
    client: httpx.AsyncClient, key: SigningKey
) -> None:
    response = await client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    [published] = response.json()["keys"]
    assert published["kid"] == key.kid
    assert published["kty"] == "OKP" and published["crv"] == "Ed25519"
    assert "d" not in published


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthorized"


async def test_an_expired_token_is_401(
    client: httpx.AsyncClient, registered: dict[str, str], key: SigningKey
) -> None:
    issuer = AccessTokenIssuer(
        key, issuer="orders-platform-auth", audience="orders-platform", ttl=timedelta(minutes=15)
    )
    token = issuer.issue(
        uuid.UUID(registered["id"]), Role.USER, now=datetime.now(UTC) - timedelta(hours=1)
    )
    response = await client.get("/auth/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The token has expired"


async def test_forged_and_garbled_tokens_are_401(
    client: httpx.AsyncClient, registered: dict[str, str], key: SigningKey
) -> None:
    claims = _claims(registered["id"], role="admin")
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = Ed25519PrivateKey.generate()
    attempts = {
        "garbled": "not.a.token",
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims),
        "HS256 with the public key": hs256({"kid": key.kid, "typ": "JWT"}, claims, public_pem),
        "another key under our kid": jwt.encode(
            claims, other_key, algorithm="EdDSA", headers={"kid": key.kid}
        ),
        "an unknown kid": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": "nope"}),
        "another audience": jwt.encode(
            _claims(registered["id"], aud="someone-else"),
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        ),
        "not an access token": jwt.encode(
            _claims(registered["id"], typ="refresh"),
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        ),
    }
    for name, token in attempts.items():
        response = await client.get("/auth/me", headers=_bearer(token))
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert response.json()["error"]["code"] == "unauthorized", name
