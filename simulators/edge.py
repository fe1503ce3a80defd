"""The HTTP edge every server of the harness shares: timeouts, a connection limit, refusal rate limits.

Why this exists: aiohttp has a keep-alive timeout but no time limit on reading a request's headers or body,
so 200 clients that trickle one byte a second (or send a chunked body that never ends) hold 200 connections
for as long as they like. :class:`GuardedRunner` is an ``AppRunner`` whose connections are watched by one
sweeper task (every ``limits.sweep_seconds``):

* headers: a connection that has sent part of a request but not its complete header block within
  ``header_timeout`` is closed (and one that sent nothing at all within ``idle_timeout``, aiohttp's own
  keep-alive timer, as is an idle keep-alive connection);
* body: a request whose body is not fully received ``body_timeout`` after its headers is closed — the time a
  handler spends *after* reading the body (a counter request waits up to 30 s) does not count;
* connections beyond ``max_connections`` are answered ``503`` with ``Retry-After`` and closed at once.

:class:`RefusalLimiter` bounds what refused traffic may cost: per source address, ``refusals_per_minute``
refusals are recorded; beyond that the source gets ``429`` (code ``GW-RATE``, ``Retry-After``) and nothing is
written — the count of suppressed refusals is kept in memory and noted on the next recorded one.
:func:`digest_body` reads a body without keeping it (size and SHA-256 only), so a refusal costs no payload.

Usage::

    runner = GuardedRunner(app, limits=cfg.gateway.limits, access_log=None, handle_signals=False)
    await runner.setup(); site = web.TCPSite(runner, host, port); await site.start()
    runner.stats()   # {"connections": .., "closed_header": .., "closed_body": .., "rejected": ..}
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

log = logging.getLogger("juki.edge")

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: 31\r\n\r\nGW-CONN-LIMIT: too many clients")


@dataclass(frozen=True, slots=True)
class Limits:
    """Server limits (``[gateway.limits]`` in the config); the defaults are sane for a test lab."""

    header_timeout: float = 10.0     # first byte of a request .. end of its headers
    body_timeout: float = 30.0       # end of headers .. end of body (upload of 4 MB at ≥ 140 kB/s)
    idle_timeout: float = 30.0       # a connection with no request in progress (aiohttp keepalive_timeout)
    max_connections: int = 1024      # open connections; more are answered 503 and closed
    refusals_per_minute: int = 60    # refusals recorded per source address and minute; then 429
    sweep_seconds: float = 0.5       # how often connections are checked against the timeouts


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler plus the timestamps the sweeper needs (no parsing of its own)."""

    def __init__(self, manager: Server, *, guard: _Guard, **kw: Any) -> None:
        super().__init__(manager, **kw)
        self._g = guard
        self._g_partial: float | None = None  # first byte of a request whose headers are incomplete
        self._g_request: BaseRequest | None = None
        self._g_started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._g.over_limit():
            self._g.rejected += 1
            with contextlib.suppress(Exception):
                transport.write(_BUSY)  # type: ignore[attr-defined]
            self.force_close()

    def data_received(self, data: bytes) -> None:
        if self._g_request is None and self._g_partial is None:
            self._g_partial = time.monotonic()
        super().data_received(data)

    async def _handle_request(self, request: BaseRequest, start_time: float | None,
                              request_handler: Any) -> tuple[web.StreamResponse, bool]:
        self._g_partial, self._g_request, self._g_started = None, request, time.monotonic()
        try:
            return await super()._handle_request(request, start_time, request_handler)
        finally:
            self._g_request = None

    def check(self, now: float, limits: Limits) -> str | None:
        """Why this connection must be closed now (None: it may live on)."""
        req = self._g_request
        if req is not None:
            if now - self._g_started > limits.body_timeout and not req.content.is_eof():
                return "body"
            return None
        if self._g_partial is not None and now - self._g_partial > limits.header_timeout:
            return "header"
        return None


class _Guard:
    """Counters and the connection limit of one guarded server."""

    def __init__(self, server: Server, limits: Limits) -> None:
        self.server, self.limits = server, limits
        self.closed_header = self.closed_body = self.rejected = 0

    def over_limit(self) -> bool:
        return len(self.server._connections) > self.limits.max_connections

    def sweep(self) -> None:
        now = time.monotonic()
        for h in self.server.connections:
            why = h.check(now, self.limits) if isinstance(h, _GuardedHandler) else None
            if why is None:
                continue
            if why == "header":
                self.closed_header += 1
            else:
                self.closed_body += 1
            log.info("closing a connection: %s not received within its timeout", why)
            h.force_close()


class _GuardedServer(Server):
    guard: _Guard

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` with header/body/idle timeouts and a connection limit (see the module doc)."""

    def __init__(self, app: web.Application, *, limits: Limits | None = None, **kw: Any) -> None:
        self.limits = limits or Limits()
        kw.setdefault("keepalive_timeout", self.limits.idle_timeout)
        kw.setdefault("lingering_time", 2.0)
        super().__init__(app, **kw)
        self._guard: _Guard | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def _make_server(self) -> Server:
        srv = await super()._make_server()
        srv.__class__ = _GuardedServer  # same layout; only __call__ differs (creates guarded handlers)
        guard = _Guard(srv, self.limits)
        srv.guard = guard  # type: ignore[attr-defined]
        self._guard = guard
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(guard))
        return srv

    async def _sweep(self, guard: _Guard) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_seconds)
            try:
                guard.sweep()
            except Exception:  # a sweep must never stop the sweeper
                log.exception("connection sweep failed")

    async def cleanup(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().cleanup()

    def stats(self) -> dict[str, int]:
        g = self._guard
        if g is None:
            return {"connections": 0, "closed_header": 0, "closed_body": 0, "rejected": 0}
        return {"connections": len(g.server._connections), "closed_header": g.closed_header,
                "closed_body": g.closed_body, "rejected": g.rejected}


# ------------------------------------------------------------------------------------------- refusals

class RefusalLimiter:
    """Per-source budget of recorded refusals (a fixed one-minute window per source address)."""

    def __init__(self, per_minute: int = 60, *, max_sources: int = 10_000) -> None:
        self.per_minute = per_minute
        self.max_sources = max_sources
        self._win: dict[str, tuple[float, int, int]] = {}  # source -> (window start, recorded, suppressed)

    def allow(self, source: str, now: float | None = None) -> tuple[bool, int, float]:
        """(record it?, refusals suppressed before it, seconds until the window reopens)."""
        now = time.monotonic() if now is None else now
        start, n, sup = self._win.get(source, (now, 0, 0))
        if now - start >= 60.0:
            start, n = now, 0
        if n < self.per_minute:
            if len(self._win) >= self.max_sources and source not in self._win:
                self._prune(now)
            self._win[source] = (start, n + 1, 0)
            return True, sup, 0.0
        self._win[source] = (start, n, sup + 1)
        return False, sup + 1, max(1.0, 60.0 - (now - start))

    def _prune(self, now: float) -> None:
        for k in [k for k, (s, _, _) in self._win.items() if now - s >= 60.0]:
            del self._win[k]
        while len(self._win) >= self.max_sources:  # still full: forget the oldest window
            del self._win[next(iter(self._win))]

    def suppressed(self) -> int:
        return sum(s for _, _, s in self._win.values())


@dataclass(frozen=True, slots=True)
class BodyDigest:
    """What a refusal keeps of a body: its size and SHA-256 (never the bytes)."""

    size: int
    sha256: str
    complete: bool  # False: the body was longer than the limit (only the first ``limit`` bytes hashed)


async def digest_body(request: web.BaseRequest, limit: int) -> BodyDigest:
    """Read (and drop) a request body in chunks: its size and SHA-256, bounded by ``limit`` bytes."""
    h = hashlib.sha256()
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                return BodyDigest(size, h.hexdigest(), False)
            h.update(chunk)
    except (ConnectionError, asyncio.IncompleteReadError, RequestPayloadError, web.HTTPException):
        return BodyDigest(size, h.hexdigest(), False)
    return BodyDigest(size, h.hexdigest(), True)


#: the peer address of the HTTP request being handled (set by the gateway's handlers; None in process)
REQUEST_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("juki_request_source", default=None)
#: what a refusal keeps of the refused body when it was only streamed through (401: never read into memory)
REQUEST_BODY: contextvars.ContextVar[BodyDigest | None] = contextvars.ContextVar("juki_request_body",
                                                                                    default=None)


def refusal_note(status: int, source: str | None, size: int, sha256: str, suppressed: int = 0) -> str:
    """The note of a refusal recorded without its payload: who, how big, which bytes (digest)."""
    more = f"; {suppressed} more from this source not recorded (rate limit)" if suppressed else ""
    return f"HTTP {status} from {source or 'unknown'}: {size} bytes sha256 {sha256} (payload not kept){more}"


def source_of(request: web.BaseRequest) -> str:
    """The peer address of a request (the rate-limit key); never a header the client chooses."""
    return request.remote or "unknown"
