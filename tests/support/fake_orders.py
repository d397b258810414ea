"""order_command's unit of work in memory: the service layer's rules tested without Postgres.

It keeps what the real one guarantees and a test can see: a unit of work commits on a clean
exit and leaves nothing on an exception; an order's versions form one chain (a save from a
version that is not the stored one is refused, as the log's unique `(aggregate_id,
version)` refuses it); an idempotency key remembers the order its first request created;
a unit of work of one statement writes once at most.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from order_command.domain import Order
from order_command.idempotency import IdempotentRequest, KeyReused
from order_command.service import OrderService
from order_command.unit_of_work import UnitOfWork
from shared.events import Message


class VersionConflict(Exception):
    """What the log's unique `(aggregate_id, version)` raises in Postgres."""


@dataclass
class Stored:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    created: dict[uuid.UUID, Order] = field(default_factory=dict)
    # The log: (aggregate id, version, event), in the order they were appended.
    events: list[tuple[uuid.UUID, int, Message]] = field(default_factory=list)
    keys: dict[tuple[uuid.UUID, str], tuple[bytes, uuid.UUID | None]] = field(default_factory=dict)


class MemoryOrders:
    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.writes = 0

    async def get(self, order_id: uuid.UUID, *, lock: bool = False) -> Order | None:
        return self.stored.orders.get(order_id)

    async def as_created(self, order_id: uuid.UUID) -> Order:
        return self.stored.created[order_id]

    async def page(self, after: uuid.UUID | None, limit: int) -> list[Order]:
        ids = sorted(i for i in self.stored.orders if after is None or i > after)
        return [self.stored.orders[i] for i in ids[:limit]]

    async def add(self, order: Order, key: IdempotentRequest | None = None) -> uuid.UUID | None:
        self.writes += 1
        if key is not None:
            first = self.stored.keys.get((key.user_id, key.key))
            if first is not None:
                digest, order_id = first
                if digest != key.digest:
                    raise KeyReused(key)
                return order_id
            self.stored.keys[key.user_id, key.key] = (key.digest, order.id)
        if order.id in self.stored.orders:
            raise VersionConflict(f"order {order.id} exists")
        self._append(order, first_version=1)
        self.stored.created[order.id] = replace(order, events=())
        return None

    async def save(self, order: Order, *, was: int) -> None:
        self.writes += 1
        stored = self.stored.orders.get(order.id)
        if stored is None or stored.version != was:
            raise VersionConflict(f"order {order.id} is not at version {was}")
        self._append(order, first_version=was + 1)

    def _append(self, order: Order, *, first_version: int) -> None:
        for offset, event in enumerate(order.events):
            self.stored.events.append((order.id, first_version + offset, event))
        self.stored.orders[order.id] = replace(order, events=())


@dataclass(frozen=True)
class MemoryWork:
    orders: MemoryOrders


@dataclass
class MemoryUnitOfWork:
    """Call it as the service calls its factory; `stored` is what has been committed."""

    stored: Stored = field(default_factory=Stored)
    commits: int = 0

    @contextlib.asynccontextmanager
    async def __call__(self, *, one_statement: bool = False) -> AsyncIterator[UnitOfWork]:
        working = copy.deepcopy(self.stored)
        orders = MemoryOrders(working)
        yield MemoryWork(orders)
        # Postgres would have committed each statement on its own: more than one write would
        # not be all or nothing.
        assert not one_statement or orders.writes <= 1, "a one-statement unit wrote twice"
        self.stored = working  # reached only without an exception: the commit
        self.commits += 1

    def events_of(self, order_id: uuid.UUID) -> list[tuple[int, Message]]:
        return [(version, event) for aid, version, event in self.stored.events if aid == order_id]


class Clock:
    """A clock that moves one second on at each reading: each change has its own time."""

    def __init__(self, start: datetime = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def memory_service(currency: str = "USD") -> tuple[OrderService, MemoryUnitOfWork]:
    """order_command's service layer over a unit of work in memory, as its composition root
    builds it over Postgres."""
    work = MemoryUnitOfWork()
    return OrderService(work, currency=currency, clock=Clock()), work
