"""pytest plugin (entry point ``pytest11: juki_harness``): conformance scenarios as pytest items.

A vendor's CI runs ``pytest --juki-sut=http://sut:8800 scenarios/ --junitxml=report.xml`` (or
``--juki-sut=reference``) and gets one item per scenario, marked ``route_R06``, ``function_F08``,
``kind_positive`` / ``kind_negative`` (select with ``-m``). One harness (gateway, simulators, and the
reference SUT when asked) is started for the session in a background event loop; at the first scenario item
every selected scenario is submitted to the engine, so they run concurrently while pytest reports them one by
one.

The project's own tests never collect scenarios unless asked: YAML files under a ``scenarios`` folder are
collected only when ``--juki-sut`` is given or a command-line path points into a ``scenarios`` folder.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
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
        self.seed = config.getoption("juki_seed")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.main: concurrent.futures.Future[None] | None = None
        self.futures: dict[str, concurrent.futures.Future[ScenarioResult]] = {}

    def start(self, session: pytest.Session) -> None:
        if self.main is not None:
            return
        items = [i for i in session.items if isinstance(i, ScenarioItem)]
        scenarios = [i.scenario for i in items]
        self.futures = {s.id: concurrent.futures.Future() for s in scenarios}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="juki-harness", daemon=True)
        self.thread.start()
        self.main = asyncio.run_coroutine_threadsafe(self._main(scenarios), self.loop)

    async def _main(self, scenarios: list[Scenario]) -> None:
        from conformance.certify import run_suite

        def done(res: ScenarioResult) -> None:
            fut = self.futures.get(res.scenario.id)
            if fut is not None and not fut.done():
                fut.set_result(res)

        try:
            await run_suite(scenarios, sut=self.sut, config=self.harness_config, concurrency=self.concurrency,
                            run_seed=self.seed, on_done=done)
        except BaseException as e:
            for fut in self.futures.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(f"the harness stopped: {type(e).__name__}: {e}"))
            if not isinstance(e, Exception):
                raise

    def result(self, scenario: Scenario) -> ScenarioResult:
        fut = self.futures[scenario.id]
        return fut.result(timeout=scenario.timeout * 4 + STARTUP_SLACK)

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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    r = session.config.stash.get(_RUNNER, None)
    if r is not None:
        r.stop()
