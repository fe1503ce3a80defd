"""`python -m simulators.soak`: a bounded soak — `juki-harness serve` under moderate load for N minutes,
its resident memory and open file descriptors sampled (psutil) — flat, or not.

Why a separate process: a leak shows in the process that serves, not in the one that sends; and the soak
must measure whatever `serve` is today (same command a vendor runs). The load is moderate on purpose (a
steady rate, not the maximum): a soak looks for growth over time, not for throughput.

    python -m simulators.soak [--minutes 10] [--rate 200] [--json]

Each sample: seconds since start, RSS (MB), open fds, connections, messages accepted so far. The verdict
compares the median RSS of the last fifth with that of the second fifth (after warm-up): ``flat`` when it grew
less than ``--tolerance`` (default 20 %) and fds did not grow by more than 16. Exit 0 when flat, 1 otherwise.
The load mixes valid IdentityNotices with a few refused documents (bad XML, no token) so refusal paths soak
too. ``--tls`` runs the gateway with TLS (certificates from ``juki-harness certs``) — and ``--compare-tls``
gives the TLS/plain throughput ratio of a short closed-loop run of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
SUT_TOKEN = "sut-secret"


def _with_id(data: bytes, mid: str) -> bytes:
    start = data.index(b"<MessageId>") + len(b"<MessageId>")
    end = data.index(b"</MessageId>")
    return data[:start] + mid.encode() + data[end:]


@contextlib.asynccontextmanager
async def serve_process(data_dir: Path, *, tls_dir: Path | None = None) -> AsyncIterator[dict[str, Any]]:
    """`juki-harness serve` as a child process (default tokens kept: loopback only); yields its --json info
    plus ``pid``."""
    argv = [sys.executable, "-m", "conformance.cli", "serve", "--port", "0", "--data-dir", str(data_dir),
            "--json", "--insecure-default-tokens"]
    if tls_dir is not None:
        cfg = data_dir.parent / "soak-tls.toml"
        cfg.write_text(f'[gateway]\ntls_cert = "{tls_dir}/gateway.pem"\ntls_key = "{tls_dir}/gateway-key.pem"\n',
                       encoding="utf-8")
        argv += ["--config", str(cfg)]
    log = (data_dir.parent / "soak-serve.log").open("ab")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=log,
                                                env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"serve did not start: see {data_dir.parent / 'soak-serve.log'}")
        yield {**json.loads(line), "pid": proc.pid}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


def _sample(p: psutil.Process, t0: float, accepted: int) -> dict[str, Any]:
    with p.oneshot():
        return {"t": round(time.monotonic() - t0, 1), "rss_mb": round(p.memory_info().rss / 2**20, 1),
                "fds": p.num_fds(), "connections": len(p.net_connections()), "accepted": accepted}


async def _load(url: str, rate: float, until: float, counts: dict[str, int],
                tls: ssl.SSLContext | None) -> None:
    """A steady open-loop rate: every 20th request is refused on purpose (no token, or not XML)."""
    import aiohttp

    interval = 1.0 / rate
    i = 0
    conn = aiohttp.TCPConnector(limit=64, ssl=tls if tls is not None else False)
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        kind = i % 40
        headers = {"Authorization": f"Bearer {SUT_TOKEN}"} if kind != 19 else {}
        body = b"<not-xml" if kind == 39 else _with_id(base, f"M-SOAK{i:010d}")
        try:
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        except (aiohttp.ClientError, TimeoutError) as e:
            counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1

    from conformance.samples import sample

    base = sample("IdentityNotice", seed=1)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=20)) as http:
        next_at = time.monotonic()
        while time.monotonic() < until:
            t = asyncio.ensure_future(one(i))
            pending.add(t)
            t.add_done_callback(pending.discard)
            i += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if pending:
            await asyncio.wait(pending, timeout=20)


async def soak(minutes: float, rate: float, *, every: float = 5.0, tolerance: float = 0.2,
               tls_dir: Path | None = None) -> dict[str, Any]:
    """Run the soak; returns samples and the verdict."""
    with tempfile.TemporaryDirectory(prefix="juki-soak-") as tmp:
        async with serve_process(Path(tmp) / "var", tls_dir=tls_dir) as info:
            p = psutil.Process(info["pid"])
            tls = None
            if tls_dir is not None:
                tls = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
            counts: dict[str, int] = {}
            t0 = time.monotonic()
            until = t0 + minutes * 60
            load = asyncio.ensure_future(_load(info["msg"], rate, until, counts, tls))
            samples = [_sample(p, t0, 0)]
            while not load.done():
                await asyncio.sleep(min(every, max(0.1, until - time.monotonic() + 0.1)))
                samples.append(_sample(p, t0, counts.get("202", 0)))
            await load
            samples.append(_sample(p, t0, counts.get("202", 0)))
    return {"minutes": minutes, "rate": rate, "answers": counts, "samples": samples,
            **verdict(samples, tolerance)}


def verdict(samples: list[dict[str, Any]], tolerance: float = 0.2) -> dict[str, Any]:
    """Flat when the last fifth's median RSS is within ``tolerance`` of the second fifth's (after warm-up)."""
    n = len(samples)
    k = max(1, n // 5)
    early = samples[k:2 * k] or samples[:1]
    late = samples[-k:]
    rss_early = statistics.median(s["rss_mb"] for s in early)
    rss_late = statistics.median(s["rss_mb"] for s in late)
    fds_early = max(s["fds"] for s in early)
    fds_late = max(s["fds"] for s in late)
    growth = (rss_late - rss_early) / rss_early if rss_early else 0.0
    flat = growth <= tolerance and fds_late - fds_early <= 16
    return {"rss_start_mb": samples[0]["rss_mb"], "rss_early_mb": rss_early, "rss_end_mb": rss_late,
            "rss_growth": round(growth, 3), "fds_early": fds_early, "fds_end": fds_late, "flat": flat}


async def throughput(seconds: float, *, tls_dir: Path | None, concurrency: int = 16) -> float:
    """Closed-loop accepted msg/s against a fresh serve process (plain, or TLS with ``tls_dir``)."""
    import aiohttp

    from conformance.samples import sample

    base = sample("IdentityNotice", seed=1)
    with tempfile.TemporaryDirectory(prefix="juki-tput-") as tmp:
        async with serve_process(Path(tmp) / "var", tls_dir=tls_dir) as info:
            tls = ssl.create_default_context(cafile=str(tls_dir / "ca.pem")) if tls_dir else None
            conn = aiohttp.TCPConnector(limit=concurrency, ssl=tls if tls is not None else False)
            ok = 0
            seq = iter(range(10**9))
            end = time.monotonic() + seconds

            async def worker(http: aiohttp.ClientSession) -> None:
                nonlocal ok
                while time.monotonic() < end:
                    body = _with_id(base, f"M-TPUT{next(seq):010d}")
                    async with http.post(info["msg"], data=body,
                                         headers={"Authorization": f"Bearer {SUT_TOKEN}"}) as r:
                        await r.read()
                        ok += r.status == 202

            async with aiohttp.ClientSession(connector=conn) as http:
                t0 = time.monotonic()
                await asyncio.gather(*(worker(http) for _ in range(concurrency)))
                return ok / (time.monotonic() - t0)


async def compare_tls(seconds: float) -> dict[str, Any]:
    from simulators.tls import make_certs

    with tempfile.TemporaryDirectory(prefix="juki-certs-") as d:
        make_certs(Path(d), [])
        plain = await throughput(seconds, tls_dir=None)
        tls = await throughput(seconds, tls_dir=Path(d))
    return {"plain_msg_s": round(plain, 1), "tls_msg_s": round(tls, 1),
            "tls_over_plain": round(tls / plain, 3) if plain else None, "seconds_each": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulators.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=200.0, help="messages per second (moderate)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--tolerance", type=float, default=0.2, help="allowed RSS growth (fraction)")
    p.add_argument("--compare-tls", type=float, metavar="SECONDS",
                   help="instead of a soak: closed-loop msg/s plain vs TLS, SECONDS each")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.compare_tls:
        print(json.dumps(asyncio.run(compare_tls(a.compare_tls))))
        return 0
    res = asyncio.run(soak(a.minutes, a.rate, every=a.every, tolerance=a.tolerance))
    if a.json:
        print(json.dumps(res))
    else:
        for s in res["samples"]:
            print(f"{s['t']:>8}s  rss {s['rss_mb']:>7} MB  fds {s['fds']:>4}  conns {s['connections']:>4}  "
                  f"accepted {s['accepted']}")
        print(f"answers {res['answers']}")
        print(f"RSS start {res['rss_start_mb']} MB, after warm-up {res['rss_early_mb']} MB, end "
              f"{res['rss_end_mb']} MB ({res['rss_growth']:+.1%}); fds {res['fds_early']} -> {res['fds_end']}: "
              f"{'flat' if res['flat'] else 'GROWING'}")
    return 0 if res["flat"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
