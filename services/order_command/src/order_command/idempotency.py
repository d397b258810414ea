"""Idempotency keys: the same key and body get the first create's order back; another body
is refused.

A key remembers the order its first request created, not an answer: the replay is that
order as it was created (read from its log), shaped by the route like any answer. The key
is claimed inside the create's own transaction, so the order, its event and the key commit
together. A second request with the key waits on the first's row lock, then finds its
order; if the first rolled back, the second claims the key itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


class PostgresKeys:
    """The keys of one unit of work, on its connection."""

    def __init__(self, conn: AsyncConnection, ttl: timedelta) -> None:
        self.conn = conn
        self.ttl = ttl

    async def claim(self, request: IdempotentRequest) -> uuid.UUID | None:
        """Claim the key for this request: None if it is ours now, else the order the first
        request with it created. KeyReused if the first had another body."""
        expires_at = func.now() + self.ttl
        statement = (
            insert(keys)
            .values(
                user_id=request.user_id,
                key=request.key,
                request_hash=request.digest,
                expires_at=expires_at,
            )
            .on_conflict_do_update(
                index_elements=[keys.c.user_id, keys.c.key],
                set_={"request_hash": request.digest, "order_id": None, "expires_at": expires_at},
                where=keys.c.expires_at < func.now(),  # an expired key is free again
            )
            .returning(keys.c.key)
        )
        if (await self.conn.execute(statement)).first() is not None:
            return None
        first = (
            await self.conn.execute(
                select(keys.c.request_hash, keys.c.order_id).where(
                    keys.c.user_id == request.user_id, keys.c.key == request.key
                )
            )
        ).one()
        if first.request_hash != request.digest:
            raise KeyReused(request)
        order_id: uuid.UUID = first.order_id
        return order_id

    async def remember(self, request: IdempotentRequest, order_id: uuid.UUID) -> None:
        await self.conn.execute(
            update(keys)
            .where(keys.c.user_id == request.user_id, keys.c.key == request.key)
            .values(order_id=order_id)
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
