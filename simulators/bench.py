"""In-process benchmark of the gateway against its own ``/direct/cs`` path (a profiling aid).

`juki-harness bench gateway|peers` no longer runs this: it measures `serve` as its own process
(``simulators.bench_serve``). This module stays for ``python -m simulators.bench`` (cProfile of the hot path
next to the direct path) and for the bench bodies (``make_bodies``, ``bench_ids``) both share.

Why this shape: the moving-season peak must not be limited by the gateway. The figure that matters is what
one core does with everything the gateway promises (hardened parse, XSD, rules, arrow, tenant, faults,
durable trace record before the 202, in-order delivery to the simulator), compared with the same bodies
handed straight to the same simulator (``/direct/cs``: parse and deliver, nothing validated or recorded).

How: the gateway runs in this process with a file trace (SQLite WAL, synchronous=FULL) in a temporary
directory, pinned to core 0 when ``os.sched_setaffinity`` allows — pinned before the trace writer thread
starts, so the writer's SQLite work and fsyncs share that one core (``server_threads_pinned`` checks every
thread of the process at the end); the load comes from a separate process
(multiprocessing, spawn) pinned to core 1, over keep-alive aiohttp connections on loopback. Bodies are valid
IdentityNotice envelopes (juki -> cs, arrow 8) of about 2 KB, one new person per message (Change/Seq 1).

What is included, honestly: cs relays every IdentityNotice to pref (8 -> 5) through the gateway, which
validates and records that relay too. This happens in the background for both paths (gateway and direct),
on the same core, so both rates include it. The bodies' identifiers are registered to ``tenants`` fault-free
tenants before the run, so relays of different tenants are pipelined (the CS relays one tenant's messages
on one arrow in order). ``relay_drain_s`` says how long after the last answer the last relay was recorded.

Rates: ``gateway_msgs_per_s`` / ``direct_msgs_per_s`` count answers (202) per second of the closed loop;
the relays they cause may still be queued then. ``*_sustained_msgs_per_s`` divide the messages by the loop
time plus the relay drain (everything done, relays included), and ``traced_records_per_s`` counts every
trace record committed in that time (messages and their relays; on the direct path only the relays).

Per run: closed-loop throughput through ``/msg`` and through ``/direct/cs`` (order alternates per run), then
an open-loop latency run at half the measured gateway rate on each path (latency measured from the scheduled
send time, so a stall is not hidden). Added latency = gateway percentile minus direct percentile. Figures are
medians over runs.

API::

    run_gateway_bench(messages=20000, concurrency=64, runs=3, pin=True, profile=None, tenants=16) -> dict
    python -m simulators.bench [messages] [concurrency] [runs]
"""

from __future__ import annotations

import asyncio
import cProfile
import multiprocessing as mp
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulators.bench_load import RawHttp, connect, requests_for

if TYPE_CHECKING:
    from simulators.base import Simulator
    from simulators.gateway import Gateway

ID_BLOCK = 1_000_000  # messages per (run, phase) id block: identifiers never repeat across phases
_TOKEN = "sut-secret"
_CONTROL_TOKEN = "control-secret"  # /direct takes the control token only


def _token(url: str) -> str:
    return _CONTROL_TOKEN if "/direct/" in url else _TOKEN


# ------------------------------------------------------------------------------------------------ bodies

def bench_ids(i: int) -> tuple[str, str, str]:
    """(MessageId, 住民票コード, 個人番号) of bench message ``i``: valid check digits, unique per i."""
    from conformance.identifiers import make_juminhyo_code, make_my_number

    return f"BENCH-{i:09d}", make_juminhyo_code(f"7{i:09d}"), make_my_number(f"5{i:010d}")


@cache
def _template() -> tuple[str, tuple[str, str, str]]:
    """A ~2 KB IdentityNotice envelope (juki -> cs), pretty-printed, with placeholders for the ids."""
    from lxml import etree

    from conformance.samples import sample
    from conformance.xmlsafe import q

    best = max((sample("IdentityNotice", s) for s in range(1, 40)), key=len)
    root = etree.fromstring(best)
    marks = ("@@MID@@", "@@JC@@", "@@MN@@")
    mid = root.find(f"{q('Header')}/{q('MessageId')}")
    ident = root.find(f"{q('Body')}/{q('IdentityNotice')}/{q('Identity')}")
    seq = root.find(f"{q('Body')}/{q('IdentityNotice')}/{q('Change')}/{q('Seq')}")
    assert mid is not None and ident is not None and seq is not None
    mid.text = marks[0]
    jc, mn = ident.find(q("JuminhyoCode")), ident.find(q("MyNumber"))
    assert jc is not None
    jc.text = marks[1]
    if mn is None:
        mn = etree.Element(q("MyNumber"))
        jc.addnext(mn)
    mn.text = marks[2]
    seq.text = "1"
    etree.indent(root, space="    ")
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
    return text, marks


def make_bodies(start: int, n: int) -> list[bytes]:
    """Bench messages start .. start+n-1 as bytes (built before any timing starts)."""
    text, (m_mid, m_jc, m_mn) = _template()
    out = []
    for i in range(start, start + n):
        mid, jc, mn = bench_ids(i)
        out.append(text.replace(m_mid, mid).replace(m_jc, jc).replace(m_mn, mn).encode("utf-8"))
    return out


# ------------------------------------------------------------------------------------------------ client

def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return []


def _threads_pinned(core: int | None) -> bool | None:
    """Whether every thread of this process (trace writer, executors) is on ``core`` only; None if unknown."""
    if core is None:
        return None
    try:
        return all(os.sched_getaffinity(int(t)) == {core} for t in os.listdir("/proc/self/task"))
    except (AttributeError, OSError, ValueError):
        return None


def _pin(core: int | None) -> bool:
    """Pin this process (and the threads it starts later) to ``core``; False where that is not possible."""
    if core is None:
        return False
    try:
        os.sched_setaffinity(0, {core})
        return True
    except (AttributeError, OSError):
        return False


async def _closed_loop_raw(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    host, port, reqs = requests_for(url, _token(url), bodies)
    conns = [await connect(host, port) for _ in range(concurrency)]
    it = iter(reqs)
    lat: list[float] = []
    errors = 0

    async def worker(c: RawHttp) -> None:
        nonlocal errors
        for req in it:
            t0 = time.perf_counter()
            if (await c.post(req))[0] >= 300:
                errors += 1
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return elapsed, lat, errors


async def _open_loop_raw(url: str, bodies: list[bytes], rate: float) -> tuple[list[float], int, float]:
    """Open loop over a pool of raw connections (a free connection per message, new ones when needed)."""
    host, port, reqs = requests_for(url, _token(url), bodies)
    free = [await connect(host, port) for _ in range(64)]
    lat: list[float] = []
    errors = 0

    async def one(req: bytes, due: float) -> None:
        nonlocal errors
        c = free.pop() if free else await connect(host, port)
        try:
            if (await c.post(req))[0] >= 300:
                errors += 1
        finally:
            free.append(c)
        lat.append(time.perf_counter() - due)

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.05
    late = 0.0
    for i, req in enumerate(reqs):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late = max(late, -delay)
        tasks.append(asyncio.create_task(one(req, due)))
    await asyncio.gather(*tasks)
    for c in free:
        if c.transport is not None:
            c.transport.close()
    return lat, errors, late


async def _closed_loop(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """Every worker posts its next body as soon as the previous answer is in; (elapsed, latencies, errors)."""
    import aiohttp

    it: Iterator[bytes] = iter(bodies)
    lat: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {_token(url)}", "Content-Type": "application/xml"}
    conn = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:

        async def worker() -> None:
            nonlocal errors
            for body in it:
                t0 = time.perf_counter()
                async with http.post(url, data=body) as r:
                    await r.read()
                    if r.status >= 300:
                        errors += 1
                lat.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return elapsed, lat, errors


async def _open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[list[float], int, float]:
    """Send at a fixed rate whatever the answers do; latency from each message's scheduled time."""
    import aiohttp

    lat: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {_token(url)}", "Content-Type": "application/xml"}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:

        async def one(body: bytes, due: float) -> None:
            nonlocal errors
            async with http.post(url, data=body) as r:
                await r.read()
                if r.status >= 300:
                    errors += 1
            lat.append(time.perf_counter() - due)

        # warm the connection pool so the first messages do not pay for TCP handshakes
        await asyncio.gather(*(one(b, time.perf_counter()) for b in bodies[:32]))
        lat.clear()
        tasks: list[asyncio.Task[None]] = []
        t0 = time.perf_counter() + 0.05
        late = 0.0
        for i, body in enumerate(bodies[32:]):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
    return lat, errors, late


def _client_main(conn: Connection, base_url: str, core: int | None) -> None:
    """The load process: waits for commands on ``conn`` and answers with measurements."""
    pinned = _pin(core)
    conn.send({"ready": True, "pinned": pinned})
    while True:
        cmd = conn.recv()
        if cmd["op"] == "stop":
            return
        bodies = make_bodies(cmd["start"], cmd["n"])
        url = base_url + cmd["path"]
        raw = cmd.get("client", "raw") == "raw"
        if cmd["op"] == "closed":
            closed = _closed_loop_raw if raw else _closed_loop
            elapsed, lat, errors = asyncio.run(closed(url, bodies, cmd["concurrency"]))
            conn.send({"elapsed": elapsed, "n": len(bodies), "errors": errors, "p50": _pct(lat, 50)})
        else:
            lat, errors, late = asyncio.run((_open_loop_raw if raw else _open_loop)(url, bodies, cmd["rate"]))
            conn.send({"n": len(lat), "errors": errors, "p50": _pct(lat, 50), "p99": _pct(lat, 99),
                       "max": max(lat) if lat else 0.0, "client_late_s": late})


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


# ------------------------------------------------------------------------------------------------ server

class _Bench:
    def __init__(self, messages: int, concurrency: int, runs: int, tenants: int, pin: bool,
                 profile: str | None, memory_trace: bool = False, client: str = "raw",
                 simulators: Mapping[str, Callable[[Gateway], Simulator]] | None = None) -> None:
        self.messages, self.concurrency, self.runs, self.tenants = messages, concurrency, runs, tenants
        self.pin, self.profile = pin, profile
        self.memory_trace, self.simulators, self.client = memory_trace, simulators, client

    async def _ask(self, conn: Connection, cmd: dict[str, Any]) -> dict[str, Any]:
        conn.send({**cmd, "client": self.client})
        loop = asyncio.get_running_loop()
        answer: dict[str, Any] = await loop.run_in_executor(None, conn.recv)
        return answer

    async def run(self) -> dict[str, Any]:
        from simulators.config import load_config
        from simulators.runtime import Runtime

        cores = _cores()
        server_core, client_core = (cores[0], cores[1]) if self.pin and len(cores) >= 2 else (None, None)
        # Pin before anything starts a thread (the trace writer, the executor): threads inherit the mask, so
        # the whole gateway process, writer thread included, runs on one core.
        pinned = _pin(server_core)
        results: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="juki-bench-") as tmp:
            cfg = load_config(None, data_dir=Path(tmp), port=0)
            async with Runtime(cfg, memory_trace=self.memory_trace, simulators=self.simulators) as rt:
                gw = rt.gateway
                tids = [gw.create_tenant(f"bench-{k}", peers=0).id for k in range(self.tenants)]
                ctx = mp.get_context("spawn")
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_client_main, args=(there, rt.gateway_url, client_core),
                                   daemon=True)
                proc.start()
                try:
                    hello = await asyncio.get_running_loop().run_in_executor(None, here.recv)
                    block = 0

                    def ids(n: int) -> int:
                        nonlocal block
                        block += 1
                        start = block * ID_BLOCK
                        for i in range(start, start + n):
                            gw.register(tids[i % len(tids)], bench_ids(i)[1])
                        return start

                    async def closed(path: str, profile: bool = False) -> tuple[float, float, float]:
                        n = self.messages
                        start = ids(n)
                        relays_before = gw.accepted.get(5, 0)
                        records_before = len(gw.store)
                        prof = cProfile.Profile() if profile else None
                        if prof is not None:
                            prof.enable()
                        res = await self._ask(here, {"op": "closed", "path": path, "start": start, "n": n,
                                                     "concurrency": self.concurrency})
                        t_done = time.perf_counter()
                        if prof is not None:
                            prof.disable()
                            prof.dump_stats(str(self.profile))
                            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
                        while relaying and gw.accepted.get(5, 0) < relays_before + n \
                                and time.perf_counter() - t_done < 120:
                            await asyncio.sleep(0.01)
                        drain = time.perf_counter() - t_done
                        if res["errors"]:
                            raise RuntimeError(f"{res['errors']} of {n} messages to {path} failed")
                        records = len(gw.store) - records_before  # committed: messages and relays
                        return n / res["elapsed"], drain, records / (res["elapsed"] + drain)

                    async def open_(path: str, rate: float) -> dict[str, Any]:
                        n = max(1000, min(self.messages, int(rate * 4)))
                        before, t0 = gw.accepted.get(5, 0), time.perf_counter()
                        res = await self._ask(here, {"op": "open", "path": path, "start": ids(n), "n": n,
                                                     "rate": rate})
                        while relaying and gw.accepted.get(5, 0) < before + n - 32 \
                                and time.perf_counter() - t0 < 60:
                            await asyncio.sleep(0.01)  # let the relays drain before the next phase
                        return res

                    relaying = True
                    await self._ask(here, {"op": "closed", "path": "/msg", "start": ids(100), "n": 100,
                                           "concurrency": 8})
                    await asyncio.sleep(0.5)
                    relaying = gw.accepted.get(5, 0) > 0  # does cs relay to pref (the real simulator)?
                    await closed("/msg")  # warm-up: schema, caches, connections
                    await closed("/direct/cs")
                    for r in range(self.runs):
                        order = ("/msg", "/direct/cs") if r % 2 == 0 else ("/direct/cs", "/msg")
                        rates: dict[str, tuple[float, float, float]] = {}
                        for path in order:
                            rates[path] = await closed(path, profile=bool(self.profile) and r == 0
                                                       and path == "/msg")
                        half = rates["/msg"][0] / 2
                        lat_gw = await open_("/msg", half)
                        lat_direct = await open_("/direct/cs", half)
                        results.append({
                            "gateway_msgs_per_s": rates["/msg"][0],
                            "direct_msgs_per_s": rates["/direct/cs"][0],
                            "relay_drain_gateway_s": rates["/msg"][1],
                            "relay_drain_direct_s": rates["/direct/cs"][1],
                            "gateway_sustained_msgs_per_s": self.messages / (self.messages / rates["/msg"][0]
                                                                             + rates["/msg"][1]),
                            "direct_sustained_msgs_per_s": self.messages / (
                                self.messages / rates["/direct/cs"][0] + rates["/direct/cs"][1]),
                            "traced_records_per_s": rates["/msg"][2],
                            "direct_traced_records_per_s": rates["/direct/cs"][2],
                            "latency_rate": half, "gateway_p50_ms": lat_gw["p50"] * 1000,
                            "gateway_p99_ms": lat_gw["p99"] * 1000, "direct_p50_ms": lat_direct["p50"] * 1000,
                            "direct_p99_ms": lat_direct["p99"] * 1000,
                            "p50_added_ms": (lat_gw["p50"] - lat_direct["p50"]) * 1000,
                            "p99_added_ms": (lat_gw["p99"] - lat_direct["p99"]) * 1000,
                            "latency_errors": lat_gw["errors"] + lat_direct["errors"],
                            "client_late_ms": max(lat_gw["client_late_s"],
                                                  lat_direct["client_late_s"]) * 1000,
                        })
                    here.send({"op": "stop"})
                    threads_pinned = _threads_pinned(server_core)
                    verify = await gw.store.verify()
                finally:
                    proc.join(timeout=10)
                    if proc.is_alive():
                        proc.kill()
                trace_records = len(gw.store)

        def med(key: str) -> float:
            return round(float(statistics.median(float(r[key]) for r in results)), 3)

        out: dict[str, Any] = {k: med(k) for k in results[0]}
        out["ratio"] = round(out["gateway_msgs_per_s"] / out["direct_msgs_per_s"], 3)
        out.update({
            "messages": self.messages, "concurrency": self.concurrency, "runs": self.runs,
            "tenants": self.tenants, "server_pinned": pinned, "server_threads_pinned": threads_pinned,
            "client_pinned": bool(hello.get("pinned")),
            "cpus": len(cores) or os.cpu_count(),
            "trace_records": trace_records, "trace_verified": verify.ok,
            "body_bytes": len(make_bodies(0, 1)[0]),
            "included": "hardened parse, XSD, rules, arrow, tenant, faults, durable SQLite record "
                        "(fsync) before 202, in-order delivery to cs; cs relays to pref (validated+traced; "
                        "the relay's envelope is validated as built, not re-parsed) on both paths; the "
                        "whole gateway process (trace writer thread included) pinned to one core; "
                        "msgs_per_s = answers/s of the closed loop, sustained = incl. the relay drain, "
                        "traced_records_per_s = records committed incl. relays",
            "per_run": results,
        })
        return out


def run_gateway_bench(*, messages: int = 20_000, concurrency: int = 64, runs: int = 3, pin: bool = True,
                      profile: str | None = None, tenants: int = 16) -> dict[str, Any]:
    """Run the benchmark and return its figures (see the module docstring)."""
    return asyncio.run(_Bench(messages, concurrency, runs, tenants, pin, profile).run())


def main(argv: list[str] | None = None) -> None:
    import json

    a = sys.argv[1:] if argv is None else argv
    res = run_gateway_bench(messages=int(a[0]) if a else 20_000, concurrency=int(a[1]) if len(a) > 1 else 64,
                            runs=int(a[2]) if len(a) > 2 else 3)
    print(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    main()
