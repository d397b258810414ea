"""What the auth service layer and its repositories hand each other: a user as login sees
them, refresh tokens as stored, and `Taken`, a unique name or email already another's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from auth_service.refresh_rules import StoredRefreshToken
from shared.events import Role

UniqueField = Literal["username", "email"]


class Taken(Exception):
    """The username or email (each unique without regard to case) is another user's. Raised
    by the users repository; the unit of work it is raised in writes nothing."""

    def __init__(self, field: UniqueField) -> None:
        super().__init__(f"{field} taken")
        self.field: UniqueField = field


@dataclass(frozen=True)
class Account:
    """A user as a login needs them: who, and the hash the password is checked against."""

    id: uuid.UUID
    username: str
    role: Role
    password_hash: str


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token as stored: only its hash, in the family of the login it descends from."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: bytes
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def state(self) -> StoredRefreshToken:
        """What refresh_rules.judge decides on."""
        return StoredRefreshToken(self.expires_at, self.used_at, self.revoked_at)


@dataclass(frozen=True)
class HeldToken:
    """A refresh token and its holder's name and role (its successor's access token carries
    them)."""

    token: RefreshToken
    username: str
    role: Role
