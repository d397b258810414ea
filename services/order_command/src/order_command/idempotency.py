"""Idempotency keys: the same key and body replay the first answer; another body is a 422.

The key is claimed inside the create's own transaction, so the order, its event and the
stored answer commit together. A second request with the key waits on the first's row
lock, then finds its answer; if the first rolled back, the second claims the key itself.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order_command.models import idempotency_keys as keys
from shared.errors import Unprocessable


@dataclass(frozen=True)
class IdempotentRequest:
    user_id: uuid.UUID
    key: str
    body: bytes  # a canonical form of the request: equal bodies, equal bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


async def claim(conn: AsyncConnection, request: IdempotentRequest, ttl: timedelta) -> Answer | None:
    """Claim the key for this request: None if it is ours now, else the first answer."""
    statement = (
        insert(keys)
        .values(
            user_id=request.user_id,
            key=request.key,
            request_hash=request.digest,
            expires_at=func.now() + ttl,
        )
        .on_conflict_do_update(
            index_elements=[keys.c.user_id, keys.c.key],
            set_={
                "request_hash": request.digest,
                "status_code": None,
                "response": None,
                "expires_at": func.now() + ttl,
            },
            where=keys.c.expires_at < func.now(),  # an expired key is free again
        )
        .returning(keys.c.key)
    )
    if (await conn.execute(statement)).first() is not None:
        return None
    first = (
        await conn.execute(
            select(keys.c.request_hash, keys.c.status_code, keys.c.response).where(
                keys.c.user_id == request.user_id, keys.c.key == request.key
            )
        )
    ).one()
    if first.request_hash != request.digest:
        raise Unprocessable(
            "This Idempotency-Key was used with another request body",
            details={"idempotency_key": request.key},
        )
    return Answer(first.status_code, first.response, replayed=True)


async def remember(conn: AsyncConnection, request: IdempotentRequest, answer: Answer) -> None:
    await conn.execute(
        update(keys)
        .where(keys.c.user_id == request.user_id, keys.c.key == request.key)
        .values(status_code=answer.status_code, response=answer.body)
    )


async def prune(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(delete(keys).where(keys.c.expires_at < func.now()))
    return int(result.rowcount or 0)
