"""When `serve` (and `load`) let CPython's cyclic garbage collector run: young collections by the clock, full
collections at quiet moments — never a long walk mid-load.

Why (issue 10, measured in s23 with ``gc.callbacks`` in `serve` under `bench gateway`; docs/gateway-scaling.md):

* The gateway's message path makes no reference cycles (every collection of an instrumented run freed
  nothing; reference counting frees it all), yet CPython starts a full collection by itself every few
  thousand messages, and a full collection walks every live container — the state maps and caches held
  140,000-200,000 references: 17-38-ms pauses.
* CPython starts a young collection when allocations minus deallocations of tracked objects pass 700, and a
  deallocation of an *old* object counts too. A server whose caches turn over (the trace's recent records,
  state maps forgetting their oldest entries) frees old objects about as fast as it makes new ones, so
  young collections came seldom and each then walked thousands of survivors (the 2,048 cached trace
  records among them): 5-31-ms young collections.

So: start-up objects are frozen (no collection walks them); a young collection runs every ``young_s``
(the middle generation every third), so each walks only what the last ``young_s`` left alive; CPython's own
young collections stay as the safety net; automatic full collections are off, and a full collection runs at
the first quiet moment (no trace record for ``quiet_s``) at least ``min_interval_s`` after the last one, and
under continuous load at the latest every ``max_interval_s``. Cycles that rare paths make (a dropped
connection's exception, a deleted tenant's state) are freed within ``max_interval_s``.
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

#: CPython's automatic young collections (the safety net): its first threshold; the middle generation every
#: 3 young collections instead of 10, so each of its pauses walks a third as much; the third threshold (full
#: collections) is set out of reach
YOUNG_THRESHOLDS = (700, 3)
NEVER = 2**31 - 1


@dataclass(slots=True)
class CollectorSchedule:
    """The collector's schedule while a long-lived harness runs (``serve``, ``load``)::

        async with CollectorSchedule(lambda: rt.store.last_seq):
            ...  # serve
    """

    activity: Callable[[], int]  # grows while the server works (the trace's last seq)
    young_s: float = 0.05
    quiet_s: float = 1.0
    min_interval_s: float = 10.0
    max_interval_s: float = 60.0
    young: int = 0  # young collections run by the clock
    full: int = 0  # full collections run
    freed: int = 0  # objects the full collections freed (cycles), summed
    longest_full_ms: float = 0.0
    _saved: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def __aenter__(self) -> CollectorSchedule:
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
        """Freeze what start-up built and take the schedule over."""
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(*YOUNG_THRESHOLDS, NEVER)

    def stop(self) -> None:
        """Give the collector back to CPython (and unfreeze): the process is as before ``start``."""
        gc.set_threshold(*self._saved)
        gc.unfreeze()

    def summary(self) -> dict[str, float]:
        """What the schedule did, for reports: collections run, the longest full one, cycles freed."""
        return {"young": self.young, "full": self.full, "longest_full_ms": round(self.longest_full_ms, 1),
                "freed": self.freed}

    def collect_young(self) -> None:
        gc.collect(1 if gc.get_count()[1] >= YOUNG_THRESHOLDS[1] else 0)
        self.young += 1

    def collect_full(self) -> None:
        t0 = time.perf_counter()
        freed = gc.collect()
        ms = (time.perf_counter() - t0) * 1e3
        self.full += 1
        self.freed += freed
        self.longest_full_ms = max(self.longest_full_ms, ms)
        log.debug("full collection: %.1f ms, %d objects freed", ms, freed)

    async def run(self) -> None:
        """Every ``young_s`` a young collection; every ``quiet_s`` a full one if quiet and due, or overdue
        whatever the load — and only if the server worked since the last one (an idle server sleeps)."""
        loop = asyncio.get_running_loop()
        last_full = last_look = loop.time()
        mark = at_full = self.activity()
        while True:
            await asyncio.sleep(self.young_s)
            self.collect_young()
            now = loop.time()
            if now - last_look < self.quiet_s:
                continue
            last_look, seen = now, self.activity()
            quiet, mark = seen == mark, seen
            since = now - last_full
            if seen != at_full and (since >= self.max_interval_s or (quiet and since >= self.min_interval_s)):
                self.collect_full()
                last_full, at_full = loop.time(), seen
