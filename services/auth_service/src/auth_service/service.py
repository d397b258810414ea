"""The auth service layer: each public method is one use case and one transaction."""

from __future__ import annotations

import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth_service.models import event_log, refresh_tokens, users
from auth_service.passwords import PasswordHasher
from auth_service.refresh_rules import StoredRefreshToken, Verdict, judge
from auth_service.schemas import NewUser, ServiceToken, TokenPair, UserOut
from auth_service.tokens import AccessTokenIssuer, new_refresh_token, refresh_token_hash
from shared.event_log import append_events
from shared.events import Envelope, Role, UserRegistered
from shared.failures import NotFound, Refused, Unauthenticated

log = logging.getLogger(__name__)

# A service's token subject is a name-based UUID, stable for a client id.
SERVICE_NAMESPACE = uuid.UUID("5b0e7f0c-5d52-4f0e-9a53-0c3c1c0a7e11")

_REFRESH_MESSAGES = {
    Verdict.REUSED: "This refresh token was used before; its session is now revoked",
    Verdict.REVOKED: "This refresh token has been revoked",
    Verdict.EXPIRED: "This refresh token has expired",
}


@dataclass
class AuthService:
    engine: AsyncEngine
    hasher: PasswordHasher
    access_tokens: AccessTokenIssuer
    refresh_ttl: timedelta
    service_clients: dict[str, str] = field(default_factory=dict)

    async def register(self, new: NewUser, *, role: Role = Role.USER) -> UserOut:
        password_hash = await self.hasher.hash(new.password)
        user = UserOut(
            id=uuid.uuid4(),
            username=new.username,
            email=new.email.lower(),
            role=role,
            created_at=datetime.now(UTC),
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(users).values(**user.model_dump(), password_hash=password_hash)
                )
                await append_events(conn, event_log, [_registered(user)])
        except IntegrityError as exc:
            field = "username" if "users_username_key" in str(exc.orig) else "email"
            raise Refused(f"That {field} is taken", details={"field": field}) from exc
        log.info(
            "user %s registered (%s, %s)",
            user.username,
            user.id,
            user.role.value,
            extra={"event": "user.registered", "user_id": str(user.id), "role": user.role.value},
        )
        return user

    async def login(self, identifier: str, password: str) -> TokenPair:
        """`identifier` is a username or an email, either without regard to case."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.id, users.c.username, users.c.role, users.c.password_hash).where(
                        or_(
                            func.lower(users.c.username) == identifier.lower(),
                            func.lower(users.c.email) == identifier.lower(),
                        )
                    )
                )
            ).first()
        if not await self.hasher.verify(row.password_hash if row else None, password):
            # The name tried is logged only when it is a user's: one that is nobody's may be a
            # password typed into the wrong field.
            if row is None:
                log.info("login failed: no such user", extra={"event": "login.failed"})
            else:
                log.info(
                    "login failed for %s (%s): wrong password",
                    row.username,
                    row.id,
                    extra={"event": "login.failed", "user_id": str(row.id)},
                )
            raise Unauthenticated("Wrong username or password", reason="invalid_grant")
        assert row is not None
        if self.hasher.needs_rehash(row.password_hash):
            await self._rehash(row.id, password)
        async with self.engine.begin() as conn:
            return await self._issue(
                conn, row.id, Role(row.role), family_id=uuid.uuid4(), username=row.username
            )

    def service_token(self, client_id: str, client_secret: str) -> ServiceToken:
        """The client-credentials grant, for the platform's own services."""
        expected = self.service_clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected.encode(), client_secret.encode()):
            raise Unauthenticated("Unknown client or wrong secret", reason="invalid_client")
        service_id = uuid.uuid5(SERVICE_NAMESPACE, client_id)
        return ServiceToken(
            access_token=self.access_tokens.issue(service_id, Role.SERVICE),
            expires_in=int(self.access_tokens.ttl.total_seconds()),
        )

    async def refresh(self, token: str) -> TokenPair:
        """Rotate: the presented token is spent and its successor joins the same family."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            stored = await self._stored(conn, token)
            verdict = judge(
                StoredRefreshToken(stored.expires_at, stored.used_at, stored.revoked_at), now
            )
            if verdict is Verdict.ROTATE:
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.id == stored.id)
                    .values(used_at=now)
                )
                return await self._issue(
                    conn,
                    stored.user_id,
                    Role(stored.role),
                    family_id=stored.family_id,
                    username=stored.username,
                )
            if verdict is Verdict.REUSED:
                await self._revoke_family(conn, stored.family_id, now)
        # Committed above: a reuse revokes the family even though the caller gets a 401.
        raise Unauthenticated(_REFRESH_MESSAGES[verdict], reason="invalid_grant")

    async def logout(self, token: str) -> None:
        """Revoke the token's whole family (RFC 7009: an unknown token is not an error)."""
        async with self.engine.begin() as conn:
            family = (
                await conn.execute(
                    select(refresh_tokens.c.family_id).where(
                        refresh_tokens.c.token_hash == refresh_token_hash(token)
                    )
                )
            ).scalar_one_or_none()
            if family is not None:
                await self._revoke_family(conn, family, datetime.now(UTC))

    async def user(self, user_id: uuid.UUID) -> UserOut:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        users.c.id,
                        users.c.username,
                        users.c.email,
                        users.c.role,
                        users.c.created_at,
                    ).where(users.c.id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound("No such user")
        return UserOut.model_validate(row._asdict())

    async def make_admin(self, new: NewUser) -> tuple[UserOut, bool]:
        """Create an admin, or promote the user of that name and set their password to the
        one given (their email stays theirs). True if one was created."""
        try:
            return await self.register(new, role=Role.ADMIN), True
        except Refused:
            password_hash = await self.hasher.hash(new.password)
            async with self.engine.begin() as conn:
                user_id = (
                    await conn.execute(
                        update(users)
                        .where(func.lower(users.c.username) == new.username.lower())
                        .values(role=Role.ADMIN.value, password_hash=password_hash)
                        .returning(users.c.id)
                    )
                ).scalar_one_or_none()
            if user_id is None:
                raise
            return await self.user(user_id), False

    async def _issue(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        role: Role,
        *,
        family_id: uuid.UUID,
        username: str | None = None,
    ) -> TokenPair:
        token = new_refresh_token()
        await conn.execute(
            insert(refresh_tokens).values(
                id=uuid.uuid4(),
                family_id=family_id,
                user_id=user_id,
                token_hash=refresh_token_hash(token),
                expires_at=datetime.now(UTC) + self.refresh_ttl,
            )
        )
        return TokenPair(
            access_token=self.access_tokens.issue(user_id, role, username=username),
            refresh_token=token,
            expires_in=int(self.access_tokens.ttl.total_seconds()),
        )

    async def _stored(self, conn: AsyncConnection, token: str) -> Any:
        stored = (
            await conn.execute(
                select(refresh_tokens, users.c.role, users.c.username)
                .join(users, users.c.id == refresh_tokens.c.user_id)
                .where(refresh_tokens.c.token_hash == refresh_token_hash(token))
                .with_for_update(of=refresh_tokens)
            )
        ).first()
        if stored is None:
            raise Unauthenticated("Unknown refresh token", reason="invalid_grant")
        return stored

    async def _revoke_family(self, conn: AsyncConnection, family: uuid.UUID, now: datetime) -> None:
        await conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def _rehash(self, user_id: uuid.UUID, password: str) -> None:
        new_hash = await self.hasher.hash(password)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(users).where(users.c.id == user_id).values(password_hash=new_hash)
            )


def _registered(user: UserOut) -> Envelope[UserRegistered]:
    payload = UserRegistered(id=user.id, username=user.username, email=user.email, role=user.role)
    return Envelope.wrap(payload, aggregate_id=user.id, version=1)
