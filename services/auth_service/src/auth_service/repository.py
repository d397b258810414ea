"""Users and refresh tokens in and out of Postgres, on a unit of work's connection: every call
runs in its transaction."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from auth_service.models import refresh_tokens, users
from auth_service.records import Account, HeldToken, RefreshToken, Taken
from auth_service.schemas import UserOut
from shared.events import Role

_USER_OUT = (users.c.id, users.c.username, users.c.email, users.c.role, users.c.created_at)


def _user_out(row: Any) -> UserOut:
    return UserOut.model_validate(row._asdict())


class PostgresUsers:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, user: UserOut, password_hash: str) -> None:
        """Raises `Taken` when a unique index on lower(username) or lower(email) refuses the
        row (the transaction is then aborted: the unit of work must end)."""
        try:
            await self.conn.execute(
                insert(users).values(**user.model_dump(), password_hash=password_hash)
            )
        except IntegrityError as exc:
            if "users_username_key" in str(exc.orig):
                raise Taken("username") from exc
            if "users_email_key" in str(exc.orig):
                raise Taken("email") from exc
            raise

    async def get(self, user_id: uuid.UUID) -> UserOut | None:
        row = (await self.conn.execute(select(*_USER_OUT).where(users.c.id == user_id))).first()
        return _user_out(row) if row else None

    async def find(self, identifier: str) -> Account | None:
        row = (
            await self.conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.password_hash).where(
                    or_(
                        func.lower(users.c.username) == identifier.lower(),
                        func.lower(users.c.email) == identifier.lower(),
                    )
                )
            )
        ).first()
        if row is None:
            return None
        return Account(row.id, row.username, Role(row.role), row.password_hash)

    async def set_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def promote(self, username: str, password_hash: str) -> UserOut | None:
        row = (
            await self.conn.execute(
                update(users)
                .where(func.lower(users.c.username) == username.lower())
                .values(role=Role.ADMIN.value, password_hash=password_hash)
                .returning(*_USER_OUT)
            )
        ).first()
        return _user_out(row) if row else None


# A RefreshToken's fields are columns of refresh_tokens, of the same names.
_TOKEN_COLUMNS = tuple(field.name for field in dataclasses.fields(RefreshToken))


class PostgresRefreshTokens:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, token: RefreshToken) -> None:
        await self.conn.execute(insert(refresh_tokens).values(**dataclasses.asdict(token)))

    async def get(self, token_hash: bytes, *, lock: bool = False) -> HeldToken | None:
        query = (
            select(refresh_tokens, users.c.username, users.c.role)
            .join(users, users.c.id == refresh_tokens.c.user_id)
            .where(refresh_tokens.c.token_hash == token_hash)
        )
        if lock:
            query = query.with_for_update(of=refresh_tokens)
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        token = RefreshToken(**{name: row._mapping[name] for name in _TOKEN_COLUMNS})
        return HeldToken(token, row.username, Role(row.role))

    async def family_of(self, token_hash: bytes) -> uuid.UUID | None:
        family: uuid.UUID | None = (
            await self.conn.execute(
                select(refresh_tokens.c.family_id).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).scalar_one_or_none()
        return family

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(
            update(refresh_tokens).where(refresh_tokens.c.id == token_id).values(used_at=at)
        )

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
