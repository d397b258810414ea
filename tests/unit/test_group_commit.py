"""order_query's group commit: what callers hand in while a batch is applied goes in the next
batch, each caller gets its own result, and one batch is applied at a time."""

from __future__ import annotations

import asyncio

import pytest

from order_query.batches import GroupCommit


class Recorder:
    """An `apply` that records its batches, can be held, and doubles each item."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()  # set once a batch is being applied
        self.inside = 0
        self.most_inside = 0

    async def apply(self, items: list[int]) -> list[int]:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.batches.append(list(items))
        self.entered.set()
        await self.release.wait()
        self.inside -= 1
        if any(item < 0 for item in items):
            raise ValueError("a negative item")
        return [item * 2 for item in items]


async def test_a_lone_item_is_applied_at_once_and_answered() -> None:
    recorder = Recorder()
    together = GroupCommit(recorder.apply, most=8)
    assert await together.submit(3) == 6
    assert recorder.batches == [[3]]


async def test_what_arrives_while_a_batch_is_applied_goes_together_in_the_next() -> None:
    recorder = Recorder()
    together = GroupCommit(recorder.apply, most=8)
    recorder.release.clear()
    first = asyncio.create_task(together.submit(1))
    await asyncio.wait_for(recorder.entered.wait(), timeout=1)
    later = [asyncio.create_task(together.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == 2
    assert [await task for task in later] == [4, 6, 8]
    assert recorder.batches == [[1], [2, 3, 4]]
    assert recorder.most_inside == 1  # one batch at a time


async def test_a_batch_holds_at_most_most_items() -> None:
    recorder = Recorder()
    together = GroupCommit(recorder.apply, most=2)
    results = await asyncio.gather(*(together.submit(n) for n in range(5)))
    assert results == [0, 2, 4, 6, 8]
    assert recorder.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_is_still_applied() -> None:
    recorder = Recorder()
    together = GroupCommit(recorder.apply, most=2)
    failed = asyncio.gather(together.submit(1), together.submit(-1), return_exceptions=True)
    after = together.submit(5)
    outcomes, value = await asyncio.gather(failed, after)
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)
    assert value == 10


async def test_a_caller_that_gives_up_leaves_the_others_their_results() -> None:
    recorder = Recorder()
    together = GroupCommit(recorder.apply, most=8)
    recorder.release.clear()
    gives_up = asyncio.create_task(together.submit(1))
    stays = asyncio.create_task(together.submit(2))
    await asyncio.wait_for(recorder.entered.wait(), timeout=1)
    gives_up.cancel()
    recorder.release.set()
    assert await stays == 4
    with pytest.raises(asyncio.CancelledError):
        await gives_up
