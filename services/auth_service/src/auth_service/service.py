"""The auth service layer: each public method is one use case, each of its writes in one unit
of work (which owns the commit; `user.registered` goes to the event log inside it). No SQL
and no HTTP here: refusals are shared.failures kinds."""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from auth_service.passwords import PasswordHasher
from auth_service.records import RefreshToken, Taken
from auth_service.refresh_rules import Verdict, judge
from auth_service.schemas import NewUser, ServiceToken, TokenPair, UserOut
from auth_service.tokens import AccessTokenIssuer, new_refresh_token, refresh_token_hash
from auth_service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from shared.events import Envelope, Role, UserRegistered
from shared.failures import Refused, Unauthenticated, found

log = logging.getLogger(__name__)

# A service's token subject is a name-based UUID, stable for a client id.
SERVICE_NAMESPACE = uuid.UUID("5b0e7f0c-5d52-4f0e-9a53-0c3c1c0a7e11")

_REFRESH_MESSAGES = {
    Verdict.REUSED: "This refresh token was used before; its session is now revoked",
    Verdict.REVOKED: "This refresh token has been revoked",
    Verdict.EXPIRED: "This refresh token has expired",
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AuthService:
    """`clock` gives the time users are created at and refresh tokens are stamped and judged
    by (access tokens carry the issuer's own)."""

    unit_of_work: UnitOfWorkFactory
    hasher: PasswordHasher
    access_tokens: AccessTokenIssuer
    refresh_ttl: timedelta
    service_clients: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = _now

    async def register(self, new: NewUser) -> UserOut:
        return await self._add(new, await self.hasher.hash(new.password), Role.USER)

    async def login(self, identifier: str, password: str) -> TokenPair:
        """`identifier` is a username or an email, either without regard to case."""
        async with self.unit_of_work() as work:
            account = await work.users.find(identifier)
        # No unit of work is held while the password is checked: a hash takes a while.
        if not await self.hasher.verify(account.password_hash if account else None, password):
            # The name tried is logged only when it is a user's: one that is nobody's may be a
            # password typed into the wrong field.
            if account is None:
                log.info("login failed: no such user", extra={"event": "login.failed"})
            else:
                log.info(
                    "login failed for %s (%s): wrong password",
                    account.username,
                    account.id,
                    extra={"event": "login.failed", "user_id": str(account.id)},
                )
            raise Unauthenticated("Wrong username or password", reason="invalid_grant")
        assert account is not None
        # A hash made with weaker parameters than today's is replaced while the password is
        # at hand.
        rehashed = None
        if self.hasher.needs_rehash(account.password_hash):
            rehashed = await self.hasher.hash(password)
        async with self.unit_of_work() as work:
            if rehashed is not None:
                await work.users.set_password(account.id, rehashed)
            return await self._issue(
                work, account.id, account.role, family_id=uuid.uuid4(), username=account.username
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
        now = self.clock()
        async with self.unit_of_work() as work:
            held = await work.refresh_tokens.get(refresh_token_hash(token), lock=True)
            if held is None:
                raise Unauthenticated("Unknown refresh token", reason="invalid_grant")
            verdict = judge(held.token.state, now)
            if verdict is Verdict.ROTATE:
                await work.refresh_tokens.mark_used(held.token.id, now)
                return await self._issue(
                    work,
                    held.token.user_id,
                    held.role,
                    family_id=held.token.family_id,
                    username=held.username,
                )
            if verdict is Verdict.REUSED:
                await work.refresh_tokens.revoke_family(held.token.family_id, now)
        # Committed above: a reuse revokes the family even though the caller gets a 401.
        raise Unauthenticated(_REFRESH_MESSAGES[verdict], reason="invalid_grant")

    async def logout(self, token: str) -> None:
        """Revoke the token's whole family (RFC 7009: an unknown token is not an error)."""
        async with self.unit_of_work() as work:
            family = await work.refresh_tokens.family_of(refresh_token_hash(token))
            if family is not None:
                await work.refresh_tokens.revoke_family(family, self.clock())

    async def user(self, user_id: uuid.UUID) -> UserOut:
        async with self.unit_of_work() as work:
            return found(await work.users.get(user_id), "No such user")

    async def make_admin(self, new: NewUser) -> tuple[UserOut, bool]:
        """Create an admin, or promote the user of that name and set their password to the
        one given (their email stays theirs). True if one was created."""
        password_hash = await self.hasher.hash(new.password)
        try:
            return await self._add(new, password_hash, Role.ADMIN), True
        except Refused:
            async with self.unit_of_work() as work:
                promoted = await work.users.promote(new.username, password_hash)
            if promoted is None:
                raise
            return promoted, False

    async def _add(self, new: NewUser, password_hash: str, role: Role) -> UserOut:
        user = UserOut(
            id=uuid.uuid4(),
            username=new.username,
            email=new.email.lower(),
            role=role,
            created_at=self.clock(),
        )
        try:
            async with self.unit_of_work() as work:
                await work.users.add(user, password_hash)
                await work.append_events([_registered(user)])
        except Taken as taken:
            raise Refused(f"That {taken.field} is taken", details={"field": taken.field}) from taken
        log.info(
            "user %s registered (%s, %s)",
            user.username,
            user.id,
            user.role.value,
            extra={"event": "user.registered", "user_id": str(user.id), "role": user.role.value},
        )
        return user

    async def _issue(
        self,
        work: UnitOfWork,
        user_id: uuid.UUID,
        role: Role,
        *,
        family_id: uuid.UUID,
        username: str | None = None,
    ) -> TokenPair:
        token = new_refresh_token()
        await work.refresh_tokens.add(
            RefreshToken(
                id=uuid.uuid4(),
                family_id=family_id,
                user_id=user_id,
                token_hash=refresh_token_hash(token),
                expires_at=self.clock() + self.refresh_ttl,
            )
        )
        return TokenPair(
            access_token=self.access_tokens.issue(user_id, role, username=username),
            refresh_token=token,
            expires_in=int(self.access_tokens.ttl.total_seconds()),
        )


def _registered(user: UserOut) -> Envelope[UserRegistered]:
    payload = UserRegistered(id=user.id, username=user.username, email=user.email, role=user.role)
    return Envelope.wrap(payload, aggregate_id=user.id, version=1, occurred_at=user.created_at)
