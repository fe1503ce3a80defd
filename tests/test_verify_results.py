"""`juki-harness verify` covers results.json (its digest is in the evidence anchor) and says the run's verdict:
an intact bundle of a failed run is "bundle intact; the run DOES NOT CONFORM", never PASS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from reports import write_reports
from reports.demo import synthetic_clock_log, synthetic_config, synthetic_records, synthetic_results
from reports.evidence import results_digest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("run")
    results = synthetic_results()
    results["summary"] |= {"conformance": "DOES NOT CONFORM", "partial": False}
    write_reports(results, synthetic_records(), d, config=synthetic_config(), seeds={"run": 7},
                  clock_log=synthetic_clock_log())
    (d / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return d


def _copy(src: Path, dst: Path, edit: Any = None) -> Path:
    dst.mkdir()
    (dst / "evidence.json").write_bytes((src / "evidence.json").read_bytes())
    doc = json.loads((src / "results.json").read_text(encoding="utf-8"))
    if edit is not None:
        edit(doc)
    (dst / "results.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return dst


def _verify(capsys: pytest.CaptureFixture[str], d: Path) -> tuple[int, str]:
    rc = main(["verify", str(d)])
    return rc, capsys.readouterr().out


def test_an_intact_failed_run_says_does_not_conform(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _verify(capsys, run_dir)
    assert rc == 0, out
    assert "PASS" not in out
    assert "bundle intact; the run DOES NOT CONFORM — suite 1.0" in out
    anchor = json.loads((run_dir / "evidence.json").read_text(encoding="utf-8"))["anchor"]
    assert anchor["results_digest"] == results_digest(json.loads((run_dir / "results.json").read_text("utf-8")))


@pytest.mark.parametrize("edit", [
    lambda d: d["summary"].update(failed=0, errors=0, passed=3, verdict="pass", conformance="CONFORMS"),
    lambda d: d["summary"].update(total=4),
    lambda d: d.update(duration=0.5),
    lambda d: d["coverage"].update(functions_covered=30) if "coverage" in d else d.update(coverage={}),
])
def test_a_changed_results_json_fails(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      edit: Any) -> None:
    d = _copy(run_dir, tmp_path / "edited", edit)
    rc, out = _verify(capsys, d)
    assert rc == 1
    assert "FAIL: results.json was changed after the run" in out
    assert "bundle intact" not in out


def test_the_same_results_rewritten_still_verify(run_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The digest is over the JSON content, not the file's bytes: re-indenting is not a change."""
    rc, out = _verify(capsys, _copy(run_dir, tmp_path / "same"))
    assert rc == 0, out


def test_without_results_the_verdicts_still_speak(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["verify", str(run_dir / "evidence.json"), "--no-results"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "bundle intact; the run DOES NOT CONFORM: 2 of 3 scenarios failed" in out
