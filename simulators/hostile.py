"""Hostile clients and what they cost a server: slow headers, slow bodies, endless chunked bodies, floods.

Why a module and not test code: the same attacks give the figures of issue 13 (``/health`` p99 while 200
slow-header and 200 slow-body connections are open; trace growth after 1,000 unauthenticated 3 MB posts;
TLS vs plain throughput), and a reviewer reruns them with one command::

    python -m simulators.hostile slow --url http://127.0.0.1:8700 [--connections 200] [--seconds 5]
    python -m simulators.hostile flood --url http://127.0.0.1:8700/msg [--posts 1000] [--mb 3]
    python -m simulators.hostile attrs --url http://127.0.0.1:8700 --token T [--posts 10]

Every client here stops by itself (a deadline); each uses raw sockets (asyncio streams), so it can misbehave
in ways an HTTP library will not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str
    tls: ssl.SSLContext | None = None

    @classmethod
    def of(cls, url: str, tls: ssl.SSLContext | None = None) -> Target:
        u = urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        return cls(u.hostname or "127.0.0.1", port, u.path or "/", tls if u.scheme == "https" else None)


async def _open(t: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(t.host, t.port, ssl=t.tls)


async def slow_header(t: Target, seconds: float, interval: float = 0.5) -> float | None:
    """Send a request line, then one header byte per ``interval``: when does the server cut it off?"""
    start = time.monotonic()
    deadline = start + seconds
    try:
        reader, writer = await _open(t)
    except OSError:
        return 0.0
    try:
        writer.write(f"POST {t.path} HTTP/1.1\r\nHost: {t.host}\r\n".encode())
        while time.monotonic() < deadline:
            writer.write(b"X")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1024), interval)  # an answer or EOF: cut off
                return time.monotonic() - start
        return None
    except (ConnectionError, OSError):
        return time.monotonic() - start
    finally:
        writer.close()


async def slow_body(t: Target, seconds: float, *, chunked: bool = False, token: str | None = None,
                    interval: float = 0.5) -> float | None:
    """Complete headers, then a body of one byte per ``interval`` (Content-Length 1 MB, or chunked and
    never ending): seconds until the server cut the connection or answered, None if it still waited."""
    start = time.monotonic()
    deadline = start + seconds
    try:
        reader, writer = await _open(t)
    except OSError:
        return 0.0
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    length = "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: 1048576\r\n"
    try:
        writer.write(f"POST {t.path} HTTP/1.1\r\nHost: {t.host}\r\n{auth}Content-Type: application/xml\r\n"
                     f"{length}\r\n".encode())
        while time.monotonic() < deadline:
            writer.write(b"1\r\n<\r\n" if chunked else b"<")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1024), interval)
                return time.monotonic() - start
        return None
    except (ConnectionError, OSError):
        return time.monotonic() - start
    finally:
        writer.close()


async def health_latencies(url: str, seconds: float, *, tls: ssl.SSLContext | None = None,
                           interval: float = 0.02, until: asyncio.Future[Any] | None = None) -> list[float]:
    """GET ``url`` (a /health) repeatedly for ``seconds`` (at least; and until ``until`` is done) on fresh
    connections: latencies in ms."""
    import aiohttp

    out: list[float] = []
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=10)
    conn = aiohttp.TCPConnector(ssl=tls if tls is not None else False, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        while time.monotonic() < end or (until is not None and not until.done()):
            t0 = time.perf_counter()
            try:
                async with http.get(url) as r:
                    await r.read()
                out.append((time.perf_counter() - t0) * 1000)
            except (aiohttp.ClientError, TimeoutError):
                out.append(10_000.0)
            await asyncio.sleep(interval)
    return out


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


async def during(attack: Callable[[], Awaitable[Any]], health_url: str, seconds: float,
                 tls: ssl.SSLContext | None = None) -> tuple[Any, list[float]]:
    """Run ``attack`` while measuring ``health_url``; returns (the attack's result, health latencies)."""
    task = asyncio.ensure_future(attack())
    await asyncio.sleep(0.3)  # let the attackers connect
    lat = await health_latencies(health_url, seconds, tls=tls, until=task)
    return await task, lat


async def slow_connections(t: Target, n_header: int, n_body: int, seconds: float,
                           token: str | None = None) -> dict[str, Any]:
    """``n_header`` slow-header and ``n_body`` slow-body clients at once: how long the server let them live."""
    hs = [slow_header(t, seconds) for _ in range(n_header)]
    bs = [slow_body(t, seconds, token=token) for _ in range(n_body)]
    res = await asyncio.gather(*hs, *bs)
    held = [r for r in res if r is None]
    cut = [r for r in res if r is not None]
    return {"connections": len(res), "still_held_at_end": len(held),
            "cut_after_s_max": round(max(cut), 2) if cut else None}


async def flood(url: str, posts: int, size: int, *, token: str | None = None, concurrency: int = 8,
                tls: ssl.SSLContext | None = None) -> dict[str, int]:
    """POST ``posts`` bodies of ``size`` bytes (with ``token`` or none): answers counted by status."""
    import aiohttp

    body = b"<x>" + b"A" * max(0, size - 7) + b"</x>"
    statuses: dict[str, int] = {}
    it = iter(range(posts))
    headers = {"Content-Type": "application/xml"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    async def worker(http: aiohttp.ClientSession) -> None:
        for _ in it:
            try:
                async with http.post(url, data=body, headers=headers) as r:
                    await r.read()
                    statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            except (aiohttp.ClientError, ConnectionError) as e:
                statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1

    conn = aiohttp.TCPConnector(ssl=tls if tls is not None else False)
    async with aiohttp.ClientSession(connector=conn) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return statuses


def attribute_flood_doc(n: int = 150_000) -> bytes:
    """An envelope whose body element carries ``n`` attributes (150,000 ≈ 1.7 MB)."""
    attrs = " ".join(f"a{i}='{i % 10}'" for i in range(n))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="urn:juki-harness:1" version="1"><Header>'
            "<MessageId>M-ATTRS</MessageId><MessageType>IdentityNotice</MessageType>"
            '<Sender actor="juki" lgCode="131016"/><Receiver actor="cs" lgCode="131016"/>'
            "<SentAt>2026-03-30T10:00:00+09:00</SentAt><BusinessDate>2026-03-30</BusinessDate></Header>"
            f"<Body><IdentityNotice {attrs}/></Body></Envelope>").encode()


async def attribute_attack(url: str, posts: int, token: str | None) -> dict[str, Any]:
    """Post the 150,000-attribute envelope ``posts`` times, one after the other: statuses and seconds each."""
    import aiohttp

    doc = attribute_flood_doc()
    headers = {"Content-Type": "application/xml", **({"Authorization": f"Bearer {token}"} if token else {})}
    out: dict[str, Any] = {"statuses": {}, "seconds": []}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
        for _ in range(posts):
            t0 = time.perf_counter()
            async with http.post(url, data=doc, headers=headers) as r:
                await r.read()
                out["statuses"][str(r.status)] = out["statuses"].get(str(r.status), 0) + 1
            out["seconds"].append(round(time.perf_counter() - t0, 3))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulators.hostile", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow", help="200 slow-header + 200 slow-body connections; /health p99 meanwhile")
    s.add_argument("--url", required=True, help="base URL of the server (…/msg is attacked, …/health timed)")
    s.add_argument("--path", default="/msg")
    s.add_argument("--connections", type=int, default=200)
    s.add_argument("--seconds", type=float, default=5.0)
    f = sub.add_parser("flood", help="unauthenticated large posts; answers by status")
    f.add_argument("--url", required=True)
    f.add_argument("--posts", type=int, default=1000)
    f.add_argument("--mb", type=float, default=3.0)
    at = sub.add_parser("attrs", help="150,000-attribute envelopes posted in turn; /health p99 meanwhile")
    at.add_argument("--url", required=True, help="base URL (…/msg is attacked, …/health timed)")
    at.add_argument("--path", default="/msg")
    at.add_argument("--token", default=None)
    at.add_argument("--posts", type=int, default=10)
    a = p.parse_args(argv)
    if a.cmd == "attrs":
        base = a.url.rstrip("/")
        res, lat = asyncio.run(during(lambda: attribute_attack(base + a.path, a.posts, a.token),
                                      base + "/health", 1.0))
        print(json.dumps({**res, "health_requests": len(lat), "health_p99_ms": round(p99(lat), 2)}))
    elif a.cmd == "slow":
        base = a.url.rstrip("/")
        t = Target.of(base + a.path)
        res, lat = asyncio.run(during(lambda: slow_connections(t, a.connections, a.connections, a.seconds),
                                      base + "/health", a.seconds - 0.5))
        print(json.dumps({**res, "health_requests": len(lat), "health_p99_ms": round(p99(lat), 2)}))
    else:
        print(json.dumps(asyncio.run(flood(a.url, a.posts, int(a.mb * 1024 * 1024)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
