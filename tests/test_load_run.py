"""A short real load run: the reference SUT, a real Locust subprocess, the trace follower, the report.

The fast test replays ≈3 s of a compressed peak day; the slow one compares a master + 2 workers with a single
process for the same seed (same totals) and runs the CLI as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from conformance.masking import mask_personal
from load.runner import LoadOptions, LoadOutcome, run_load

ROOT = Path(__file__).resolve().parent.parent


def _opts(out: Path, **kw: object) -> LoadOptions:
    base: dict[str, object] = dict(sut="reference", profile="peak-day", scale="municipality:150000",
                                   day=date(2026, 3, 30), compress=6000.0, duration=2.0, out=out, seed=7,
                                   samples=("F03-P01",), cascade_timeout=10.0)
    base.update(kw)
    return LoadOptions(**base)  # type: ignore[arg-type]


@pytest.mark.slow  # seconds of real waiting: runs in `make test`, not in the fast set
async def test_a_short_real_locust_run_times_cascades_and_writes_the_reports(tmp_path: Path) -> None:
    opts = _opts(tmp_path, thresholds=("p95<1ms", "p99<10s", "dropped<1%"))
    outcome = await run_load(opts, out=lambda s: None)
    totals = outcome.stats.totals()
    assert totals["actions"] > 5
    assert totals["ok"] + totals["late"] == totals["actions"], outcome.stats.errors()
    by_fn = outcome.stats.by_function()
    assert "move_in" in by_fn and "copy" in by_fn
    p = outcome.stats.percentiles()
    assert p["p50"] is not None and 0 < p["p50"] < 10
    # the impossible threshold fails and is named; the others hold
    verdicts = {t.text: ok for t, ok, _ in outcome.thresholds}
    assert verdicts == {"p95<1ms": False, "p99<10s": True, "dropped<1%": True}
    assert outcome.exit_code == 1
    # conformance under load: the trace holds what the completed cascades required, the chain verifies
    assert outcome.trace is not None
    assert outcome.trace.ok, outcome.trace.findings
    assert outcome.trace.counts["required"] > 0
    assert outcome.conformance and all(r["verdict"] == "pass" for r in outcome.conformance)
    html = (tmp_path / "load-report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 4 and "p95&lt;1ms" in html and "Bottleneck" in html
    stats_csv = (tmp_path / "locust_stats.csv").read_text(encoding="utf-8")
    assert "cascade,move_in" in stats_csv  # Locust saw the cascades as request events
    assert (tmp_path / "locust.html").exists()
    doc = json.loads((tmp_path / "load-report.json").read_text(encoding="utf-8"))
    assert doc["totals"] == totals and doc["exit_code"] == 1
    # the gateway's collector ran on its schedule (young collections by the clock), and the report says so
    assert doc["collector"]["young"] > 0 and "young collections by the clock" in html
    # the reference SUT ran in its own process: its CPU is a series of its own, its output a masked log
    assert doc["sut_process"].startswith("python -m conformance.cli reference-sut --port ")
    assert any("sut_cpu" in r for r in outcome.stats.cpu) and "SUT process" in doc["bottleneck"]
    assert "■ sut" in html
    log = (tmp_path / "sut.log").read_text(encoding="utf-8")
    assert "reference SUT for" in log and mask_personal(log) == log


@pytest.mark.slow
async def test_workers_give_the_same_totals_as_one_process(tmp_path: Path) -> None:
    one = await run_load(_opts(tmp_path / "one", samples=()), out=lambda s: None)
    two = await run_load(_opts(tmp_path / "two", samples=(), workers=2), out=lambda s: None)
    def done(o: LoadOutcome) -> dict[str, int]:  # completed per function (on time or late: timing may differ)
        return {fn: c["ok"] + c["late"] for fn, c in o.stats.by_function().items()}

    assert one.stats.totals()["actions"] == two.stats.totals()["actions"]
    assert done(one) == done(two) and sum(done(one).values()) == one.stats.totals()["actions"]
    assert sorted(r.index for r in one.stats.rows) == sorted(r.index for r in two.stats.rows)
    assert len(list((tmp_path / "two").glob("results-*.jsonl"))) == 2
    assert one.exit_code == two.exit_code == 0


def _load_cli(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`juki-harness load ARGS --samples '' --out OUT`, as a user runs it."""
    cmd = [str(Path(sys.executable).with_name("juki-harness")), "load", *args, "--samples", "", "--out", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_cli_exits_non_zero_naming_a_threshold_that_cannot_hold(tmp_path: Path) -> None:
    r = _load_cli(tmp_path, "--compress", "3000", "--duration", "3s", "--scale", "municipality:300000",
                  "--threshold", "p95<1ms")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "threshold FAILED — p95<1ms" in r.stdout
    assert (tmp_path / "load-report.html").exists() and (tmp_path / "locust_stats.csv").exists()


@pytest.mark.slow
def test_a_ramp_run_reports_the_capacity_it_found(tmp_path: Path) -> None:
    r = _load_cli(tmp_path, "--sut", "stub", "--profile", "ramp", "--rate", "40", "--duration", "12s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "load: capacity — Every window held" in r.stdout  # 40 actions/s is far below the stub's ceiling
    cap = json.loads((tmp_path / "load-report.json").read_text(encoding="utf-8"))["capacity"]
    rates = [w["rate"] for w in cap["windows"]]
    assert len(rates) >= 2 and rates[-1] > rates[0] and cap["held_rate"] == max(rates)
    assert all(w["gateway_cpu"] is not None and w["sut_cpu"] is not None for w in cap["windows"])
    assert "Capacity windows" in (tmp_path / "load-report.html").read_text(encoding="utf-8")
