"""The pytest plugin as a CI pipeline uses it: from an empty directory, ``pytest --juki-sut=reference`` finds the
shipped suite by itself, writes the same reports as certify, keeps pytest's cache (``--lf``) and refuses to
overwrite a run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.preflight import EXIT_REPORT_EXISTS, EXIT_SUT_UNREACHABLE
from conformance.scenario import load_suite

pytestmark = pytest.mark.slow


def _pytest(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_an_empty_directory_collects_the_whole_shipped_suite(tmp_path: Path) -> None:
    r = _pytest(tmp_path, "--juki-sut=reference", "--collect-only")
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(load_suite().scenarios)
    assert f"{n} tests collected" in r.stdout, r.stdout[-2000:]
    assert "R06/F08.yaml::F08-P01" in r.stdout


def test_a_run_writes_the_reports_says_partial_and_refuses_to_overwrite(tmp_path: Path) -> None:
    r = _pytest(tmp_path, "--juki-sut=reference", "-m", "route_R06", "--juki-lang=en")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "juki-results"
    assert {"results.json", "junit.xml", "report.html", "evidence.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "trace.sqlite").exists()
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["summary"]["conformance"] == "PARTIAL" and doc["summary"]["passed"] == doc["summary"]["total"] > 0
    assert "PARTIAL — suite" in r.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-verdict="PARTIAL"' in html and "PARTIAL — suite" in html
    assert (tmp_path / ".pytest_cache").is_dir()  # the cache provider is on: --lf works
    v = subprocess.run([sys.executable, "-m", "conformance.cli", "verify", str(out)], capture_output=True,
                       text=True, timeout=60, check=False)
    assert v.returncode == 0 and "bundle intact; the run PARTIAL" in v.stdout, v.stdout + v.stderr

    again = _pytest(tmp_path, "--juki-sut=reference", "-m", "route_R06")
    assert again.returncode == EXIT_REPORT_EXISTS and "--juki-overwrite" in again.stdout + again.stderr
    lf = _pytest(tmp_path, "--juki-sut=reference", "-m", "route_R06", "--lf", "--juki-overwrite")
    assert lf.returncode == 0, lf.stdout + lf.stderr


def test_an_unreachable_sut_stops_the_session_with_one_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _pytest(tmp_path, f"--juki-sut=http://127.0.0.1:{port}", timeout=60)
    assert r.returncode == EXIT_SUT_UNREACHABLE, r.stdout + r.stderr
    assert f"cannot reach the SUT at http://127.0.0.1:{port}/health" in r.stdout + r.stderr
    assert "connection refused" in r.stdout + r.stderr
    assert "no tests ran" in r.stdout and " passed" not in r.stdout


def test_a_marker_naming_no_route_is_an_error_that_names_it(tmp_path: Path) -> None:
    from conformance.preflight import EXIT_USAGE

    r = _pytest(tmp_path, "--juki-sut=reference", "--collect-only", "-m", "route_r06 or function_F99")
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "'route_r06' (did you mean route_R06?)" in text and "'function_F99'" in text


STAND_IN = """
import sys
from aiohttp import web
async def health(r): return web.json_response({"ok": True})
async def contract(r): return web.json_response({"contract": "1.0", "operations": []})
app = web.Application(); app.router.add_get("/health", health); app.router.add_get("/contract", contract)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print("ready", flush=True))
"""


def test_operations_a_sut_lacks_are_skipped_and_listed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", STAND_IN, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and "ready" in server.stdout.readline()
        r = _pytest(tmp_path, f"--juki-sut=http://127.0.0.1:{port}", "-m", "function_F03", "-rs")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "not implemented by the SUT (/contract lacks CopyRequest" in r.stdout
        assert re.search(r"\b\d+ skipped\b", r.stdout) and not re.search(r"\b\d+ (passed|failed)\b", r.stdout)
        doc = json.loads((tmp_path / "juki-results" / "results.json").read_text(encoding="utf-8"))
        assert doc["summary"]["conformance"] == "PARTIAL" and doc["summary"]["total"] == 0
        assert doc["summary"]["not_implemented"] == ["CopyRequest", "OfficialCorrection"]
        assert {n["id"] for n in doc["not_run"]} == {s.id for s in load_suite().select(None, ["F03"], None)}
        assert (tmp_path / "juki-results" / "report.html").is_file()
    finally:
        server.terminate()
        server.wait(timeout=10)
