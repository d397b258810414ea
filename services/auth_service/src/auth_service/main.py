"""The composition root: builds every part of the auth service from its settings."""

from fastapi import FastAPI

from auth_service import api, unit_of_work
from auth_service.keys import load_signing_key
from auth_service.passwords import PasswordHasher
from auth_service.service import AuthService
from auth_service.settings import AuthSettings
from auth_service.tokens import AccessTokenIssuer
from shared.event_log.serving import serve_event_log
from shared.events import UserRegistered
from shared.runtime import Started, service_app, token_verifier
from shared.security import StaticKeys


def create_app(s: AuthSettings | None = None) -> FastAPI:
    s = s or AuthSettings()

    async def build(started: Started) -> None:
        engine = serve_event_log(started, s, s.auth_database_url)
        key = load_signing_key(s.auth_jwt_private_key.get_secret_value(), s.auth_jwt_key_file)
        hasher = PasswordHasher(**s.argon2_parameters())
        started.closing.callback(hasher.close)
        issuer = AccessTokenIssuer(key, s.jwt_issuer, s.jwt_audience, s.access_ttl)
        started.state.jwks = key.jwks
        started.state.verifier = token_verifier(s, started.http, StaticKeys(key.jwks))
        work = unit_of_work.postgres(engine)
        started.state.auth = AuthService(work, hasher, issuer, s.refresh_ttl, s.service_clients())

    return service_app(
        s,
        name="auth_service",
        description="Users, password hashes, and JWT access/refresh tokens (EdDSA, with JWKS).",
        build=build,
        event_log=True,
        routers=[api.router, api.internal],
        publishes=[UserRegistered],
    )
