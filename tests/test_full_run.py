"""The README's main job, as a user runs it: `juki-harness certify --sut reference` on the whole suite.

One full run (a real subprocess, real servers on loopback) backs several checks: it passes with every function
and route covered; report.html, junit.xml, results.json, evidence.json and the console show no unmasked
個人番号; the bundle verifies offline; and report.html renders in headless Chromium with the diagram and all
30 functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.masking import find_my_number_spans
from tests.test_report_browser import _run

CLI = [sys.executable, "-m", "conformance.cli"]


@dataclass
class FullRun:
    out: Path
    code: int
    console: str


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    out = tmp_path_factory.mktemp("certify")
    proc = subprocess.run([*CLI, "certify", "--sut", "reference", "--report-dir", str(out), "--seed", "11"],
                          capture_output=True, text=True, timeout=300, env={**os.environ}, check=False)
    return FullRun(out, proc.returncode, proc.stdout + proc.stderr)


def test_every_scenario_passes_and_covers_every_function_and_route(full_run: FullRun) -> None:
    assert full_run.code == 0, full_run.console[-4000:]
    doc = json.loads((full_run.out / "results.json").read_text(encoding="utf-8"))
    assert doc["summary"]["verdict"] == "pass" and doc["summary"]["failed"] == 0
    assert doc["summary"]["conformance"] == "CONFORMS" and doc["summary"]["partial"] is False
    assert "適合（CONFORMS）— スイート版 1.0" in full_run.console
    html = (full_run.out / "report.html").read_text(encoding="utf-8")
    assert 'id="verdict" data-verdict="CONFORMS"' in html
    assert html.index('id="verdict"') < html.index('id="diagram"')  # the first screen
    assert doc["coverage"]["functions_covered"] == 30 and doc["coverage"]["routes_covered"] == 22
    for f, c in doc["coverage"]["functions"].items():
        assert c["positive"] >= 1 and c["negative"] >= 2, f


@pytest.mark.parametrize("name", ["report.html", "junit.xml", "results.json", "evidence.json", "console"])
def test_no_unmasked_my_number_anywhere(full_run: FullRun, name: str) -> None:
    text = full_run.console if name == "console" else (full_run.out / name).read_text(encoding="utf-8")
    hits = find_my_number_spans(text)
    assert not hits, f"{name}: unmasked 個人番号 at {[h for h in hits[:3]]}"
    assert not (full_run.out / "trace.sqlite").exists()


def test_the_bundle_verifies_offline(full_run: FullRun) -> None:
    proc = subprocess.run([*CLI, "verify", str(full_run.out / "evidence.json")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bundle intact; the run CONFORMS — suite" in proc.stdout


def test_the_report_renders_in_headless_chromium(full_run: FullRun, tmp_path: Path) -> None:
    html = full_run.out / "report.html"
    png = tmp_path / "shot.png"
    _run(tmp_path, f"--screenshot={png}", "--window-size=1600,2400", html.as_uri())
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    dom = _run(tmp_path, "--dump-dom", "--virtual-time-budget=2000", html.as_uri()).stdout
    assert "<svg" in dom
    cat = catalogue.default()
    for n, a in cat.arrows.items():
        if a.in_route:
            assert f'id="arrow-{n}"' in dom, n
    for fid in cat.functions:
        assert f'id="fn-{fid}"' in dom, fid
