"""Idempotency keys: the same key and body get the first create's order back; another body
is refused.

A key remembers the order its first request created, not an answer: the replay is that
order as it was created (read from its log), shaped by the route like any answer. The key
is claimed in the create's own statement (repository.py), so the key, the order and its
event are written together or not at all. A second request with the key waits on the
first's row lock until that statement commits, then finds its order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncEngine

from order_command.models import idempotency_keys as keys
from shared.failures import Invalid


@dataclass(frozen=True)
class IdempotentRequest:
    user_id: uuid.UUID
    key: str
    body: bytes  # a canonical form of the request: equal bodies, equal bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()


class KeyReused(Invalid):
    """The key was first used with another request body."""

    def __init__(self, request: IdempotentRequest) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request body",
            details={"idempotency_key": request.key},
        )


async def prune(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(delete(keys).where(keys.c.expires_at < func.now()))
    return int(result.rowcount or 0)


async def prune_every(engine: AsyncEngine, seconds: float = 600) -> None:
    """Delete expired keys now and then, for as long as the service runs (a failed round
    waits for the next: an expired key is free again whether or not it is deleted)."""
    while True:
        with contextlib.suppress(Exception):
            await prune(engine)
        await asyncio.sleep(seconds)
