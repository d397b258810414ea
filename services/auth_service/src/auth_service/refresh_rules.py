"""What presenting a refresh token means: the rotation rule as a pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Verdict(Enum):
    ROTATE = "rotate"  # good: mark it used, hand out its successor
    REUSED = "reused"  # used before: someone replays it, so its whole family is revoked
    REVOKED = "revoked"  # its family was revoked (logout, or a reuse)
    EXPIRED = "expired"


@dataclass(frozen=True)
class StoredRefreshToken:
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


def judge(token: StoredRefreshToken, now: datetime) -> Verdict:
    if token.revoked_at is not None:
        return Verdict.REVOKED
    if token.used_at is not None:
        return Verdict.REUSED
    if token.expires_at <= now:
        return Verdict.EXPIRED
    return Verdict.ROTATE
