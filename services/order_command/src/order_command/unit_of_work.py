"""The unit of work: one transaction, the orders (and a create's idempotency key) read and
written in it, and the order's events appended to the log inside it. The service layer knows
only these protocols; `postgres` gives the real one, tests/support/fake_orders.py one in memory.

Leaving the `async with` normally commits; an exception rolls everything back.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from order_command.domain import Order
from order_command.idempotency import IdempotentRequest
from order_command.repository import PostgresOrders


class OrderRepository(Protocol):
    async def get(self, order_id: uuid.UUID, *, lock: bool = False) -> Order | None: ...

    async def as_created(self, order_id: uuid.UUID) -> Order: ...

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]: ...

    async def add(self, order: Order, key: IdempotentRequest | None = None) -> uuid.UUID | None:
        """None: written (and `key`, if any, claimed); else the order `key` was first used
        for, and nothing written."""

    async def save(self, order: Order, *, was: int) -> None: ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """`one_statement`: the use case writes with one statement at most, atomic by itself,
        so Postgres is spared BEGIN and COMMIT (decision 48); reads may follow it."""


@dataclass(frozen=True)
class PostgresUnitOfWork:
    orders: PostgresOrders


def postgres(engine: AsyncEngine, *, key_ttl: timedelta) -> UnitOfWorkFactory:
    """Each unit of work is one transaction on a pooled connection of `engine` (or, of one
    statement, that statement on a connection of the same pool in autocommit)."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.asynccontextmanager
    async def begin(*, one_statement: bool = False) -> AsyncIterator[UnitOfWork]:
        connecting = autocommit.connect() if one_statement else engine.begin()
        async with connecting as conn:
            yield PostgresUnitOfWork(PostgresOrders(conn, key_ttl))

    return begin
