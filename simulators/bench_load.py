"""Load generator of `juki-harness bench`: a raw keep-alive HTTP/1.1 client and an open-model scheduler.

Why raw: aiohttp's client tops out near 4.5k requests/s on one core here, so it would measure itself. This
client costs a few microseconds per request and runs in its own process (spawned by ``bench_serve``) on uvloop.
wrk is not used yet: the same client serves the closed loop (max rate) and the open model (fixed rate), so
every target in ``bench peers`` sees the same bytes from the same generator.

Open model: message i is *due* at t0 + i/rate whatever the answers do; its latency is measured from the due
time, so a stall of the target (or of a busy connection pool) shows up as latency and as late sends instead
of silently slowing the schedule down (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

LATE_S = 0.001  # a send starting more than 1 ms after its due time counts as late
MAX_RETRIES = 50


class RawHttp(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers (status, Retry-After seconds)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, float]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transport is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        if b"transfer-encoding: chunked" in head:  # Mountebank: the body ends with a zero-size chunk
            body = bytes(self.buf[end + 4:])
            stop = 0 if body.startswith(b"0\r\n\r\n") else body.find(b"\r\n0\r\n\r\n")
            if stop < 0:
                return
            length = stop + (5 if stop == 0 else 7)
        else:
            length = _header_int(head, b"content-length:") or 0
            if len(self.buf) < end + 4 + length:
                return
        status = int(self.buf[9:12])
        retry = float(_header_int(head, b"retry-after:") or 0)
        del self.buf[:end + 4 + length]
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result((status, retry))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("closed"))

    async def post(self, request: bytes) -> tuple[int, float]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _header_int(head: bytes, name: bytes) -> int | None:
    i = head.find(name)
    if i < 0:
        return None
    eol = head.find(b"\r\n", i)
    try:
        return int(head[i + len(name):eol if eol > 0 else None].strip() or b"0")
    except ValueError:
        return None


def requests_for(url: str, token: str, bodies: list[bytes]) -> tuple[str, int, list[bytes]]:
    """Whole HTTP requests (head + body) for ``bodies``, built before any timing starts."""
    u = urlsplit(url)
    head = (f"POST {u.path or '/'} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/xml\r\nContent-Length: ")
    return u.hostname or "127.0.0.1", u.port or 80, [f"{head}{len(b)}\r\n\r\n".encode() + b for b in bodies]


@dataclass
class Tally:
    """Answers by status (and GW-BUSY retries); ``ok`` counts the 202s."""

    statuses: dict[int, int] = field(default_factory=dict)
    busy_retries: int = 0
    failed: int = 0  # gave up after MAX_RETRIES or the connection broke

    def add(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def ok(self) -> int:
        return self.statuses.get(202, 0)


async def send_one(conn: RawHttp, req: bytes, tally: Tally) -> int:
    """POST until the answer is not 503; a 503 (GW-BUSY) is retried after its Retry-After and counted."""
    for _ in range(MAX_RETRIES):
        status, retry = await conn.post(req)
        if status != 503:
            tally.add(status)
            return status
        tally.busy_retries += 1
        await asyncio.sleep(min(retry, 1.0) if retry > 0 else 0.01)
    tally.failed += 1
    return 503


async def connect(host: str, port: int) -> RawHttp:
    _, proto = await asyncio.get_running_loop().create_connection(RawHttp, host, port)
    return proto


async def closed_loop(host: str, port: int, reqs: list[bytes], connections: int) -> tuple[float, Tally]:
    """Every connection posts its next request as soon as the previous answer is in; (elapsed s, tally)."""
    conns = [await connect(host, port) for _ in range(connections)]
    it = iter(reqs)
    tally = Tally()

    async def worker(c: RawHttp) -> None:
        for req in it:
            try:
                await send_one(c, req, tally)
            except (ConnectionError, OSError):
                tally.failed += 1
                c = await connect(host, port)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return elapsed, tally


@dataclass
class OpenResult:
    """What a fixed-rate run saw: latencies (s, from the due time), late sends, the worst lateness, and each
    message's service time (s, from its actual send: what the target took, without the sender's lateness)."""

    latencies: list[float]
    late: int
    max_late_s: float
    elapsed_s: float
    service: list[float]


async def open_schedule(send: Callable[[int], Awaitable[Any]], n: int, rate: float, slots: int) -> OpenResult:
    """Start send(i) at t0 + i/rate with at most ``slots`` in flight (the connection pool).

    A message whose slot is not free at its due time waits; it counts as late and its latency still runs from
    the due time. The schedule itself never slips: message i+1 stays due at t0 + (i+1)/rate.
    """
    sem = asyncio.Semaphore(slots)
    lat: list[float] = []
    service: list[float] = []
    late = 0
    max_late = 0.0
    t0 = time.perf_counter() + 0.02

    async def one(i: int, due: float) -> None:
        nonlocal late, max_late
        async with sem:
            started = time.perf_counter()
            if started - due > LATE_S:
                late += 1
                max_late = max(max_late, started - due)
            await send(i)
        done = time.perf_counter()
        lat.append(done - due)
        service.append(done - started)

    tasks: list[asyncio.Task[None]] = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return OpenResult(lat, late, max_late, time.perf_counter() - t0, service)


async def open_loop(host: str, port: int, reqs: list[bytes], rate: float, connections: int
                    ) -> tuple[OpenResult, Tally]:
    """The open model over a pool of keep-alive connections."""
    pool = [await connect(host, port) for _ in range(connections)]
    tally = Tally()

    async def send(i: int) -> None:
        c = pool.pop()
        try:
            await send_one(c, reqs[i], tally)
        finally:
            pool.append(c)

    res = await open_schedule(send, len(reqs), rate, connections)
    for c in pool:
        c.close()
    return res, tally
