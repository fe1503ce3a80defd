"""`juki-harness bench gateway|peers|suite`: the gateway measured as a user runs it, next to its peers.

Why a separate process: the figure that matters is what `juki-harness serve` does, whatever the gateway's
code is today, so the command starts `serve` (fresh data dir, loopback only) as its own process, loads it from
a third process (``bench_load``: raw keep-alive client on uvloop) and reads the gateway's CPU and memory with
psutil on its pid, and the trace from its SQLite file (read-only) — no in-process shortcut.

Figures (`bench gateway`): accepted msg/s (closed loop, max rate: answers per second), sustained msg/s (a
message counts only once every relay it caused — records in the trace whose correlation_id is its MessageId,
cs -> pref for an IdentityNotice — is recorded; the number of relays per message is probed first), gateway
CPU µs per message (from the first message to the last relay), p50/p99 latency at half the sustained rate
(open model, ``bench_load.open_schedule``, late sends counted), RSS at start / after 10k / at end, rate per
decile of the run, trace bytes per message, load average, answers by status, GW-BUSY retries, and the
trace's hash chain verified over /trace/verify afterwards.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SUT_TOKEN = "sut-secret"  # serve --insecure-default-tokens: loopback only, a throwaway data dir
CONTROL_TOKEN = "control-secret"
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench-cache"
ID_BLOCK = 10_000_000  # MessageId block per phase: BENCH-{block*k + i}


def _progress(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ client

def _client_main(conn: Connection) -> None:
    """The load process: runs commands from ``conn`` on one event loop (uvloop when installed)."""
    import asyncio

    from simulators import bench_load as bl
    from simulators.bench import make_bodies

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        conn.send({"ready": True})
        while True:
            cmd: dict[str, Any] = await loop.run_in_executor(None, conn.recv)
            if cmd["op"] == "stop":
                return
            host, port, reqs = bl.requests_for(cmd["url"], cmd.get("token", SUT_TOKEN),
                                               make_bodies(cmd["start"], cmd["n"]))
            if cmd["op"] == "closed":
                with _no_collector():
                    elapsed, tally = await bl.closed_loop(host, port, reqs, cmd["connections"])
                conn.send({"elapsed": elapsed, **_tally(tally)})
            else:
                from hdrh.histogram import HdrHistogram

                with _no_collector():
                    res, tally = await bl.open_loop(host, port, reqs, cmd["rate"], cmd["connections"])
                def hist(seconds: list[float]) -> HdrHistogram:
                    h = HdrHistogram(1, 60_000_000, 3)
                    for s in seconds:
                        h.record_value(max(1, int(s * 1e6)))
                    return h

                h, hs = hist(res.latencies), hist(res.service)
                conn.send({"p50_ms": h.get_value_at_percentile(50) / 1000,
                           "service_p50_ms": hs.get_value_at_percentile(50) / 1000,
                           "service_p99_ms": hs.get_value_at_percentile(99) / 1000,
                           "p99_ms": h.get_value_at_percentile(99) / 1000, "max_ms": h.get_max_value() / 1000,
                           "late_sends": res.late, "max_late_ms": res.max_late_s * 1000,
                           "elapsed": res.elapsed_s, **_tally(tally)})

    asyncio.run(serve())


@contextmanager
def _no_collector() -> Iterator[None]:
    """No cyclic collection in the load generator while it sends: one of its full collections (its
    thousands of tasks) stalled every send for up to ~40 ms and showed as the *target's* latency. The phase
    is bounded (its messages are prepared), so memory stays bounded; collection resumes after."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _tally(t: Any) -> dict[str, Any]:
    return {"statuses": {str(k): v for k, v in t.statuses.items()}, "ok": t.ok, "busy_retries": t.busy_retries,
            "failed": t.failed}


class Client:
    """The load process seen from the driver."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, there = ctx.Pipe()
        self.proc = ctx.Process(target=_client_main, args=(there,), daemon=True)
        self.proc.start()
        self.conn.recv()

    def ask(self, **cmd: Any) -> dict[str, Any]:
        self.conn.send(cmd)
        answer: dict[str, Any] = self.conn.recv()
        return answer

    def close(self) -> None:
        with suppress(OSError):
            self.conn.send({"op": "stop"})
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()


# ------------------------------------------------------------------------------------------------ targets

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The first stdout line of ``proc`` as JSON, or RuntimeError after ``timeout`` / exit."""
    box: list[str] = []
    th = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    th.start()
    th.join(timeout)
    if not box or not box[0].strip():
        raise RuntimeError(f"process {proc.args!r} did not start within {timeout:.0f} s (exit {proc.poll()})")
    out: dict[str, Any] = json.loads(box[0])
    return out


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def gateway_process(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """`juki-harness serve` on a free loopback port with its trace in ``data_dir``."""
    exe = Path(sys.executable).with_name("juki-harness")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "conformance.cli"]
    err = (data_dir / "serve.err").open("w")
    proc = subprocess.Popen([*cmd, "serve", "--port", "0", "--data-dir", str(data_dir), "--json",
                             "--insecure-default-tokens"], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        yield proc, _read_json_line(proc, 60)
    finally:
        _stop(proc)
        err.close()


@contextmanager
def stub_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A bare aiohttp app answering 202 to POST /msg, in its own process."""
    proc = subprocess.Popen([sys.executable, "-m", "simulators.bench_serve", "stub"], stdout=subprocess.PIPE,
                            text=True)
    try:
        yield proc, str(_read_json_line(proc, 30)["url"])
    finally:
        _stop(proc)


def _stub_main() -> None:
    import asyncio

    from aiohttp import web

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/msg", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}/msg"}), flush=True)
        await asyncio.Event().wait()

    with suppress(KeyboardInterrupt):
        asyncio.run(run())


def mountebank_bin(install: bool = True, cache: Path = CACHE) -> tuple[Path | None, str]:
    """(path of `mb`, "") or (None, why not): installs npm's `mountebank` into ``cache`` on first use."""
    mb = cache / "mountebank" / "node_modules" / ".bin" / "mb"
    if mb.exists():
        return mb, ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "Mountebank cannot be installed: npm is not on PATH"
    if not install:
        return None, f"Mountebank is not installed in {mb.parent.parent.parent}"
    (cache / "mountebank").mkdir(parents=True, exist_ok=True)
    _progress(f"installing mountebank with npm into {cache / 'mountebank'} (first use)")
    try:
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache / "mountebank"),
                            "mountebank"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"Mountebank cannot be installed: {e}"
    if r.returncode != 0 or not mb.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        return None, f"Mountebank cannot be installed: npm exited {r.returncode}: {tail[0]}"
    return mb, ""


@contextmanager
def mountebank_process(mb: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`mb` on loopback with one imposter answering a fixed 202 with keep-alive."""
    admin, port = free_port(), free_port()
    log = mb.parent.parent.parent / "mb.log"
    proc = subprocess.Popen([str(mb), "start", "--port", str(admin), "--host", "127.0.0.1", "--localOnly",
                             "--logfile", str(log), "--loglevel", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        imposter = json.dumps({"protocol": "http", "port": port, "host": "127.0.0.1", "recordRequests": False,
                               "defaultResponse": {"statusCode": 202, "headers": {"Connection": "keep-alive"}}})
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{admin}/imposters", data=imposter.encode(),
                                             headers={"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Mountebank did not start (exit {proc.poll()}; see {log})") from None
                time.sleep(0.2)
        yield proc, f"http://127.0.0.1:{port}/msg"
    finally:
        _stop(proc)


# ------------------------------------------------------------------------------------------------ measures

class LoadAvg:
    """Samples the 1-minute load average every second while the run lasts."""

    def __init__(self) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._th.join(2)
        s = self.samples
        return {"start": round(s[0], 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def _rss_mb(pid: int) -> float:
    import psutil

    return round(float(psutil.Process(pid).memory_info().rss) / 2**20, 1)


def _relays(db: Path, start: int, n: int) -> int:
    """Trace records caused by messages BENCH-start .. start+n-1 (their correlation_id), read-only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
        row = c.execute("SELECT count(*) FROM trace WHERE correlation_id >= ? AND correlation_id < ?",
                        (f"BENCH-{start:09d}", f"BENCH-{start + n:09d}")).fetchone()
    return int(row[0])


def _wait_relays(db: Path, start: int, n: int, want: int, timeout: float) -> int:
    """Poll until ``want`` relays of the block are recorded (or ``timeout``); the count seen last."""
    deadline = time.monotonic() + timeout
    got = _relays(db, start, n)
    while got < want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = _relays(db, start, n)
    return got


def _verify(trace_url: str) -> dict[str, Any]:
    req = urllib.request.Request(trace_url.rstrip("/") + "/verify",
                                 headers={"Authorization": f"Bearer {CONTROL_TOKEN}"})
    out: dict[str, Any] = json.load(urllib.request.urlopen(req, timeout=600))
    return out


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.glob("trace.sqlite*"))


def _merge(into: dict[str, int], statuses: dict[str, int]) -> None:
    for k, v in statuses.items():
        into[k] = into.get(k, 0) + v


# ------------------------------------------------------------------------------------------------ gateway

def bench_gateway(messages: int | None = 20_000, duration: float | None = None, connections: int = 32,
                  open_seconds: float = 10.0, time_limit: float | None = None) -> dict[str, Any]:
    """`bench gateway`: see the module docstring. ``duration`` (s) replaces ``messages`` when given;
    ``time_limit`` (s) ends the closed loop early (the default run stays within 2 minutes on a slow gateway)."""
    load = LoadAvg()
    client = Client()
    try:
        with tempfile.TemporaryDirectory(prefix="juki-bench-") as tmp, gateway_process(Path(tmp)) as (proc, info):
            db, url = Path(info["trace_file"]), info["msg"]
            # probe: how many trace records (relays) one IdentityNotice causes, and warm the caches
            client.ask(op="closed", url=url, start=0, n=200, connections=4)
            time.sleep(1.0)
            per_msg = round(_wait_relays(db, 0, 200, 10**9, 1.0) / 200)
            rss_start, bytes_start = _rss_mb(proc.pid), _dir_bytes(Path(tmp))
            chunk = 10_000 if (duration or (messages or 0) >= 100_000) else max(200, (messages or 2000) // 10)
            start, sent, elapsed = ID_BLOCK, 0, 0.0
            statuses: dict[str, int] = {}
            busy = failed = 0
            rates: list[tuple[int, float]] = []
            rss_10k: float | None = None
            cpu0, t_first = _cpu_s(proc.pid), time.perf_counter()
            while ((sent < (messages or 0)) if duration is None else (time.perf_counter() - t_first < duration)) \
                    and (time_limit is None or time.perf_counter() - t_first < time_limit):
                n = chunk if duration is not None else min(chunk, (messages or 0) - sent)
                r = client.ask(op="closed", url=url, start=start + sent, n=n, connections=connections)
                sent += n
                elapsed += r["elapsed"]
                busy, failed = busy + r["busy_retries"], failed + r["failed"]
                _merge(statuses, r["statuses"])
                rates.append((n, n / r["elapsed"]))
                if rss_10k is None and sent >= 10_000:
                    rss_10k = _rss_mb(proc.pid)
                _progress(f"{sent} msgs, {n / r['elapsed']:.0f} msg/s, gateway RSS {_rss_mb(proc.pid)} MB")
            want = per_msg * sent
            got = _wait_relays(db, start, sent, want, 120.0)
            t_done = time.perf_counter()
            cpu = _cpu_s(proc.pid) - cpu0
            sustained_wall = t_done - t_first
            accepted = statuses.get("202", 0)
            sustained = sent / sustained_wall if got >= want else 0.0
            _progress(f"relays recorded {got}/{want}; open model at {sustained / 2:.0f} msg/s for {open_seconds} s")
            rate = max(50.0, sustained / 2)
            n_open = max(100, int(rate * open_seconds))
            op = client.ask(op="open", url=url, start=2 * ID_BLOCK, n=n_open, rate=rate, connections=connections)
            _merge(statuses, op["statuses"])
            _wait_relays(db, 2 * ID_BLOCK, n_open, per_msg * n_open, 60.0)
            rss_end = _rss_mb(proc.pid)
            trace_bytes = _dir_bytes(Path(tmp)) - bytes_start
            verify = _verify(info["trace"])
    finally:
        client.close()
    deciles = _deciles(rates)
    return {
        "target": "juki-harness serve (separate process)", "messages": sent, "connections": connections,
        "answers_by_status": statuses, "all_202": set(statuses) <= {"202"} and failed == 0,
        "busy_retries": busy + op["busy_retries"], "failed": failed + op["failed"],
        "accepted": accepted, "accepted_msgs_per_s": round(accepted / elapsed, 1),
        "relays_per_message": per_msg, "relays_recorded": got, "relays_expected": want,
        "sustained_msgs_per_s": round(sustained, 1),
        "gateway_cpu_us_per_msg": round(cpu / sent * 1e6, 1),
        "latency_rate_msgs_per_s": round(rate, 1), "latency_messages": n_open,
        "p50_ms": round(op["p50_ms"], 3), "p99_ms": round(op["p99_ms"], 3), "max_ms": round(op["max_ms"], 3),
        "late_sends": op["late_sends"], "max_late_ms": round(op["max_late_ms"], 2),
        "service_p50_ms": round(op["service_p50_ms"], 3), "service_p99_ms": round(op["service_p99_ms"], 3),
        "rss_mb_start": rss_start, "rss_mb_after_10k": rss_10k, "rss_mb_end": rss_end,
        "trace_bytes_per_message": round(trace_bytes / max(1, sent + n_open), 1),
        "trace_bytes_per_record": round(trace_bytes / max(1, (per_msg + 1) * (sent + n_open)), 1),
        "rate_deciles_msgs_per_s": deciles, "loadavg": load.stop(),
        "trace_verified": bool(verify.get("ok")), "trace_verify_count": verify.get("count"),
        "trace_commits": info.get("trace_commits"), "trace_sync_ms": info.get("trace_sync_ms"),
        "load_generator": "raw asyncio keep-alive client (uvloop) in its own process",
    }


def _deciles(rates: list[tuple[int, float]]) -> list[float]:
    """Msg/s per tenth of the run (chunks grouped in order by message count)."""
    total = sum(n for n, _ in rates)
    if not rates:
        return []
    bins: list[list[tuple[int, float]]] = [[] for _ in range(10)]
    seen = 0
    for n, r in rates:
        bins[min(9, seen * 10 // max(1, total))].append((n, r))
        seen += n
    return [round(sum(n for n, _ in b) / sum(n / r for n, r in b), 1) for b in bins if b]


# ------------------------------------------------------------------------------------------------ peers

def _closed_on(client: Client, url: str, pid: int, block: int, messages: int, connections: int) -> dict[str, Any]:
    client.ask(op="closed", url=url, start=block, n=min(500, messages), connections=connections)  # warm-up
    cpu0 = _cpu_s(pid)
    r = client.ask(op="closed", url=url, start=block + 1_000_000, n=messages, connections=connections)
    cpu = _cpu_s(pid) - cpu0
    return {"msgs_per_s": round(r["ok"] / r["elapsed"], 1), "cpu_us_per_msg": round(cpu / messages * 1e6, 1),
            "answers_by_status": r["statuses"], "busy_retries": r["busy_retries"], "failed": r["failed"],
            "all_202": set(r["statuses"]) <= {"202"} and r["failed"] == 0}


def bench_peers(messages: int = 10_000, connections: int = 32, mountebank: bool = True,
                mb_cache: Path = CACHE) -> dict[str, Any]:
    """`bench peers`: the same load (same bodies, same client) against the gateway, a stub and Mountebank."""
    load = LoadAvg()
    client = Client()
    out: dict[str, Any] = {"messages": messages, "connections": connections, "targets": {}, "notes": []}
    try:
        with tempfile.TemporaryDirectory(prefix="juki-bench-") as tmp, gateway_process(Path(tmp)) as (proc, info):
            _progress("gateway")
            out["targets"]["gateway"] = _closed_on(client, info["msg"], proc.pid, ID_BLOCK, messages, connections)
            out["trace_verified"] = bool(_verify(info["trace"]).get("ok"))
        with stub_process() as (sproc, url):
            _progress("bare aiohttp stub")
            out["targets"]["stub"] = _closed_on(client, url, sproc.pid, 2 * ID_BLOCK, messages, connections)
        mb, why = mountebank_bin(install=mountebank, cache=mb_cache) if mountebank else (None, "Mountebank "
                                                                                          "not requested")
        if mb is not None:
            try:
                with mountebank_process(mb) as (mproc, url):
                    _progress("Mountebank imposter")
                    out["targets"]["mountebank"] = _closed_on(client, url, mproc.pid, 3 * ID_BLOCK, messages,
                                                              connections)
            except RuntimeError as e:
                why = str(e)
        if why:
            out["notes"].append(f"{why}; compared with the stub alone")
    finally:
        client.close()
    t = out["targets"]
    gw = t["gateway"]["msgs_per_s"]
    out["gateway_over_stub"] = round(gw / t["stub"]["msgs_per_s"], 3)
    out["gateway_over_mountebank"] = round(gw / t["mountebank"]["msgs_per_s"], 3) if "mountebank" in t else None
    out["all_202"] = all(v["all_202"] for v in t.values())
    out["loadavg"] = load.stop()
    return out


# ------------------------------------------------------------------------------------------------ CLI

def _summary_gateway(r: dict[str, Any]) -> str:
    return "\n".join([
        f"gateway bench: {r['messages']} messages over {r['connections']} connections",
        f"  accepted   {r['accepted_msgs_per_s']} msg/s   sustained (relays recorded {r['relays_recorded']}/"
        f"{r['relays_expected']}) {r['sustained_msgs_per_s']} msg/s",
        f"  CPU        {r['gateway_cpu_us_per_msg']} µs/msg (gateway process)",
        f"  latency    p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms at {r['latency_rate_msgs_per_s']} msg/s "
        f"(open model, {r['late_sends']} late sends); from the actual send p50 {r['service_p50_ms']} ms  "
        f"p99 {r['service_p99_ms']} ms",
        f"  memory     RSS {r['rss_mb_start']} -> {r['rss_mb_after_10k']} (10k) -> {r['rss_mb_end']} MB",
        f"  trace      {r['trace_bytes_per_message']} B/msg, {r['trace_bytes_per_record']} B/record, "
        f"verified {r['trace_verified']}; commits {r['trace_commits']} (fsync probe {r['trace_sync_ms']} ms)",
        f"  deciles    {r['rate_deciles_msgs_per_s']}",
        f"  answers    {r['answers_by_status']}  GW-BUSY retries {r['busy_retries']}  all 202 {r['all_202']}",
        f"  loadavg    {r['loadavg']}"])


def _summary_peers(r: dict[str, Any]) -> str:
    lines = [f"peers bench: {r['messages']} messages each over {r['connections']} connections"]
    for name, v in r["targets"].items():
        lines.append(f"  {name:<11}{v['msgs_per_s']:>10} msg/s  {v['cpu_us_per_msg']:>8} µs/msg  "
                     f"answers {v['answers_by_status']}")
    lines.append(f"  gateway/stub {r['gateway_over_stub']}  gateway/Mountebank {r['gateway_over_mountebank']}  "
                 f"all 202 {r['all_202']}  trace verified {r['trace_verified']}  loadavg {r['loadavg']}")
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "suite":
        from conformance.suite_bench import run_suite_bench

        print(json.dumps(run_suite_bench(runs=args.runs, concurrency=args.concurrency or 8), ensure_ascii=False))
        return 0
    if args.what == "gateway":
        r = bench_gateway(messages=args.messages or 20_000, duration=args.duration, connections=args.connections,
                          time_limit=75.0 if args.messages is None and args.duration is None else None)
        print(json.dumps(r, ensure_ascii=False) if args.json else _summary_gateway(r))
        return 0 if r["all_202"] and r["trace_verified"] and r["sustained_msgs_per_s"] > 0 else 1
    r = bench_peers(messages=args.messages or 10_000, connections=args.connections,
                    mountebank=not args.no_mountebank)
    print(json.dumps(r, ensure_ascii=False) if args.json else _summary_peers(r))
    return 0 if r["all_202"] and r["trace_verified"] else 1


def add_parser(subparsers: Any) -> None:
    """Register `bench` with ``conformance.cli``."""
    b = subparsers.add_parser("bench", help="benchmarks: the gateway (`serve` as its own process), the gateway "
                                            "next to a stub and Mountebank, the whole suite")
    b.add_argument("what", choices=["gateway", "peers", "suite"])
    b.add_argument("--messages", type=int, default=None, help="gateway: 20000; peers: 10000 per target")
    b.add_argument("--duration", type=float, default=None, help="gateway: run for S seconds instead")
    b.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    b.add_argument("--json", action="store_true", help="one JSON object instead of the summary")
    b.add_argument("--no-mountebank", action="store_true", help="peers: compare with the stub only")
    b.add_argument("--runs", type=int, default=3, help="suite: runs")
    b.add_argument("--concurrency", type=int, default=None, help="suite: scenarios at once (8)")
    b.set_defaults(func=_cmd_bench)


if __name__ == "__main__" and sys.argv[1:2] == ["stub"]:
    _stub_main()
