"""When `serve` lets CPython's cyclic garbage collector walk the whole heap: at quiet moments, not mid-load.

Why: the gateway's message path makes no reference cycles (in a `bench gateway` run every young and full
collection freed nothing; reference counting frees it all), yet CPython starts a full collection by itself
every few thousand messages, and a full collection walks every live container: the state maps and caches
held 140,000-200,000 references, so each one paused the event loop for 17-38 ms (s23, `serve` instrumented
with ``gc.callbacks``). That was the largest single pause left at half rate once the parked-identifier sweep
was gone (docs/gateway-scaling.md).

So `serve` keeps young collections automatic (pauses of ~0.1-4 ms), turns automatic full collections off,
and runs them itself: at the first quiet moment (no trace record for ``quiet_s``) at least ``min_interval_s``
after the last one, and under continuous load at the latest every ``max_interval_s``. Cycles that rare paths
do make (a dropped connection's exception, a deleted tenant's state) are freed within ``max_interval_s``.
The start-up objects (schemas, catalogue, simulators) are frozen first, so no collection walks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

log = logging.getLogger("juki.collector")

#: young collections: CPython's first threshold; the middle generation every 3 young collections instead of
#: 10, so each of its pauses walks a third as much (serve, s23: 2.9-3.2 ms instead of 5.8-8.7 ms, as much in
#: all); the third threshold (full collections) is set out of reach
YOUNG_THRESHOLDS = (700, 3)
NEVER = 2**31 - 1


@dataclass(slots=True)
class FullCollections:
    """Schedules full collections while a long-lived harness runs (``serve``, ``load``)::

        async with FullCollections(lambda: rt.store.last_seq):
            ...  # serve
    """

    activity: Callable[[], int]  # grows while the server works (the trace's last seq)
    quiet_s: float = 1.0
    min_interval_s: float = 10.0
    max_interval_s: float = 60.0
    runs: int = 0
    freed: int = 0  # objects the scheduled collections freed (cycles), summed
    longest_ms: float = 0.0
    _saved: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def __aenter__(self) -> FullCollections:
        self.start()
        self._task = asyncio.get_running_loop().create_task(self.run())
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.stop()

    def start(self) -> None:
        """Freeze what start-up built and take automatic full collections over."""
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(*YOUNG_THRESHOLDS, NEVER)

    def stop(self) -> None:
        """Give full collections back to CPython (and unfreeze): the process is as before ``start``."""
        gc.set_threshold(*self._saved)
        gc.unfreeze()

    def collect(self) -> None:
        t0 = time.perf_counter()
        freed = gc.collect()
        ms = (time.perf_counter() - t0) * 1e3
        self.runs += 1
        self.freed += freed
        self.longest_ms = max(self.longest_ms, ms)
        log.debug("full collection: %.1f ms, %d objects freed", ms, freed)

    async def run(self) -> None:
        """Every ``quiet_s``: collect if quiet and due, or overdue whatever the load — and only if a young
        collection has moved anything to the old generation since the last one (an idle server sleeps)."""
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        mark = self.activity()
        while True:
            await asyncio.sleep(self.quiet_s)
            now, seen = loop.time(), self.activity()
            quiet, mark = seen == mark, seen
            since = now - last_full
            if gc.get_count()[2] and (since >= self.max_interval_s or (quiet and since >= self.min_interval_s)):
                self.collect()
                last_full = loop.time()
