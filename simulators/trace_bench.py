"""Benchmark of trace appends: how many durable appends per second the group-committing writer sustains.

Why: the moving-season peak is on the order of 2 million messages a day with bursts far above the mean;
the trace must not be the bottleneck while every caller still waits for durability.

API::

    await bench_appends(n, concurrency, path) -> float     appends/s (path None = memory only)
    python -m simulators.trace_bench [n] [concurrency]      prints memory and SQLite figures
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from simulators.trace import TraceStore

_PAYLOAD = (
    '<?xml version="1.0" encoding="UTF-8"?><j:Envelope xmlns:j="urn:juki-harness:1"><j:Header>'
    "<j:MessageId>{i}</j:MessageId><j:MessageType>TennyuTsuchi</j:MessageType></j:Header><j:Body>"
    + "<j:Shimei>山田 太郎</j:Shimei>" * 24 + "</j:Body></j:Envelope>"
)


async def bench_appends(n: int, concurrency: int, path: Path | None) -> float:
    """Append ``n`` records (≈1 KB payload each) from ``concurrency`` tasks; return durable appends/s.

    Timing covers the appends only (not opening or closing the store). Each task awaits each append, as
    the gateway does before acknowledging a message.
    """
    per_task, extra = divmod(n, concurrency)

    async with TraceStore(path) as store:

        async def worker(w: int, count: int) -> None:
            for i in range(count):
                await store.append(
                    kind="message", verdict="accepted", tenant=f"t{w % 8}", arrow=8, sender_actor="juki",
                    sender_lg="131016", receiver_actor="cs", receiver_lg="131016",
                    message_type="TennyuTsuchi", message_id=f"m-{w}-{i}",
                    payload=_PAYLOAD.format(i=i).encode("utf-8"),
                    virtual_time="2026-03-30T10:00:00+09:00")

        start = time.perf_counter()
        await asyncio.gather(*(worker(w, per_task + (1 if w < extra else 0)) for w in range(concurrency)))
        elapsed = time.perf_counter() - start
        assert store.last_seq >= n
    return n / elapsed


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 50_000
    concurrency = int(args[1]) if len(args) > 1 else 200
    mem = asyncio.run(bench_appends(n, concurrency, None))
    with tempfile.TemporaryDirectory() as tmp:
        disk = asyncio.run(bench_appends(n, concurrency, Path(tmp) / "trace.sqlite"))
    print(f"n={n} concurrency={concurrency}: memory {mem:,.0f} appends/s, "
          f"SQLite WAL synchronous=FULL {disk:,.0f} appends/s")


if __name__ == "__main__":
    main()
