"""The vendor's path end to end: the reference SUT runs as a separate process (`juki-harness reference-sut`)
and `certify --sut URL --gateway-port` drives it through its URL; a selection says PARTIAL (exit 5) on the
console and on the report's first screen; `--version` answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.preflight import EXIT_PARTIAL

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "conformance.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_certify_drives_a_standalone_sut_by_url(tmp_path: Path) -> None:
    sut_port, gw_port = _free_port(), _free_port()
    sut = subprocess.Popen([*CLI, "reference-sut", "--port", str(sut_port), "--gateway-url",
                            f"http://127.0.0.1:{gw_port}", "--data-dir", str(tmp_path / "sut")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert sut.stdout is not None
        line = sut.stdout.readline()
        assert f"listening on http://127.0.0.1:{sut_port}" in line, line
        busy = subprocess.run([*CLI, "reference-sut", "--port", str(sut_port)], capture_output=True, text=True,
                              timeout=30, check=False)
        assert busy.returncode == 2 and "already in use" in busy.stderr and "Traceback" not in busy.stderr
        out = tmp_path / "out"
        proc = subprocess.run([*CLI, "certify", "--sut", f"http://127.0.0.1:{sut_port}", "--gateway-port",
                               str(gw_port), "--routes", "R06", "--report-dir", str(out), "--lang", "en",
                               "--no-progress"], capture_output=True, text=True, timeout=120, check=False)
        console = proc.stdout + proc.stderr
        assert proc.returncode == EXIT_PARTIAL, console[-3000:]
        assert "pre-flight: http://127.0.0.1:" in console
        assert "PARTIAL — suite" in console and "selection routes R06" in console
        doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
        assert doc["summary"]["conformance"] == "PARTIAL" and doc["summary"]["failed"] == 0
        assert doc["sut_contract"]["lg_code"] == "131016" and "MovingNotification" in doc["sut_contract"]["operations"]
        html = (out / "report.html").read_text(encoding="utf-8")
        assert 'data-verdict="PARTIAL"' in html
        assert html.index('id="verdict"') < html.index('id="diagram"')
    finally:
        sut.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        sut.wait(timeout=15)
        assert time.monotonic() - t0 < 10 and sut.returncode == 0


def test_version() -> None:
    proc = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("juki-harness ") and "SUT contract 1.0" in proc.stdout
