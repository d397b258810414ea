"""The unit of work: one transaction, the orders and idempotency keys read and written in it,
and the order's events appended to the log inside it. The service layer knows only these
protocols; `postgres` gives the real one, tests/support/fake_orders.py one in memory.

Leaving the `async with` normally commits; an exception rolls everything back.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from order_command.domain import Order
from order_command.idempotency import IdempotentRequest, PostgresKeys
from order_command.repository import PostgresOrders


class OrderRepository(Protocol):
    async def get(self, order_id: uuid.UUID, *, lock: bool = False) -> Order | None: ...

    async def as_created(self, order_id: uuid.UUID) -> Order: ...

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]: ...

    async def add(self, order: Order) -> None: ...

    async def save(self, order: Order, *, was: int) -> None: ...


class IdempotencyKeys(Protocol):
    async def claim(self, request: IdempotentRequest) -> uuid.UUID | None: ...

    async def remember(self, request: IdempotentRequest, order_id: uuid.UUID) -> None: ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def keys(self) -> IdempotencyKeys: ...


UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class PostgresUnitOfWork:
    orders: PostgresOrders
    keys: PostgresKeys


def postgres(engine: AsyncEngine, *, key_ttl: timedelta) -> UnitOfWorkFactory:
    """Each unit of work is one transaction on a pooled connection of `engine`."""

    @contextlib.asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        async with engine.begin() as conn:
            yield PostgresUnitOfWork(PostgresOrders(conn), PostgresKeys(conn, key_ttl))

    return begin
