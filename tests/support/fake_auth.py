"""auth_service's unit of work in memory: the service layer's rules tested without Postgres.

It keeps what the real one guarantees and a test can see: a unit of work commits on a clean
exit and leaves nothing on an exception; usernames and emails are each unique without regard
to case (models.py's indexes on lower(...)), the username checked first, as Postgres checks
its indexes in the order they were made; a refresh token's hash is unique and its user must
exist; the event log's `(aggregate_id, version)` is unique.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from auth_service.passwords import PasswordHasher
from auth_service.records import Account, HeldToken, RefreshToken, Taken
from auth_service.schemas import UserOut
from auth_service.service import AuthService
from auth_service.tokens import AccessTokenIssuer
from auth_service.unit_of_work import UnitOfWork
from shared.events import Envelope, Role
from tests.support.tokens import TEST_KEY

ISSUER, AUDIENCE = "orders-platform-auth", "orders-platform"
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=14)


class ConstraintViolation(Exception):
    """What Postgres raises for a row a constraint refuses, other than a taken name."""


@dataclass
class StoredUser:
    user: UserOut
    password_hash: str


@dataclass
class Stored:
    users: dict[uuid.UUID, StoredUser] = field(default_factory=dict)
    tokens: dict[uuid.UUID, RefreshToken] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)  # in the order appended


class MemoryUsers:
    def __init__(self, stored: Stored) -> None:
        self.stored = stored

    async def add(self, user: UserOut, password_hash: str) -> None:
        if user.id in self.stored.users:
            raise ConstraintViolation(f"user {user.id} exists")
        others = [s.user for s in self.stored.users.values()]
        if any(o.username.lower() == user.username.lower() for o in others):
            raise Taken("username")
        if any(o.email.lower() == user.email.lower() for o in others):
            raise Taken("email")
        self.stored.users[user.id] = StoredUser(user, password_hash)

    async def get(self, user_id: uuid.UUID) -> UserOut | None:
        stored = self.stored.users.get(user_id)
        return stored.user if stored else None

    async def find(self, identifier: str) -> Account | None:
        wanted = identifier.lower()
        for s in self.stored.users.values():
            if wanted in (s.user.username.lower(), s.user.email.lower()):
                return Account(s.user.id, s.user.username, s.user.role, s.password_hash)
        return None

    async def set_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        if (stored := self.stored.users.get(user_id)) is not None:
            stored.password_hash = password_hash

    async def promote(self, username: str, password_hash: str) -> UserOut | None:
        for s in self.stored.users.values():
            if s.user.username.lower() == username.lower():
                s.user = s.user.model_copy(update={"role": Role.ADMIN})
                s.password_hash = password_hash
                return s.user
        return None


class MemoryRefreshTokens:
    def __init__(self, stored: Stored) -> None:
        self.stored = stored

    async def add(self, token: RefreshToken) -> None:
        if token.user_id not in self.stored.users:
            raise ConstraintViolation(f"no user {token.user_id}")
        if token.id in self.stored.tokens or self._by_hash(token.token_hash) is not None:
            raise ConstraintViolation("refresh token exists")
        self.stored.tokens[token.id] = token

    async def get(self, token_hash: bytes, *, lock: bool = False) -> HeldToken | None:
        token = self._by_hash(token_hash)
        if token is None:
            return None
        holder = self.stored.users[token.user_id].user
        return HeldToken(token, holder.username, holder.role)

    async def family_of(self, token_hash: bytes) -> uuid.UUID | None:
        token = self._by_hash(token_hash)
        return token.family_id if token else None

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> None:
        if (token := self.stored.tokens.get(token_id)) is not None:
            self.stored.tokens[token_id] = replace(token, used_at=at)

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        for token in list(self.stored.tokens.values()):
            if token.family_id == family_id and token.revoked_at is None:
                self.stored.tokens[token.id] = replace(token, revoked_at=at)

    def _by_hash(self, token_hash: bytes) -> RefreshToken | None:
        return next((t for t in self.stored.tokens.values() if t.token_hash == token_hash), None)


@dataclass(frozen=True)
class MemoryWork:
    stored: Stored
    users: MemoryUsers
    refresh_tokens: MemoryRefreshTokens

    async def append_events(self, envelopes: Sequence[Envelope[Any]]) -> None:
        logged = {(e.aggregate_id, e.version) for e in self.stored.events}
        for envelope in envelopes:
            if (envelope.aggregate_id, envelope.version) in logged:
                raise ConstraintViolation(f"{envelope.aggregate_id} v{envelope.version} logged")
            logged.add((envelope.aggregate_id, envelope.version))
            self.stored.events.append(envelope)


@dataclass
class MemoryUnitOfWork:
    """Call it as the service calls its factory; `stored` is what has been committed."""

    stored: Stored = field(default_factory=Stored)
    commits: int = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        working = copy.deepcopy(self.stored)
        yield MemoryWork(working, MemoryUsers(working), MemoryRefreshTokens(working))
        self.stored = working  # reached only without an exception: the commit
        self.commits += 1

    def user_named(self, username: str) -> StoredUser:
        [stored] = [s for s in self.stored.users.values() if s.user.username == username]
        return stored

    def family(self, family_id: uuid.UUID) -> list[RefreshToken]:
        return [t for t in self.stored.tokens.values() if t.family_id == family_id]


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    """argon2id at its least memory (8 KiB): a unit test hashes in microseconds. Close it."""
    return PasswordHasher(memory_kib=8, time_cost=time_cost, parallelism=1, threads=1)


def memory_service(
    hasher: PasswordHasher,
    work: MemoryUnitOfWork | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    service_clients: dict[str, str] | None = None,
) -> tuple[AuthService, MemoryUnitOfWork]:
    """auth_service's service layer over a unit of work in memory (`work`, to share one
    between services), as its composition root builds it over Postgres."""
    work = work or MemoryUnitOfWork()
    issuer = AccessTokenIssuer(TEST_KEY, ISSUER, AUDIENCE, ACCESS_TTL)
    clients = service_clients or {}
    return AuthService(work, hasher, issuer, REFRESH_TTL, clients, clock or Clock()), work
