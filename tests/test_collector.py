"""`serve`'s collector schedule (issue 10): young collections by the clock, so a few survivors never pile up
into one long young collection; full collections at quiet moments, and under continuous load only when
overdue (CPython's own full collections paused the gateway 17-38 ms mid-load)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import pytest

from simulators.collector import NEVER, YOUNG_THRESHOLDS, CollectorSchedule


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def work() -> list[int]:
    return [0]


def _collector(work: list[int], min_interval_s: float = 10.0, max_interval_s: float = 60.0) -> CollectorSchedule:
    return CollectorSchedule(lambda: work[0], young_s=0.01, quiet_s=0.02, min_interval_s=min_interval_s,
                             max_interval_s=max_interval_s)


@contextlib.asynccontextmanager
async def _running(work: list[int], min_interval_s: float, max_interval_s: float
                   ) -> AsyncIterator[CollectorSchedule]:
    async with _collector(work, min_interval_s, max_interval_s) as c:
        await asyncio.sleep(0)  # the schedule has started (and taken its first look at the activity)
        yield c


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


async def test_young_collections_run_by_the_clock_even_when_allocations_stay_level(work: list[int]) -> None:
    async with _running(work, 60, 60) as c:
        gc.collect(0)
        kept = [Cycle() for _ in range(100)]  # far fewer than CPython's 700: it would not collect by itself
        assert any(o is kept[0] for o in gc.get_objects(0))
        await asyncio.sleep(0.1)
        assert c.young >= 3 and not any(o is kept[0] for o in gc.get_objects(0))  # walked once, promoted
        assert c.full == 0


async def test_a_quiet_moment_collects_and_frees_cycles(work: list[int]) -> None:
    async with _running(work, 0.05, 60) as c:
        kept = [Cycle() for _ in range(100)]
        _promote()  # old, alive ...
        del kept  # ... and now garbage only a full collection finds
        work[0] += 1  # the server worked, then went quiet
        for _ in range(50):
            await asyncio.sleep(0.02)
            if c.full:
                break
        assert c.full >= 1 and c.freed >= 100


async def test_continuous_load_defers_the_collection_until_it_is_overdue(work: list[int]) -> None:
    async with _running(work, 0.05, 0.4) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < 0.3:  # busy: never quiet for quiet_s
            work[0] += 1
            _promote()
            await asyncio.sleep(0.005)
        assert c.full == 0  # not due yet: no pause mid-load
        while loop.time() - t0 < 0.7:
            work[0] += 1
            _promote()
            await asyncio.sleep(0.005)
        assert c.full >= 1  # overdue: collected even though the load went on


async def test_an_idle_server_does_not_collect_again_and_again(work: list[int]) -> None:
    async with _running(work, 0.02, 0.05) as c:
        work[0] += 1
        await asyncio.sleep(0.3)
        assert c.full == 1  # once after the work; then nothing new to walk
