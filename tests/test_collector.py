"""`serve`'s full collections run at quiet moments, and under continuous load only when overdue (issue 10:
the 17-38 ms pauses of CPython's own full collections were the largest left in the gateway's p99)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from simulators.collector import NEVER, YOUNG_THRESHOLDS, FullCollections


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def work() -> Iterator[list[int]]:
    counter = [0]
    yield counter


def _collector(work: list[int], **kw: float) -> FullCollections:
    return FullCollections(lambda: work[0], quiet_s=0.02, **kw)


def _promote() -> None:
    """Something reaches the old generation (as a young collection does under traffic)."""
    gc.collect(1)


async def test_start_takes_full_collections_over_and_stop_gives_them_back(work: list[int]) -> None:
    before = gc.get_threshold()
    c = _collector(work)
    c.start()
    try:
        assert gc.get_threshold() == (*YOUNG_THRESHOLDS, NEVER) and gc.get_freeze_count() > 0
    finally:
        c.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_a_quiet_moment_collects_and_frees_cycles(work: list[int]) -> None:
    c = _collector(work, min_interval_s=0.05, max_interval_s=60)
    c.start()
    task = asyncio.create_task(c.run())
    try:
        kept = [Cycle() for _ in range(100)]
        _promote()  # old, alive ...
        del kept  # ... and now garbage only a full collection finds
        for _ in range(50):
            await asyncio.sleep(0.02)
            if c.runs:
                break
        assert c.runs >= 1 and c.freed >= 100
    finally:
        task.cancel()
        c.stop()


async def test_continuous_load_defers_the_collection_until_it_is_overdue(work: list[int]) -> None:
    c = _collector(work, min_interval_s=0.05, max_interval_s=0.4)
    c.start()
    task = asyncio.create_task(c.run())
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < 0.3:  # busy: never quiet for quiet_s
            work[0] += 1
            _promote()
            await asyncio.sleep(0.005)
        assert c.runs == 0  # not due yet: no pause mid-load
        while loop.time() - t0 < 0.7:
            work[0] += 1
            _promote()
            await asyncio.sleep(0.005)
        assert c.runs >= 1  # overdue: collected even though the load went on
    finally:
        task.cancel()
        c.stop()


async def test_an_idle_server_does_not_collect_again_and_again(work: list[int]) -> None:
    c = _collector(work, min_interval_s=0.02, max_interval_s=0.05)
    c.start()
    task = asyncio.create_task(c.run())
    try:
        await asyncio.sleep(0.05)
        gc.collect()  # nothing old left to walk; nothing reaches the old generation from here on
        runs = c.runs
        await asyncio.sleep(0.3)
        assert c.runs <= runs + 1
    finally:
        task.cancel()
        c.stop()
