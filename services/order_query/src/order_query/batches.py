"""Group commit: what concurrent callers hand in while a batch is being applied is applied
together next, in one call, and each caller gets its own item's result (the projection's
consumer acks a delivery only then).

Nothing waits on a timer: a lone item is applied at once, and under load a batch holds what
arrived while the one before it was being applied (at most `most`), so a batch is bounded
both by its size and by one batch's time. One batch is applied at a time: items of one order
handed in one after the other are applied in that order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, apply: Callable[[list[T]], Awaitable[list[R]]], *, most: int) -> None:
        self._apply = apply
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._applying: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item`'s result, once the batch it went into has been applied (what applying it
        raised, if it did)."""
        result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, result))
        if self._applying is None:
            self._applying = asyncio.create_task(self._apply_all())
        return await result

    async def _apply_all(self) -> None:
        try:
            await asyncio.sleep(0)  # the deliveries that arrived together join the first batch
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                await self._apply_one(batch)
        except BaseException:  # cancelled (the service stops): so is every caller still waiting
            for _, result in self._waiting:
                result.cancel()
            self._waiting = []
            raise
        finally:
            self._applying = None

    async def _apply_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._apply([item for item, _ in batch])
        except Exception as exc:
            for _, result in batch:
                if not result.done():
                    result.set_exception(exc)
        except BaseException:  # cancelled while applying: so are its callers
            for _, result in batch:
                result.cancel()
            raise
        else:
            for (_, result), value in zip(batch, results, strict=True):
                if not result.done():  # its caller may have been cancelled meanwhile
                    result.set_result(value)
