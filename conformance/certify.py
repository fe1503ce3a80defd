"""`juki-harness certify`: run the conformance suite against a SUT and write the evidence a reviewer trusts.

With ``--sut reference`` the harness starts the reference SUT itself; with ``--sut URL`` it drives a vendor's
SUT at that base URL (``{URL}/inbound``, ``{URL}/counter``), which must send to the gateway configured in
``--config`` (default port 8700; ``--gateway-port`` overrides it). A URL SUT gets a pre-flight first
(``/health``, ``/contract``; see conformance.preflight): it stops in seconds when the SUT is unreachable or
non-conforming, and the scenarios needing operations the SUT does not list are not run ("not implemented").
The run ends with its verdict in words — CONFORMS, DOES NOT CONFORM, or PARTIAL for a selection — and the
matching exit code (listed below). The report directory gets ``junit.xml``, ``results.json`` (suite version
and digest, harness version, the verdict, failures grouped by first cause, coverage of the 30 functions and
22 routes, every expectation with its evidence), ``report.html`` and ``evidence.json``; every 個人番号 is
masked (``********1234``). A directory that already holds a run is not overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from conformance import catalogue as catalogue_mod
from conformance import verdict as verdict_mod
from conformance.checks import mask_my_numbers
from conformance.engine import ScenarioResult
from conformance.masking import mask_obj
from conformance.scenario import Scenario, Suite, load_suite

__all__ = ["Harnessed", "add_parser", "certify", "harnessed", "junit_xml", "results_json", "run_suite"]


def harness_version() -> str:
    try:
        return metadata.version("juki-harness")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ------------------------------------------------------------------------------------------- harness

@dataclass(slots=True)
class Harnessed:
    """A started harness: the gateway URL and its control token (and the runtime, when we started it)."""

    gateway_url: str
    control_token: str
    data_dir: Path
    runtime: Any = None


@asynccontextmanager
async def harnessed(sut: str = "reference", config: str | Path | None = None, *,
                    defects: Iterable[str] = (), data_dir: Path | None = None,
                    gateway_port: int | None = None) -> AsyncIterator[Harnessed]:
    """Start the gateway and simulators (and the reference SUT when ``sut`` is "reference").

    ``gateway_port`` overrides the config's gateway port (a vendor SUT sends to it)."""
    from simulators.config import load_config
    from simulators.runtime import Runtime

    tmp = Path(tempfile.mkdtemp(prefix="juki-")) if data_dir is None else data_dir
    try:
        cfg = load_config(config, data_dir=tmp, port=gateway_port)
        if sut == "reference":
            cfg = cfg.with_ports(0) if config is None and gateway_port is None else cfg
            rt = Runtime(cfg, with_reference_sut=True, reference_defects=defects)
        else:
            base = sut.rstrip("/")
            cfg = cfg.with_sut(inbound_url=f"{base}/inbound", counter_url=f"{base}/counter")
            rt = Runtime(cfg)
        async with rt:
            yield Harnessed(rt.gateway_url, cfg.gateway.tokens.control, tmp, rt)
    finally:
        if data_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


async def run_suite(scenarios: Sequence[Scenario], *, sut: str = "reference",
                    config: str | Path | None = None,
                    defects: Iterable[str] = (), concurrency: int = 8, run_seed: int | None = None,
                    on_done: Callable[[ScenarioResult], None] | None = None, keep_trace: Path | None = None,
                    default_within: float = 8.0, gateway_port: int | None = None) -> list[ScenarioResult]:
    """Start a harness, run ``scenarios`` through the engine, stop; results in the order given."""
    import aiohttp

    from conformance.engine import Engine, Harness

    async with harnessed(sut, config, defects=defects, gateway_port=gateway_port) as h:
        connector = aiohttp.TCPConnector(limit=max(16, concurrency * 4))
        async with aiohttp.ClientSession(connector=connector) as session:
            engine = Engine(Harness(session, h.gateway_url, h.control_token), concurrency=concurrency,
                            run_seed=run_seed, default_within=default_within)
            results = await engine.run_many(scenarios, on_done=on_done)
        if keep_trace is not None:
            trace = h.data_dir / "trace.sqlite"
            if trace.is_file():
                # a consistent copy while the writer is still open (WAL): SQLite's backup API
                import sqlite3

                keep_trace.parent.mkdir(parents=True, exist_ok=True)
                src, dst = sqlite3.connect(trace), sqlite3.connect(keep_trace)
                with dst:
                    src.backup(dst)
                src.close()
                dst.close()
    return results


# -------------------------------------------------------------------------------------------- reports

def coverage(results: Sequence[ScenarioResult], cat: catalogue_mod.Catalogue | None = None) -> dict[str, Any]:
    """Scenarios (run, passed, positive, negative) per function and route; the counts covered."""
    cat = cat or catalogue_mod.default()
    funcs = {f: {"scenarios": 0, "passed": 0, "positive": 0, "negative": 0} for f in cat.functions}
    routes = {r: {"scenarios": 0, "passed": 0, "walks": 0} for r in cat.routes}
    for res in results:
        s = res.scenario
        for f in s.functions:
            c = funcs[f]
            c["scenarios"] += 1
            c["passed"] += int(res.passed)
            c[s.kind] += 1
        r = routes[s.route]
        r["scenarios"] += 1
        r["passed"] += int(res.passed)
        r["walks"] += int("walk" in s.tags)
    return {"functions": funcs, "routes": routes,
            "functions_covered": sum(1 for c in funcs.values() if c["scenarios"]),
            "functions_total": len(funcs),
            "routes_covered": sum(1 for c in routes.values() if c["scenarios"]), "routes_total": len(routes)}


def results_json(results: Sequence[ScenarioResult], suite: Suite, *, sut: str, started: datetime,
                 duration: float, run_seed: int | None = None,
                 selection: Mapping[str, Sequence[str] | None] | None = None,
                 not_run: Sequence[Mapping[str, Any]] = (), contract: Mapping[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """results.json: versions, summary with the verdict in words, coverage, failure groups, every scenario.

    ``selection``: the --routes/--functions/--scenarios given (a selection makes the run PARTIAL);
    ``not_run``: scenarios left out because the SUT's /contract does not list an operation they need."""
    cat = catalogue_mod.default()
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("pass", "fail", "error")}
    sel = {k: list(v) for k, v in (selection or {}).items() if v}
    not_impl = sorted({op for n in not_run for op in n.get("missing_operations", [])})
    partial = bool(sel) or bool(not_run) or len(results) < len(suite.scenarios)
    word = verdict_mod.verdict(total=len(results), passed=counts["pass"], partial=partial)
    scen = [r.to_json() for r in results]
    out = {
        "suite": {"version": suite.version, "digest": suite.digest,
                  "scenarios_in_suite": len(suite.scenarios)},
        "harness": {"version": harness_version(), "catalogue": cat.version,
                    "counter_contract": cat.counter_contract_version},
        "sut": sut, "run_seed": run_seed, "started": started.isoformat(), "duration": round(duration, 3),
        "summary": {"total": len(results), "passed": counts["pass"], "failed": counts["fail"],
                    "errors": counts["error"],
                    "verdict": "pass" if counts["pass"] == len(results) else "fail",
                    "conformance": word, "partial": partial, "selection": sel,
                    "not_implemented": not_impl, "not_run": len(not_run)},
        "sut_contract": dict(contract) if contract is not None else None,
        "coverage": coverage(results, cat),
        "failure_groups": verdict_mod.group_failures(scen),
        "not_run": [dict(n) for n in not_run],
        "scenarios": scen,
    }
    masked: dict[str, Any] = mask_obj(out)
    return masked


def junit_xml(results: Sequence[ScenarioResult], *, name: str = "juki-harness", duration: float = 0.0,
              not_run: Sequence[Mapping[str, Any]] = ()) -> str:
    """JUnit XML: one testsuite per route, one testcase per scenario (failures with their evidence); the
    scenarios not run ("not implemented" by the SUT) as skipped test cases."""
    by_route: dict[str, list[ScenarioResult]] = {}
    for r in results:
        by_route.setdefault(r.scenario.route, []).append(r)
    fails = sum(1 for r in results if r.verdict == "fail")
    errors = sum(1 for r in results if r.verdict == "error")
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites name={quoteattr(name)} tests="{len(results)}" failures="{fails}" '
             f'errors="{errors}" time="{duration:.3f}">']
    for route in sorted(by_route):
        rs = by_route[route]
        lines.append(f'  <testsuite name="{route}" tests="{len(rs)}" '
                     f'failures="{sum(r.verdict == "fail" for r in rs)}" '
                     f'errors="{sum(r.verdict == "error" for r in rs)}" '
                     f'time="{sum(r.duration for r in rs):.3f}">')
        for r in rs:
            s = r.scenario
            cls = f"{route}.{'_'.join(s.functions)}"
            lines.append(f'    <testcase classname={quoteattr(cls)} name={quoteattr(f"{s.id} {s.title_en}")} '
                         f'file={quoteattr(s.file)} line="{s.line or 0}" time="{r.duration:.3f}">')
            if r.verdict != "pass":
                tag = "failure" if r.verdict == "fail" else "error"
                first = r.error or next((o.message for o in r.failures()), r.verdict)
                lines.append(f"      <{tag} message={quoteattr(mask_my_numbers(first)[:500])}>"
                             f"{escape(r.explain())}</{tag}>")
            lines.append("    </testcase>")
        lines.append("  </testsuite>")
    if not_run:  # not implemented by the SUT: skipped test cases, so dashboards show them
        lines.append(f'  <testsuite name="not-implemented" tests="{len(not_run)}" skipped="{len(not_run)}" '
                     'failures="0" errors="0" time="0.000">')
        for n in not_run:
            title = (n.get("title") or {}).get("en", "")
            missing = ", ".join(n.get("missing_operations", []))
            lines.append(f'    <testcase classname={quoteattr(str(n.get("route")) + ".not_implemented")} '
                         f'name={quoteattr(str(n.get("id")) + " " + title)} time="0.000">'
                         f'<skipped message={quoteattr(f"not implemented by the SUT: {missing}")}/></testcase>')
        lines.append("  </testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"


def summary_lines(results: Sequence[ScenarioResult], doc: Mapping[str, Any] | None = None,
                  lang: str = "en") -> list[str]:
    """Per route and per function: passed / run; failures grouped by first cause; the verdict in words last."""
    cat = catalogue_mod.default()
    cov = coverage(results, cat)
    out = ["", "Routes"]
    for rid, c in cov["routes"].items():
        if c["scenarios"]:
            mark = "ok " if c["passed"] == c["scenarios"] else "NG "
            out.append(f"  {mark}{rid} {cat.routes[rid].chain:<26} {c['passed']}/{c['scenarios']}")
    out.append("Functions")
    for fid, c in cov["functions"].items():
        if c["scenarios"]:
            mark = "ok " if c["passed"] == c["scenarios"] else "NG "
            out.append(f"  {mark}{fid} {c['passed']}/{c['scenarios']} (+{c['positive']} −{c['negative']})  "
                       f"{cat.functions[fid].ja}")
    by_id = {r.scenario.id: r for r in results}
    groups = (doc or {}).get("failure_groups")
    if groups is None:
        groups = verdict_mod.group_failures([r.to_json() for r in results])
    if groups:
        out.append(f"Failures, grouped by first cause ({len(groups)} causes)")
        for i, g in enumerate(groups, 1):
            ids = g["scenarios"]
            shown = ", ".join(ids[:12]) + (f" … (+{len(ids) - 12})" if len(ids) > 12 else "")
            out.append(f"  [{i}] {g['count']} scenario(s), {g['code']} {g['check']}: {g['message']}")
            out.append(f"      {shown}")
            first = by_id.get(ids[0])
            if first is not None:
                out.extend("      " + line for line in first.explain().splitlines()[:12])
    not_run = (doc or {}).get("not_run") or []
    if not_run:
        out.append(f"Not run: {len(not_run)} scenario(s) need operations the SUT's /contract does not list")
        missing: dict[str, list[str]] = {}
        for n in not_run:
            for op in n.get("missing_operations", []):
                missing.setdefault(op, []).append(str(n["id"]))
        for op, ids in sorted(missing.items()):
            out.append(f"  not implemented {op}: {', '.join(ids)}")
    total, passed = len(results), sum(r.passed for r in results)
    out.append(f"\n{passed}/{total} scenarios passed; functions covered {cov['functions_covered']}/"
               f"{cov['functions_total']}, routes {cov['routes_covered']}/{cov['routes_total']}")
    if doc is not None:
        out.append(verdict_mod.headline(doc["summary"], doc["suite"], lang))
    return [mask_my_numbers(x) for x in out]


class Progress:
    """A plain progress line on stderr, rewritten in place (one line per result when not a terminal)."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()

    def __call__(self, res: ScenarioResult) -> None:
        self.done += 1
        self.failed += int(not res.passed)
        n = int(self.width * self.done / max(1, self.total))
        bar = "#" * n + "-" * (self.width - n)
        line = (f"[{bar}] {self.done}/{self.total} {time.monotonic() - self.t0:5.1f}s "
                f"{self.failed} failed  {res.scenario.id} {res.verdict.upper()}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:100])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# ------------------------------------------------------------------------------------------------ CLI

def write_evidence_and_html(doc: dict[str, Any], report_dir: Path, *, config: str | None,
                            seed: int, keep_raw: bool = False, lang: str = "ja") -> dict[str, Path]:
    """report.html and evidence.json from results + the run's trace (config secrets redacted by reports).

    The raw trace copy holds unmasked 個人番号, so it is removed once the (masked) evidence is written, unless
    ``keep_raw`` asks for raw payloads to be kept.
    """
    import dataclasses

    from reports import write_reports
    from simulators.config import load_config
    from simulators.trace import read_records

    trace = report_dir / "trace.sqlite"
    records = read_records(trace) if trace.is_file() else []  # nothing ran: an empty, verifiable bundle
    cfg = json.loads(json.dumps(dataclasses.asdict(load_config(config)), default=str))
    # The virtual-clock log: every clock event the control API recorded in the trace (tenant starts and moves).
    clock_log = [json.loads(r.payload) | {"tenant": r.tenant, "seq": r.seq} for r in records
                 if r.kind == "event" and r.note in ("clock", "tenant.create")]
    written = write_reports(doc, records, report_dir, config=cfg, seeds={"run": seed}, clock_log=clock_log,
                            keep_raw=keep_raw, lang=lang)
    if not keep_raw:
        for suffix in ("", "-wal", "-shm"):
            (report_dir / f"trace.sqlite{suffix}").unlink(missing_ok=True)
    return written


def _split(v: str | None) -> list[str] | None:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def check_selection(suite: Suite, routes: Sequence[str] | None, functions: Sequence[str] | None,
                    ids: Sequence[str] | None) -> list[str]:
    """One message per unknown id in the selection, naming it (and the id it probably meant)."""
    import difflib

    cat = catalogue_mod.default()
    known = {"route": list(cat.routes), "function": list(cat.functions), "scenario": [s.id for s in suite.scenarios]}
    problems = []
    for what, given in (("route", routes), ("function", functions), ("scenario", ids)):
        for x in given or ():
            if x in known[what]:
                continue
            same_case = [k for k in known[what] if k.upper() == x.upper()]
            near = same_case or difflib.get_close_matches(x, known[what], n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"unknown {what} {x!r}{hint}; known: {known[what][0]} … {known[what][-1]}")
    return problems


def _fail(code: int, message: str) -> int:
    print(f"juki-harness certify: {message}", file=sys.stderr)
    return code


async def certify(*, sut: str = "reference", config: str | None = None, routes: Sequence[str] | None = None,
                  functions: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                  report_dir: Path = Path("juki-results"), concurrency: int = 8, run_seed: int | None = None,
                  suite_dir: str | None = None, progress: bool = True, out: IO[str] | None = None,
                  keep_raw: bool = False, lang: str = "ja", overwrite: bool = False,
                  partial_ok: bool = False, gateway_port: int | None = None) -> int:
    """Pre-flight, run the (selected) suite, write the reports; returns the exit code (``EXIT_CODES``)."""
    import errno
    import os

    from conformance.preflight import (
        EXIT_REPORT_EXISTS,
        EXIT_USAGE,
        PreflightError,
        check_sut_url,
        preflight,
        split_implemented,
    )

    out = out or sys.stdout
    suite = load_suite(suite_dir)
    problems = check_selection(suite, routes, functions, ids)
    if problems:
        return _fail(EXIT_USAGE, "; ".join(problems))
    chosen = suite.select(routes, functions, ids)
    if not chosen:
        return _fail(EXIT_USAGE, "no scenario matches the selection (each id exists, but not together)")
    if (report_dir / "results.json").exists() and not overwrite:
        return _fail(EXIT_REPORT_EXISTS, f"{report_dir} already holds a run (results.json); give another "
                                         "--report-dir or --overwrite to replace it")
    contract: dict[str, Any] | None = None
    not_run: list[dict[str, Any]] = []
    if sut != "reference":
        try:
            sut = check_sut_url(sut)
            from simulators.config import load_config

            found = await preflight(sut, contract_version=catalogue_mod.default().counter_contract_version,
                                    lg_code=load_config(config).sut.lg_code)
        except PreflightError as e:
            return _fail(e.code, e.message)
        contract = {"contract": found.version, "operations": list(found.operations), "lg_code": found.lg_code,
                    "implementation": found.implementation}
        print(f"pre-flight: {sut} answers /health; SUT contract {found.version}, "
              f"{len(found.operations)} operations", file=sys.stderr)
        chosen, not_run = split_implemented(chosen, found.operations)
        if not_run:
            print(f"pre-flight: {len(not_run)} scenario(s) will not run (operations not implemented: "
                  f"{', '.join(sorted({o for n in not_run for o in n['missing_operations']}))})", file=sys.stderr)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    bar = Progress(len(chosen)) if progress else None
    if (report_dir / "results.json").exists():
        for name in ("results.json", "junit.xml", "report.html", "evidence.json"):
            (report_dir / name).unlink(missing_ok=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    seed = run_seed if run_seed is not None else int.from_bytes(os.urandom(4), "big")
    try:
        results = await run_suite(chosen, sut=sut, config=config, concurrency=concurrency, run_seed=seed,
                                  on_done=bar, keep_trace=report_dir / "trace.sqlite",
                                  gateway_port=gateway_port) if chosen else []
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return _fail(EXIT_USAGE, f"a harness port is already in use ({e.strerror}); stop the other process "
                                     "or give --gateway-port (0 = any free port)")
        raise
    duration = time.monotonic() - t0
    selection = {"routes": routes, "functions": functions, "scenarios": ids}
    doc = results_json(results, suite, sut=sut, started=started, duration=duration, run_seed=seed,
                       selection=selection, not_run=not_run, contract=contract)
    (report_dir / "results.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    (report_dir / "junit.xml").write_text(junit_xml(results, duration=duration, not_run=not_run), encoding="utf-8")
    written = write_evidence_and_html(doc, report_dir, config=config, seed=seed, keep_raw=keep_raw, lang=lang)
    for line in summary_lines(results, doc, lang):
        print(line, file=out)
    print(f"reports: {report_dir / 'results.json'}, {report_dir / 'junit.xml'}, {written['html']}, "
          f"{written['evidence']} ({duration:.1f} s)", file=out)
    return verdict_mod.exit_code(doc["summary"]["conformance"], partial_ok=partial_ok)


def _cmd(args: argparse.Namespace) -> int:
    from simulators.runtime import run  # uvloop where installed (issue 10)

    return run(certify(
        sut=args.sut, config=args.config, routes=_split(args.routes), functions=_split(args.functions),
        ids=_split(args.scenarios), report_dir=Path(args.report_dir), concurrency=args.concurrency,
        run_seed=args.seed, suite_dir=args.suite, progress=not args.no_progress, keep_raw=args.keep_raw,
        lang=args.lang, overwrite=args.overwrite, partial_ok=args.partial_ok, gateway_port=args.gateway_port))


def _epilog() -> str:
    from conformance.preflight import EXIT_CODES

    return "exit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items())


def add_parser(subparsers: Any) -> None:
    """Register ``certify`` with the CLI."""
    p = subparsers.add_parser("certify",
                              help="run the conformance suite against a SUT; exit 0 only if it conforms",
                              description=__doc__, epilog=_epilog(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sut", default="reference", help="'reference' (started here) or the SUT's base URL")
    p.add_argument("--config", help="harness config (TOML); for a vendor SUT its gateway port is the one "
                                    "the SUT sends to")
    p.add_argument("--gateway-port", type=int, default=None, metavar="PORT",
                   help="the gateway's port (overrides --config; a vendor SUT sends to it; 0 = any free port)")
    p.add_argument("--routes", help="comma-separated route ids (R01,R06,...); the run is PARTIAL")
    p.add_argument("--functions", help="comma-separated function ids (F08,F09,...); the run is PARTIAL")
    p.add_argument("--scenarios", help="comma-separated scenario ids; the run is PARTIAL")
    p.add_argument("--report-dir", default="juki-results", help="where the reports go (default juki-results)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --report-dir")
    p.add_argument("--partial-ok", action="store_true", help="exit 0 (not 5) when a PARTIAL run passed")
    p.add_argument("--lang", choices=("ja", "en"), default="ja",
                   help="language of report.html and of the verdict line (default ja)")
    p.add_argument("--concurrency", type=int, default=8, help="scenarios run at once (default 8)")
    p.add_argument("--seed", type=int, default=None, help="run seed (fixtures); random by default")
    p.add_argument("--suite", default=None, help="a scenario folder instead of the shipped suite")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument("--keep-raw", action="store_true",
                   help="keep raw payloads (unmasked 個人番号) in evidence.json and the trace copy")
    p.set_defaults(func=_cmd)
