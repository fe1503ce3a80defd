"""``juki-harness load``: start the harness, prepare a plan, run Locust on it, check the trace, write the report.

Why Locust runs as a subprocess: Locust is gevent (it monkey-patches the standard library) while the gateway,
the simulators and the reference SUT are asyncio; one process cannot host both. A subprocess also gives
master + workers for free (``--workers N``) and Locust's own CSV/HTML. This process hosts the harness,
samples CPU (psutil) and the gateway's delivery lanes, runs conformance samples beside the load, and judges.

Why our own SUTs (``--sut reference``, ``--sut stub``) run as child processes too: in the harness process
they share its one event loop and one core, so a run could not say whether the gateway or the SUT ran out of
CPU (and the cascade rate was capped at one core for both); as a child each has its own core and its own CPU
series, as a vendor's system would. Their output goes, masked, to ``sut.log`` in the out folder.

API::

    LoadOptions(...)                      what the command line asks
    await run_load(opts, out=print) -> LoadOutcome     never raises for a SUT problem (that is a verdict)
    LoadOutcome.exit_code                 0 ok, 1 a threshold or conformance under load failed
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from conformance.engine import Engine, Harness
from conformance.errors import fail
from load.checks import TraceVerdict, check_trace
from load.model import Action, LoadModel, Scale
from load.plan import DRIVEN, JST, Planner, Tenant
from load.stats import Stats, Threshold, parse_threshold
from simulators.collector import CollectorSchedule
from simulators.config import HarnessConfig
from simulators.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SUT_READY_TIMEOUT = 20.0  # seconds for a SUT child to answer GET /health (a cold Python start on a busy box)
SUT_STOP_GRACE = 5.0      # seconds between SIGTERM and SIGKILL
#: identifiers per control-API registration (a national day registers ≈ 1 million)
REGISTER_BATCH = 10_000
#: the answer's Status, Code and Message (why a fixture was not recorded)
_ANSWER = re.compile(r"<Status>([^<]*)</Status>(?:\s*<Code>([^<]*)</Code>)?(?:\s*<Message>([^<]*)</Message>)?")
_IDNO = re.compile(r"<Label>識別番号:(\d{11})</Label>\s*<Value>([^<]+)</Value>")
DEFAULT_SAMPLES = ("F01-P01", "F03-P01", "F07-P01", "F08-P01", "F20-P01")


@dataclass
class LoadOptions:
    sut: str = "reference"
    profile: str = "peak-day"
    scale: str = "municipality:100000"
    day: date = date(2026, 3, 30)
    compress: float = 600.0
    duration: float | None = None
    rate: float | None = None
    workers: int = 0
    web: bool = False
    web_port: int = 8089
    thresholds: Sequence[str] = ()
    out: Path = Path("load-results")
    seed: int = 1
    config: str | None = None
    samples: Sequence[str] = DEFAULT_SAMPLES
    cascade_timeout: float = 30.0
    late_ms: float = 100.0
    max_inflight: int = 1000
    setup_concurrency: int = 16


@dataclass
class LoadOutcome:
    stats: Stats
    thresholds: list[tuple[Threshold, bool, float]] = field(default_factory=list)
    trace: TraceVerdict | None = None
    conformance: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    sut_process: str | None = None  # the SUT child's command (tokens left out); None: a vendor's URL
    collector: dict[str, float] = field(default_factory=dict)  # the gateway's collector (CollectorSchedule)

    @property
    def conformance_ok(self) -> bool:
        return all(r["verdict"] == "pass" for r in self.conformance)

    @property
    def exit_code(self) -> int:
        if self.error:
            return 2
        failed = any(not ok for _, ok, _ in self.thresholds)
        trace_bad = self.trace is not None and not self.trace.ok
        return 1 if failed or trace_bad or not self.conformance_ok else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def harness_and_sut(opts: LoadOptions, data_dir: Path, log_dir: Path | None = None
                          ) -> AsyncIterator[tuple[Runtime, SutChild | None]]:
    """The harness and, for ``reference``/``stub``, the SUT child it talks to (None for a vendor's URL).

    The child's log goes to ``log_dir/sut.log`` (default ``data_dir``); it is stopped on the way out, whatever
    happens (error, cancel)."""
    from simulators.config import load_config

    # a vendor's SUT sends to the gateway's configured port; our own SUTs learn an ephemeral one
    cfg = load_config(opts.config, data_dir=data_dir, port=None if opts.sut.startswith("http") else 0)
    if cfg.gateway.tls_cert is not None:
        raise fail("LOAD-TLS", "the load test drives the gateway over plain HTTP on 127.0.0.1 (its Locust "
                   "processes and our own SUTs hold no CA for the gateway's certificate): run it with a config "
                   "without [gateway] tls_cert; TLS itself is checked by `juki-harness certify` "
                   "(docs/security.md)")
    if opts.sut in ("reference", "stub"):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        async with Runtime(cfg.with_sut(inbound_url=f"{url}/inbound", counter_url=f"{url}/counter")) as rt:
            cmd = sut_command(opts.sut, rt.config, rt.gateway_url, port, cfg.gateway.data_dir)
            async with sut_child(cmd, url, (log_dir or data_dir) / "sut.log") as child:
                yield rt, child
    elif opts.sut.startswith(("http://", "https://")):
        url = opts.sut.rstrip("/")
        async with Runtime(cfg.with_sut(inbound_url=f"{url}/inbound", counter_url=f"{url}/counter")) as rt:
            yield rt, None
    else:
        raise fail("LOAD-SUT", f"--sut {opts.sut!r}: use reference, stub or the SUT's base URL (http://…)")


def sut_command(kind: str, cfg: HarnessConfig, gateway_url: str, port: int, data_dir: Path) -> list[str]:
    """The command line of our own SUT, wired as runtime._reference_sut wires the in-process one: the harness
    config's 全国地方公共団体コード and tokens, plain HTTP on 127.0.0.1, its register under ``data_dir``."""
    common = ["--port", str(port), "--host", "127.0.0.1", "--gateway-url", gateway_url,
              "--lg-code", cfg.sut.lg_code, "--token", cfg.sut.token,
              "--inbound-token", cfg.gateway.tokens.gateway_to_sut]
    if kind == "reference":  # what the console entry `juki-harness reference-sut` runs
        return [sys.executable, "-m", "conformance.cli", "reference-sut", *common,
                "--data-dir", str(data_dir / "reference")]
    if kind == "stub":
        return [sys.executable, "-m", "simulators.stub", *common]
    raise fail("LOAD-SUT", f"no SUT process for {kind!r} (reference or stub)")


@dataclass
class SutChild:
    """Our own SUT in its own process: the command, the process, its base URL and the end of its output."""

    cmd: list[str]
    url: str
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=30))

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def shown(self) -> str:
        """The command for a message: the tokens' values left out, masked like a log line."""
        from conformance.masking import mask_personal

        words = [("…" if i and self.cmd[i - 1] in ("--token", "--inbound-token") else w)
                 for i, w in enumerate(self.cmd)]
        return mask_personal(" ".join(words).replace(sys.executable, "python"))

    def exited(self) -> str | None:
        """Why the child is gone (exit code and the end of its output), or None while it runs."""
        if self.proc is None or self.proc.returncode is None:
            return None
        return (f"the SUT process ({self.shown()}) exited with code {self.proc.returncode}; the end of its "
                f"output ({self.log_path}):\n" + "\n".join(self.tail))


@contextlib.asynccontextmanager
async def sut_child(cmd: list[str], url: str, log_path: Path,
                    ready_timeout: float = SUT_READY_TIMEOUT) -> AsyncIterator[SutChild]:
    """Start ``cmd``, wait until ``url``/health answers, yield; SIGTERM (then SIGKILL) it on the way out.

    Its stdout and stderr are read here line by line, masked (個人番号, 住民票コード) and written to
    ``log_path``: whatever the child prints — a traceback included — never reaches the file in clear."""
    from conformance.masking import mask_personal

    child = SutChild(cmd, url, log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w", encoding="utf-8")

    async def pump(stream: asyncio.StreamReader | None) -> None:
        buf = b""
        while stream is not None:
            chunk = await stream.read(65536)
            if chunk:
                *lines, buf = (buf + chunk).split(b"\n")
                if len(buf) > 1 << 20:  # no newline for 1 MB: write what there is
                    lines, buf = [*lines, buf], b""
            else:
                lines, buf = [buf], b""
            for raw in lines:
                if raw.strip():
                    line = mask_personal(raw.decode("utf-8", "replace").rstrip("\r"))
                    log.write(line + "\n")
                    child.tail.append(line)
            log.flush()
            if not chunk:
                return

    pumps: list[asyncio.Task[None]] = []
    try:
        child.proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        pumps = [asyncio.create_task(pump(child.proc.stdout)), asyncio.create_task(pump(child.proc.stderr))]
        await _wait_ready(child, pumps, ready_timeout)
        yield child
    finally:
        try:
            await _stop(child.proc)
        finally:
            for t in pumps:
                t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            log.close()


async def _wait_ready(child: SutChild, pumps: Sequence[asyncio.Task[None]], timeout: float) -> None:
    """Until GET /health answers 200; a clear LOAD-SUT error if the child exits first or time runs out."""
    assert child.proc is not None
    end = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{child.url}/health") as resp:
                    if resp.status == 200:
                        return
            if child.proc.returncode is not None or time.monotonic() >= end:
                break
            await asyncio.sleep(0.1)
    if child.proc.returncode is not None:
        await asyncio.wait(pumps, timeout=2.0)  # the last lines it wrote, for the message
    why = child.exited() or (f"the SUT process ({child.shown()}) did not answer GET {child.url}/health within "
                             f"{timeout:g} s; the end of its output ({child.log_path}):\n" + "\n".join(child.tail))
    raise fail("LOAD-SUT", why)


async def _stop(proc: asyncio.subprocess.Process | None) -> None:
    """SIGTERM, up to SUT_STOP_GRACE s to finish, then SIGKILL — also when this task is cancelled meanwhile."""
    if proc is None:
        return
    try:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=SUT_STOP_GRACE)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())


async def run_setup(h: Harness, tenant: Tenant, planner: Planner, actions: Sequence[Action],
                     concurrency: int) -> tuple[int, list[str]]:
    """The fixtures, before the clock starts: the pooled persons, then each action's own (職権記載, and a 転出
    for a 転出証明書情報 request, in order), built one action at a time so that neither time nor memory
    grows with the plan; then the kiosk users' cards at the centre (by the 識別番号 the SUT printed on the
    処理票). Returns the operations sent and the failures."""
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    idno: dict[str, str] = {}
    sent = 0

    async def run(steps: list[dict[str, Any]]) -> None:
        try:
            for step in steps:
                status, body = await h.counter(tenant.tenant, step["body"].encode("utf-8"))
                if status != 200 or b"<Status>accepted</Status>" not in body:
                    why = _ANSWER.search(body.decode("utf-8", "replace"))
                    errors.append(f"{step['op']}: HTTP {status}" + (
                        f", {why.group(1)} {why.group(2) or ''} {why.group(3) or ''}".rstrip() if why else ""))
                    return
                for code, number in _IDNO.findall(body.decode("utf-8", "replace")):
                    idno[code] = number
        finally:
            sem.release()

    # Every person's identifiers belong to the load tenant for the whole run. Learned from traffic they are
    # kept in a bounded window only: during a national day's set-up the SUT's messages lag its answers by
    # tens of thousands of fixtures, and a notice that arrived after its person left that window went to no
    # tenant (its prefecture never knew the person: NAT-NOT-FOUND hours later).
    ids = [v for a in actions for v in planner.ids(a)]
    for i in range(0, len(ids), REGISTER_BATCH):
        await h.register(tenant.tenant, ids[i:i + REGISTER_BATCH])
    tasks: set[asyncio.Task[None]] = set()
    for steps in itertools.chain(([s] for s in planner.pool_fixtures(actions)),
                                 (planner.fixtures(a) for a in actions)):
        if not steps:
            continue
        await sem.acquire()
        sent += len(steps)
        task = asyncio.create_task(run(steps))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    wanted = planner.centre_cards(actions)
    cards = [{"cert_serial": serial, "identification_no": idno[code], "lg_code": tenant.sut_lg}
             for code, serial in wanted if code in idno]
    if len(cards) < len(wanted):
        errors.append(f"{len(wanted) - len(cards)} kiosk user(s) got no 識別番号 from the SUT")
    if cards:
        await h.seed(tenant.tenant, {"actor": "centre", "lg_code": tenant.sut_lg, "kind": "cards",
                                     "data": {"cards": cards}})
    return sent, errors


async def _quiet(h: Harness, tenant: str, quiet: float = 0.5, limit: float = 20.0) -> int:
    """The trace's last seq once it has stopped growing for ``quiet`` s (the fixtures' cascades are done), or
    after ``limit`` s. Why it matters: the trace check counts the run's messages after this mark, and a
    fixture's 本人確認情報通知 still arriving after it would count as its action's duplicate."""
    end = time.monotonic() + limit
    last = await h.last_seq(tenant)
    while time.monotonic() < end:
        await asyncio.sleep(quiet)
        now = await h.last_seq(tenant)
        if now == last:
            return now
        last = now
    return last


def locust_commands(opts: LoadOptions, plan_path: Path, out: Path) -> list[list[str]]:
    """The Locust command lines: one process, or a master and ``workers`` workers on loopback (paths absolute:
    Locust runs in the repository folder)."""
    out = out.resolve()
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--csv", str(out / "locust"),
            "--html", str(out / "locust.html"), "--loglevel", "WARNING"]
    ui = (["--web-host", "127.0.0.1", "--web-port", str(opts.web_port), "--autostart", "--autoquit", "5"]
          if opts.web
          else ["--headless", "--only-summary"])
    if opts.workers <= 0:
        return [base + ui]
    port = _free_port()
    master = base + ui + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                          "--expect-workers", str(opts.workers)]
    worker = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
              "--master-port", str(port), "--loglevel", "WARNING"]
    return [master] + [list(worker) for _ in range(opts.workers)]


async def _samples(h: Harness, ids: Sequence[str], stop: asyncio.Event, seed: int) -> list[dict[str, Any]]:
    """Conformance scenarios in their own tenants, round after round while the load runs (at least one)."""
    from conformance.scenario import load_suite

    suite = load_suite()
    chosen = [s for s in suite.scenarios if s.id in set(ids)]
    results: list[dict[str, Any]] = []
    rnd = 0
    while True:
        engine = Engine(h, run_seed=seed * 7919 + rnd)  # a new seed each round: new residents, new ids
        for sc in chosen:
            r = await engine.run(sc)
            results.append({"scenario": sc.id, "round": rnd, "verdict": r.verdict, "duration": round(r.duration, 3),
                            "error": r.error, "failures": [o.message for o in r.failures()][:3]})
        rnd += 1
        if stop.is_set() or not chosen:
            return results


class _Sampler:
    """CPU of this process (gateway, simulators, sampled scenarios), of the SUT child (when it is ours), of the
    Locust processes (their sum and the busiest: each is one core's worth at most) and of the whole machine
    (% of all cores); the delivery lanes' length and the trace's last seq."""

    def __init__(self, rt: Runtime, sut_pid: int | None = None) -> None:
        self.rt = rt
        self.me = psutil.Process()
        self.sut: psutil.Process | None = None
        if sut_pid is not None:
            with contextlib.suppress(psutil.Error):  # already gone: the run will say so (SutChild.exited)
                self.sut = psutil.Process(sut_pid)
        self.rows: list[dict[str, float]] = []
        self.locust: list[psutil.Process] = []
        self.t0 = time.monotonic()

    def attach(self, pids: Sequence[int]) -> None:
        self.locust = [psutil.Process(p) for p in pids]
        self.me.cpu_percent(None)
        psutil.cpu_percent(None)
        for p in [*self.locust, *([self.sut] if self.sut else [])]:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)

    def sample(self) -> dict[str, float]:
        lanes = getattr(self.rt.gateway, "_lanes", {})
        loc = []
        for p in self.locust:
            with contextlib.suppress(psutil.Error):
                loc.append(p.cpu_percent(None))
        row = {"t": round(time.monotonic() - self.t0, 3), "wall": time.time(),
               "gateway_cpu": self.me.cpu_percent(None),
               "locust_cpu": sum(loc), "locust_cpu_max": max(loc, default=0.0),
               "machine_cpu": psutil.cpu_percent(None),
               "lanes": float(sum(len(v) for v in lanes.values())), "trace_seq": float(self.rt.store.last_seq)}
        if self.sut is not None:
            with contextlib.suppress(psutil.Error):  # gone: no figure rather than a made-up 0
                row["sut_cpu"] = self.sut.cpu_percent(None)
        self.rows.append(row)
        return row


async def run_load(opts: LoadOptions, out: Callable[[str], None] = print) -> LoadOutcome:
    """The whole run (see the module docstring)."""
    from load.report import write_report

    # Locust runs with the repository as its working folder: a relative --out would land there
    opts = dataclasses.replace(opts, out=opts.out.resolve())
    opts.out.mkdir(parents=True, exist_ok=True)
    model = LoadModel.default()
    scale = Scale.parse(opts.scale, model.figures)
    actions = model.schedule(scale, opts.day, opts.seed, opts.profile, rate=opts.rate,
                             duration=opts.duration if opts.profile in ("steady", "ramp") else None)
    compress = 1.0 if opts.profile in ("steady", "ramp") else opts.compress
    if opts.duration is not None:
        actions = [a for a in actions if a.t / compress < opts.duration]
    span = max((a.t / compress for a in actions), default=0.0)
    out(f"load: {len(actions)} actions over {span:.1f} s ({opts.profile}, {scale.kind}, {opts.day}, "
        f"compress {compress:g}, seed {opts.seed})")
    with tempfile.TemporaryDirectory(prefix="juki-load-") as tmp:
        async with (harness_and_sut(opts, Path(tmp), opts.out) as (rt, child),
                    CollectorSchedule(lambda: rt.store.last_seq) as collector,  # as `serve` (issue 10)
                    aiohttp.ClientSession() as session):
            h = Harness(session, rt.gateway_url, rt.config.gateway.tokens.control)
            t = await h.create_tenant("load", 3, opts.seed % 2_000_000_000)
            tenant = Tenant(str(t["tenant"]), str(t["sut_lg"]), tuple(str(p["lg_code"]) for p in t["peers"]))
            start = datetime.combine(opts.day, datetime.min.time(), JST) + timedelta(hours=8, minutes=30)
            await h.clock(tenant.tenant, {"set": start.isoformat()})
            planner = Planner(tenant, opts.day, compress)
            skipped = Counter(a.function for a in actions if a.function not in DRIVEN)
            driven = [a for a in actions if a.function in DRIVEN]
            t_setup = time.monotonic()
            n_setup, errors = await run_setup(h, tenant, planner, driven, opts.setup_concurrency)
            # the SUT may still be sending what the fixtures caused (a national day's: minutes of messages)
            since = await _quiet(h, tenant.tenant, limit=max(20.0, 0.02 * n_setup))
            out(f"load: {n_setup} fixture operations in {time.monotonic() - t_setup:.1f} s"
                + (f", {len(errors)} failed: {errors[0]}" if errors else "")
                + (f"; not driven yet: {dict(skipped)}" if skipped else ""))
            limit = span + opts.cascade_timeout + 10.0
            # the plan file: the run's parameters and one short row per action; each Locust process builds its
            # share of the requests with the same Planner (load.plan)
            doc = {"actions": [[a.index, a.t, a.function, a.seed] for a in driven], "compress": compress,
                   "day": opts.day.isoformat(), "sut_lg": tenant.sut_lg, "peers": list(tenant.peers),
                   "gateway": rt.gateway_url, "token": rt.config.gateway.tokens.control,
                   "tenant": tenant.tenant, "since": since, "workers": max(1, opts.workers), "limit": limit,
                   "out": str(opts.out.resolve()), "late_ms": opts.late_ms, "cascade_timeout": opts.cascade_timeout,
                   "max_inflight": opts.max_inflight,
                   # pooled connections are not reused once idle for half the time after which the gateway
                   # closes them (load.connections)
                   "reuse_idle_s": rt.config.gateway.limits.idle_timeout / 2}
            for old in opts.out.glob("results-*.jsonl"):
                old.unlink()
            plan_path = Path(tmp) / "plan.json"
            plan_path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
            outcome = await _drive(opts, rt, h, plan_path, since, out, child)
            missing = len(driven) - len(outcome.stats.rows)
            if missing:
                tail = (opts.out / "locust.log").read_text(encoding="utf-8", errors="replace")[-1500:]
                outcome.error = (f"{missing} of {len(driven)} actions have no result: a Locust process "
                                 f"failed (exit {outcome.stats.locust_rc}); the end of locust.log:\n{tail}")
            gone = child.exited() if child is not None else None
            if gone:  # the SUT died under load: the run says so rather than blaming cascades
                outcome.error = f"{outcome.error}\n{gone}" if outcome.error else gone
            outcome.sut_process = child.shown() if child is not None else None
            outcome.collector = collector.summary()
            outcome.trace = await check_trace(h, session, rt.gateway_url, tenant.tenant, since, outcome.stats)
            outcome.stats.skipped = dict(skipped)
            outcome.stats.setup_errors = errors
    outcome.thresholds = [(th, *th.evaluate(outcome.stats)) for th in map(parse_threshold, opts.thresholds)]
    outcome.files = write_report(outcome, opts, scale)
    return outcome


async def _drive(opts: LoadOptions, rt: Runtime, h: Harness, plan_path: Path, since: int,
                 out: Callable[[str], None], child: SutChild | None = None) -> LoadOutcome:
    """Run Locust (and the conformance samples beside it) until it stops; progress once a second."""
    env = {**os.environ, "JUKI_LOAD_PLAN": str(plan_path), "PYTHONUNBUFFERED": "1"}
    log = (opts.out / "locust.log").open("wb")
    procs = []
    try:
        for cmd in locust_commands(opts, plan_path, opts.out):
            procs.append(await asyncio.create_subprocess_exec(*cmd, env=env, stdout=log, stderr=log,
                                                              cwd=str(ROOT)))
        sampler = _Sampler(rt, child.pid if child is not None else None)
        sampler.attach([p.pid for p in procs])
        stop = asyncio.Event()
        samples = asyncio.create_task(_samples(h, opts.samples, stop, opts.seed))
        t0 = time.monotonic()
        master = procs[0]
        every = 1 if opts.duration is not None and opts.duration <= 120 else 10  # progress lines: 1 s or 10 s
        while master.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(master.wait(), timeout=1.0)
            row = sampler.sample()
            if len(sampler.rows) % every:
                continue
            sut = f"sut cpu {row['sut_cpu']:5.1f}%  " if "sut_cpu" in row else ""
            out(f"  {time.monotonic() - t0:6.1f}s  trace {int(row['trace_seq']) - since:7d} records  "
                f"gateway cpu {row['gateway_cpu']:5.1f}%  {sut}locust cpu {row['locust_cpu']:5.1f}%  "
                f"lanes {int(row['lanes'])}")
        for p in procs[1:]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.wait(), timeout=10.0)
            if p.returncode is None:
                p.kill()
        stop.set()
        conformance = await samples
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        log.close()
    stats = Stats.from_results(opts.out)
    stats.cpu = sampler.rows
    stats.locust_rc = master.returncode
    return LoadOutcome(stats=stats, conformance=conformance)
