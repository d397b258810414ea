"""The unit of work: one transaction, the users and refresh tokens read and written in it, and
the service's events appended to the log inside it. The service layer knows only these
protocols; `postgres` gives the real one, tests/support/fake_auth.py one in memory.

Leaving the `async with` normally commits; an exception rolls everything back.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth_service.models import event_log
from auth_service.records import Account, HeldToken, RefreshToken
from auth_service.repository import PostgresRefreshTokens, PostgresUsers
from auth_service.schemas import UserOut
from shared.event_log import append_events
from shared.events import Envelope


class UserRepository(Protocol):
    async def add(self, user: UserOut, password_hash: str) -> None:
        """Raises `Taken` (naming the username first) if the username or the email is
        another user's, without regard to case."""

    async def get(self, user_id: uuid.UUID) -> UserOut | None: ...

    async def find(self, identifier: str) -> Account | None:
        """The user whose username or email is `identifier`, without regard to case."""

    async def set_password(self, user_id: uuid.UUID, password_hash: str) -> None: ...

    async def promote(self, username: str, password_hash: str) -> UserOut | None:
        """Make the user of that name (without regard to case) an admin with that password;
        None if there is none."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: bytes, *, lock: bool = False) -> HeldToken | None:
        """`lock`: until the unit of work ends, no one else rotates or revokes it."""

    async def family_of(self, token_hash: bytes) -> uuid.UUID | None: ...

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> None: ...

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        """Revoke every token of the family not revoked yet (their first revocation stays)."""


class UnitOfWork(Protocol):
    @property
    def users(self) -> UserRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    async def append_events(self, envelopes: Sequence[Envelope[Any]]) -> None:
        """Append to the event log, in this unit of work; last, after its other writes."""


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass(frozen=True)
class PostgresUnitOfWork:
    conn: AsyncConnection
    users: PostgresUsers
    refresh_tokens: PostgresRefreshTokens

    async def append_events(self, envelopes: Sequence[Envelope[Any]]) -> None:
        await append_events(self.conn, event_log, list(envelopes))


def postgres(engine: AsyncEngine) -> UnitOfWorkFactory:
    """Each unit of work is one transaction on a pooled connection of `engine`."""

    @contextlib.asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        async with engine.begin() as conn:
            yield PostgresUnitOfWork(conn, PostgresUsers(conn), PostgresRefreshTokens(conn))

    return begin
