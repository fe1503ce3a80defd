"""pytest plugin (entry point ``pytest11: juki_harness``): conformance scenarios as pytest items.

A vendor's CI runs ``pytest --juki-sut=http://sut:8800`` (or ``--juki-sut=reference``) from any directory and
gets one item per scenario of the shipped suite (it is package data: no path argument needed), marked
``route_R06``, ``function_F08``, ``kind_positive`` / ``kind_negative`` (select with ``-m``; ``--lf`` reruns
the failed ones). A path argument inside a ``scenarios`` folder runs that folder instead. One harness
(gateway, simulators, and the reference SUT when asked) is started for the session in a background event
loop; at the first scenario item every selected scenario is submitted to the engine, so they run
concurrently while pytest reports them one by one.

Like ``certify``: a URL SUT gets the pre-flight first (``/health``, ``/contract``; an unreachable SUT stops
the session with one message and certify's exit code); scenarios needing an operation the SUT does not list
are skipped as "not implemented"; at the end ``--juki-report-dir`` (default ``juki-results``) gets
results.json (verdict in words), junit.xml, report.html and evidence.json. A directory that already holds a
run is refused unless ``--juki-overwrite``.

The project's own tests never collect scenarios unless asked: YAML files under a ``scenarios`` folder are
collected only when ``--juki-sut`` is given or a command-line path points into a ``scenarios`` folder.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conformance.engine import ScenarioResult
    from conformance.scenario import Scenario

_RUNNER = pytest.StashKey["_Runner"]()
STARTUP_SLACK = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("juki-harness", "juki-harness conformance scenarios")
    g.addoption("--juki-sut", default=None, metavar="reference|URL",
                help="run the scenarios (scenarios/**/*.yaml) against this SUT: 'reference' or its base URL")
    g.addoption("--juki-config", default=None, metavar="FILE", help="harness config (TOML)")
    g.addoption("--juki-concurrency", type=int, default=8, metavar="N", help="scenarios run at once (8)")
    g.addoption("--juki-seed", type=int, default=None, metavar="N", help="run seed of the fixtures")
    g.addoption("--juki-report-dir", default="juki-results", metavar="DIR",
                help="where results.json, junit.xml, report.html and evidence.json go (juki-results)")
    g.addoption("--juki-overwrite", action="store_true", help="replace a run already in --juki-report-dir")
    g.addoption("--juki-lang", default="ja", choices=("ja", "en"), help="language of report.html (ja)")
    g.addoption("--juki-gateway-port", type=int, default=None, metavar="PORT",
                help="the gateway's port (overrides --juki-config; a vendor SUT sends to it)")


def shipped_suite_dir() -> Path:
    """The shipped suite: the ``scenarios`` package's folder (package data), wherever it is installed."""
    try:
        import scenarios

        return Path(next(iter(scenarios.__path__))).resolve()
    except (ImportError, StopIteration):
        from conformance.scenario import SCENARIOS_DIR

        return SCENARIOS_DIR


def _under_scenarios(path: Path) -> bool:
    return "scenarios" in path.parts


def _asked(config: pytest.Config) -> bool:
    """Scenarios are collected only with --juki-sut or a path argument inside a scenarios folder."""
    if config.getoption("juki_sut"):
        return True
    for arg in config.args:
        p = Path(str(arg).split("::", 1)[0])
        if not p.is_absolute():
            p = Path(str(config.invocation_params.dir)) / p
        if _under_scenarios(p.resolve()) or p.resolve().name == "scenarios":
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    from conformance import catalogue

    if config.getoption("juki_sut") and config.args_source != pytest.Config.ArgsSource.ARGS:
        # no path given: run the shipped suite, not the current directory's (or the project's) tests
        config.args = [str(shipped_suite_dir())]
    cat = catalogue.default()
    config.addinivalue_line("markers", "juki_scenario: a juki-harness conformance scenario")
    config.addinivalue_line("markers", "kind_positive: a positive scenario")
    config.addinivalue_line("markers", "kind_negative: a negative (refusal, robustness) scenario")
    for r in cat.routes.values():
        config.addinivalue_line("markers", f"route_{r.id}: scenarios of route {r.id} ({r.chain})")
    for f in cat.functions.values():
        config.addinivalue_line("markers", f"function_{f.id}: scenarios of function {f.id} ({f.en})")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (file_path.suffix == ".yaml" and file_path.name != "suite.yaml" and not file_path.name.startswith("_")
            and _under_scenarios(file_path) and _asked(parent.config)):
        f: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
        return f
    return None


class ScenarioFile(pytest.File):
    """One scenario file; a file that breaks the schema fails collection with its line."""

    def collect(self) -> Iterator[pytest.Item]:
        from conformance.errors import HarnessError
        from conformance.scenario import load_file

        try:
            scenarios = load_file(self.path)
        except HarnessError as e:
            raise self.CollectError("\n".join(f.for_people() for f in e.findings)) from None
        for s in scenarios:
            item: ScenarioItem = ScenarioItem.from_parent(self, name=s.id, scenario=s)
            item.add_marker("juki_scenario")
            for m in s.markers:
                item.add_marker(m)
            yield item


class ScenarioFailed(Exception):
    """A scenario's verdict was fail or error; carries the result for the report."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.scenario.id)
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario
        self.user_properties.append(("route", scenario.route))
        self.user_properties.append(("functions", ",".join(scenario.functions)))
        self.user_properties.append(("kind", scenario.kind))

    def runtest(self) -> None:
        runner = _runner(self.config)
        runner.start(self.session)
        result = runner.result(self.scenario)
        self.user_properties.append(("verdict", result.verdict))
        self.user_properties.append(("duration", f"{result.duration:.3f}"))
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.explain()
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        s = self.scenario
        return self.path, max(0, (s.line or 1) - 1), f"{s.id}: {s.title_en}"


class _Runner:
    """The session's harness in a background event loop; runs every selected scenario once, concurrently."""

    def __init__(self, config: pytest.Config) -> None:
        self.sut = str(config.getoption("juki_sut") or "reference")
        self.harness_config = config.getoption("juki_config")
        self.concurrency = int(config.getoption("juki_concurrency"))
        seed = config.getoption("juki_seed")
        self.seed = int(seed) if seed is not None else int.from_bytes(os.urandom(4), "big")
        self.gateway_port = config.getoption("juki_gateway_port")
        self.report_dir = Path(str(config.getoption("juki_report_dir")))
        self.lang = str(config.getoption("juki_lang"))
        self.contract: dict[str, Any] | None = None
        self.not_run: list[dict[str, Any]] = []
        self.results: list[ScenarioResult] = []
        self.started = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.written: dict[str, Path] = {}
        self.order: list[str] = []
        self.headline = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.main: concurrent.futures.Future[None] | None = None
        self.futures: dict[str, concurrent.futures.Future[ScenarioResult]] = {}

    def start(self, session: pytest.Session) -> None:
        if self.main is not None:
            return
        lacking = {n["id"] for n in self.not_run}
        items = [i for i in session.items if isinstance(i, ScenarioItem) and i.scenario.id not in lacking]
        scenarios = [i.scenario for i in items]
        self.futures = {s.id: concurrent.futures.Future() for s in scenarios}
        self.order = [s.id for s in scenarios]
        self.started, self.t0 = datetime.now(UTC), time.monotonic()
        self.report_dir.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "junit.xml", "report.html", "evidence.json", "trace.sqlite"):
            (self.report_dir / name).unlink(missing_ok=True)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="juki-harness", daemon=True)
        self.thread.start()
        self.main = asyncio.run_coroutine_threadsafe(self._main(scenarios), self.loop)

    async def _main(self, scenarios: list[Scenario]) -> None:
        from conformance.certify import run_suite

        def done(res: ScenarioResult) -> None:
            self.results.append(res)
            fut = self.futures.get(res.scenario.id)
            if fut is not None and not fut.done():
                fut.set_result(res)

        try:
            await run_suite(scenarios, sut=self.sut, config=self.harness_config, concurrency=self.concurrency,
                            run_seed=self.seed, on_done=done, keep_trace=self.report_dir / "trace.sqlite",
                            gateway_port=self.gateway_port)
        except BaseException as e:
            for fut in self.futures.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(f"the harness stopped: {type(e).__name__}: {e}"))
            if not isinstance(e, Exception):
                raise

    def result(self, scenario: Scenario) -> ScenarioResult:
        fut = self.futures[scenario.id]
        return fut.result(timeout=scenario.timeout * 4 + STARTUP_SLACK)

    def write_reports(self, scenario_roots: set[Path]) -> None:
        """results.json, junit.xml, report.html, evidence.json — as certify writes them."""
        from conformance.certify import junit_xml, results_json, write_evidence_and_html
        from conformance.scenario import load_suite
        from conformance.verdict import headline

        if self.main is None and not self.not_run:
            return
        if self.main is not None and (not self.main.done() or self.main.cancelled() or self.main.exception()):
            return  # interrupted (-x, Ctrl-C) or the harness failed: no report claims a verdict
        root = next(iter(scenario_roots)) if len(scenario_roots) == 1 else shipped_suite_dir()
        suite = load_suite(root)
        rank = {sid: i for i, sid in enumerate(self.order)}
        results = sorted(self.results, key=lambda r: rank.get(r.scenario.id, len(rank)))
        duration = time.monotonic() - self.t0
        doc = results_json(results, suite, sut=self.sut, started=self.started, duration=duration,
                           run_seed=self.seed, not_run=self.not_run, contract=self.contract)
        d = self.report_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "results.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        (d / "junit.xml").write_text(junit_xml(results, duration=duration, not_run=self.not_run), encoding="utf-8")
        self.written = {"results": d / "results.json", "junit": d / "junit.xml",
                        **write_evidence_and_html(doc, d, config=self.harness_config, seed=self.seed,
                                                  lang=self.lang)}
        self.headline = headline(doc["summary"], doc["suite"], "en")

    def stop(self) -> None:
        if self.loop is None:
            return
        if self.main is not None and not self.main.done():
            self.main.cancel()
            with contextlib.suppress(Exception):
                self.main.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.loop.close()
        self.loop = None


def _runner(config: pytest.Config) -> _Runner:
    r = config.stash.get(_RUNNER, None)
    if r is None:
        r = _Runner(config)
        config.stash[_RUNNER] = r
    return r


def _suite_root(path: Path) -> Path:
    """The folder holding suite.yaml above a scenario file (else its grandparent: scenarios/RNN/x.yaml)."""
    for parent in path.parents:
        if (parent / "suite.yaml").is_file():
            return parent
    return path.parent.parent


def _check_marker_selection(config: pytest.Config) -> None:
    """``-m route_R99`` (or ``route_r06``) names no route: say so, instead of silently selecting nothing."""
    import difflib
    import re

    from conformance import catalogue
    from conformance.preflight import EXIT_USAGE

    expr = str(getattr(config.option, "markexpr", "") or "")
    cat = catalogue.default()
    known = [f"route_{r}" for r in cat.routes] + [f"function_{f}" for f in cat.functions] + \
        ["kind_positive", "kind_negative"]
    bad = []
    for name in re.findall(r"\b(?:route|function|kind)_\w+", expr):
        if name not in known:
            near = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, 1)
            bad.append(f"-m names no such marker {name!r}" + (f" (did you mean {near[0]}?)" if near else ""))
    if bad:
        pytest.exit("juki-harness: " + "; ".join(bad), returncode=EXIT_USAGE)


@pytest.hookimpl(trylast=True)  # after -m/-k/--lf deselected: only the chosen items are checked
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
                                  ) -> None:
    """Before any scenario runs: refuse to overwrite a run; pre-flight a URL SUT; skip what it lacks."""
    _check_marker_selection(config)
    scen = [i for i in items if isinstance(i, ScenarioItem)]
    if not scen:
        return
    from conformance.preflight import EXIT_REPORT_EXISTS, PreflightError, check_sut_url, preflight

    runner = _runner(config)
    if (runner.report_dir / "results.json").exists() and not config.getoption("juki_overwrite"):
        pytest.exit(f"{runner.report_dir} already holds a run (results.json); give another --juki-report-dir "
                    "or --juki-overwrite to replace it", returncode=EXIT_REPORT_EXISTS)
    if runner.sut == "reference":
        return
    from conformance import catalogue
    from conformance.preflight import split_implemented

    try:
        runner.sut = check_sut_url(runner.sut)
        found = asyncio.run(preflight(runner.sut,
                                      contract_version=catalogue.default().counter_contract_version))
    except PreflightError as e:
        pytest.exit(f"juki-harness pre-flight: {e.message}", returncode=e.code)
    runner.contract = {"contract": found.version, "operations": list(found.operations),
                       "lg_code": found.lg_code, "implementation": found.implementation}
    _, runner.not_run = split_implemented([i.scenario for i in scen], found.operations)
    lacking = {n["id"]: n["missing_operations"] for n in runner.not_run}
    for item in scen:
        if item.scenario.id in lacking:
            item.add_marker(pytest.mark.skip(
                reason=f"not implemented by the SUT (/contract lacks {', '.join(lacking[item.scenario.id])})"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    r = session.config.stash.get(_RUNNER, None)
    if r is None:
        return
    if r.main is not None:
        with contextlib.suppress(Exception):
            r.main.result(timeout=60)  # the trace copy is made after the last scenario
    roots = {_suite_root(i.path) for i in session.items if isinstance(i, ScenarioItem)}
    try:
        r.write_reports(roots)
    finally:
        r.stop()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    r = config.stash.get(_RUNNER, None)
    if r is None or not r.headline:
        return
    terminalreporter.write_sep("=", "juki-harness")
    terminalreporter.write_line(r.headline)
    terminalreporter.write_line("reports: " + ", ".join(str(p) for p in r.written.values()))
