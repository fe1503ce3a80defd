"""Benchmark of the trace store alone: durable appends/s, bytes per record on disk, memory, query latency.

Why: the moving-season peak is about 2 million messages a day with bursts far above the mean; the trace must
not be the bottleneck while every caller still waits for durability, its memory must stay flat however long
the run, and a trace row should cost about 1 KB on disk, not a 4 KiB page.

Usage::

    python -m simulators.trace_bench [--records N] [--concurrency C] [--tenants T] [--path FILE]
                                     [--seconds S] [--memory] [--json]

Appends N records (default 200,000; stops early after S seconds, default 60) of a realistic 1.8 KB
IdentityNotice envelope from C concurrent appenders (default 200), each awaiting durability as the gateway
does before its 202. Then prints: durable appends/s, bytes per record on disk (file size after close / records),
resident memory (psutil) after the first 10,000 records and at the end, the records the store holds in
memory, and the latency of ``query(tenant=, since_seq=, limit=100)`` over the finished file. Progress goes
to stderr every 5 s (records, rate over the interval, memory), so a slowdown as the file grows shows.

The payload is the pretty-printed IdentityNotice the gateway bench sends; its skeleton is part of the trace
file's preset compression dictionary (``simulators.tracedb``), so bytes per record here are on the good
side: other envelope shapes compress about 2-4x instead of 5x.

API::

    await run(records, concurrency=200, tenants=50, path=None, seconds=60.0, memory=False) -> BenchResult
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from simulators.trace import DEFAULT_CACHE, TraceStore

_ENVELOPE = """<?xml version='1.0' encoding='UTF-8'?>
<Envelope xmlns="urn:juki-harness:1" version="1">
    <Header>
        <MessageId>{mid}</MessageId>
        <MessageType>IdentityNotice</MessageType>
        <Sender actor="juki" lgCode="131016"/>
        <Receiver actor="cs" lgCode="131016"/>
        <SentAt>2026-03-30T10:00:00+09:00</SentAt>
        <BusinessDate>2026-03-30</BusinessDate>
    </Header>
    <Body>
        <IdentityNotice>
            <Identity>
                <JuminhyoCode>{jc}</JuminhyoCode>
                <MyNumber>{mn}</MyNumber>
                <Name>
                    <Kanji>辻󠄀　幹</Kanji>
                    <Kana>ツジ　ミキ</Kana>
                </Name>
                <BirthDate>
                    <Western>2008-03-09</Western>
                    <Wareki>平成20年3月9日</Wareki>
                </BirthDate>
                <Sex>2</Sex>
                <Address>
                    <LgCode>131016</LgCode>
                    <PostalCode>101-2313</PostalCode>
                    <Prefecture>東京都</Prefecture>
                    <City>千代田区</City>
                    <Town>丹勢</Town>
                    <Block>4丁目22番19号</Block>
                    <Building>丹勢シティ306号室</Building>
                </Address>
            </Identity>
            <Change>
                <Reason code="D06">国籍喪失・在留期間満了等</Reason>
                <EventDate>
                    <Western>2026-03-23</Western>
                    <Wareki>令和8年3月23日</Wareki>
                </EventDate>
                <NotifiedDate>2026-03-30</NotifiedDate>
                <Seq>1</Seq>
            </Change>
            <PreviousJuminhyoCode>67739167474</PreviousJuminhyoCode>
        </IdentityNotice>
    </Body>
</Envelope>
"""


def payload(i: int) -> bytes:
    """Bench envelope ``i`` (≈1.8 KB, synthetic resident; ids unique per i, not check-digit valid)."""
    return _ENVELOPE.format(mid=f"BENCH-{i:09d}", jc=f"7{i:010d}", mn=f"5{i:011d}").encode("utf-8")


@dataclass(frozen=True, slots=True)
class BenchResult:
    """What one run measured (sizes in bytes, times in seconds unless the name says ms)."""

    records: int
    concurrency: int
    durable: bool
    seconds: float
    appends_per_s: float
    bytes_per_record: float
    rss_after_10k_mb: float
    rss_end_mb: float
    records_in_memory: int
    query_tenant_p50_ms: float
    query_tenant_p99_ms: float


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


async def run(records: int, *, concurrency: int = 200, tenants: int = 50, path: Path | None = None,
              seconds: float = 60.0, memory: bool = False, cache_records: int | None = None,
              progress: Callable[[str], None] | None = None) -> BenchResult:
    """Append ``records`` records from ``concurrency`` tasks (stopping after ``seconds``), then measure.

    ``memory`` uses ``TraceStore(None)`` (a temporary unsynced file); otherwise ``path`` (default: a
    temporary directory) with ``synchronous=FULL``. ``progress`` gets a line every 5 s (records so far,
    the rate over the last interval — flat if appends do not slow down as the file grows — and memory).
    """
    with tempfile.TemporaryDirectory(prefix="juki-trace-bench-") as tmp:
        file = None if memory else (path or Path(tmp) / "trace.sqlite")
        store = TraceStore(file, cache_records=DEFAULT_CACHE if cache_records is None else cache_records)
        await store.open()
        counter = iter(range(records))
        rss_10k: list[float] = []
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                await store.append(
                    kind="message", verdict="accepted", tenant=f"t{i % tenants:03d}", arrow=8,
                    sender_actor="juki", sender_lg="131016", receiver_actor="cs", receiver_lg="131016",
                    message_type="IdentityNotice", message_id=f"BENCH-{i:09d}", payload=payload(i),
                    virtual_time="2026-03-30T10:00:00+09:00")
                if not rss_10k and store.last_seq >= 10_000:
                    rss_10k.append(_rss_mb())

        async def report() -> None:
            assert progress is not None
            last_n, last_t = 0, time.perf_counter()
            while True:
                await asyncio.sleep(5)
                now, done = time.perf_counter(), store.last_seq
                progress(f"  {done:>9,} records  {(done - last_n) / (now - last_t):>8,.0f}/s  "
                         f"rss {_rss_mb():.0f} MB")
                last_n, last_t = done, now

        monitor = asyncio.create_task(report()) if progress is not None else None
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        if monitor is not None:
            monitor.cancel()
        n = store.last_seq
        rss_end = _rss_mb()
        held = len(store._recent)
        # query latency by tenant, over the whole file: since a seq in its first, middle and last parts
        lat: list[float] = []
        for k in range(60):
            since = (n * (k % 3)) // 3
            t0 = time.perf_counter()
            store.query(tenant=f"t{k % tenants:03d}", since_seq=since, limit=100)
            lat.append((time.perf_counter() - t0) * 1000)
        await store.close()
        size = 0
        if file is not None:
            size = sum(p.stat().st_size for p in file.parent.glob(file.name + "*"))
    lat.sort()
    return BenchResult(
        records=n, concurrency=concurrency, durable=not memory, seconds=round(elapsed, 2),
        appends_per_s=round(n / elapsed), bytes_per_record=round(size / n, 1) if n and size else 0.0,
        rss_after_10k_mb=round(rss_10k[0] if rss_10k else rss_end, 1), rss_end_mb=round(rss_end, 1),
        records_in_memory=held, query_tenant_p50_ms=round(statistics.median(lat), 3),
        query_tenant_p99_ms=round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulators.trace_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="records to append (default 200000)")
    ap.add_argument("--concurrency", type=int, default=200, help="concurrent appenders (default 200)")
    ap.add_argument("--tenants", type=int, default=50, help="distinct tenants (default 50)")
    ap.add_argument("--seconds", type=float, default=60.0, help="stop appending after this long (default 60)")
    ap.add_argument("--path", type=Path, help="trace file to write (default: a temporary one, removed)")
    ap.add_argument("--memory", action="store_true", help="TraceStore(None): temporary file, no fsync")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args(argv)
    if a.records <= 0 or a.concurrency <= 0 or a.tenants <= 0:
        print("--records, --concurrency and --tenants must be positive", file=sys.stderr)
        return 2
    if not a.json:
        print(f"appending {a.records:,} records of {len(payload(0)):,} bytes from {a.concurrency} tasks "
              f"({'temporary file, no fsync' if a.memory else 'SQLite WAL, synchronous=FULL'}) ...",
              file=sys.stderr, flush=True)
    r = asyncio.run(run(a.records, concurrency=a.concurrency, tenants=a.tenants, path=a.path,
                        seconds=a.seconds, memory=a.memory,
                        progress=lambda line: print(line, file=sys.stderr, flush=True)))
    if a.json:
        print(json.dumps({**asdict(r), "loadavg": os.getloadavg()[0]}))
        return 0
    stopped = "" if r.records >= a.records else f" (stopped after {a.seconds:g} s)"
    print(f"records            {r.records:,}{stopped} in {r.seconds} s, {r.concurrency} appenders\n"
          f"durable appends/s  {r.appends_per_s:,}\n"
          f"bytes per record   {r.bytes_per_record:,} on disk\n"
          f"resident memory    {r.rss_after_10k_mb} MB after 10k records, {r.rss_end_mb} MB at the end "
          f"({r.records_in_memory:,} records held in memory)\n"
          f"query by tenant    p50 {r.query_tenant_p50_ms} ms, p99 {r.query_tenant_p99_ms} ms "
          f"(since a seq, limit 100)\n"
          f"load average       {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
