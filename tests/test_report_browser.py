"""report.html in a real browser: headless Chromium, offline, renders the diagram and runs its inline script.

Chromium is required (CI installs it with `apt-get install -y chromium`); when it is missing this test FAILS
with a message saying so, rather than skipping, so a CI machine without it cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conformance import catalogue
from reports.demo import MY_NUMBER, write_demo

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
TIMEOUT = 90


def _chromium() -> str:
    for c in CANDIDATES:
        path = c if os.path.isabs(c) else shutil.which(c)
        if path and os.access(path, os.X_OK):
            return path
    pytest.fail("headless Chromium is not installed (looked for /usr/bin/chromium, chromium, "
                "chromium-browser, google-chrome): install it with "
                "`apt-get update && apt-get install -y chromium`; the browser test cannot run without it")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser")
    return write_demo(out / "run", lang="ja")["html"]


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    env = {**os.environ, "HOME": str(tmp)}  # keep the browser's own files out of the real home
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {TIMEOUT}s: {exc}")


def test_screenshot_is_a_png_of_the_page(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    proc = _run(tmp_path, f"--screenshot={png}", "--window-size=1600,2400", report.as_uri())
    assert png.is_file(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (1600, 2400)
    assert len(data) > 50_000, "a screenshot this small is a blank page"


def test_dumped_dom_has_the_diagram_the_functions_and_ran_the_script(report: Path, tmp_path: Path) -> None:
    cat = catalogue.default()
    proc = _run(tmp_path, "--dump-dom", "--virtual-time-budget=2000", report.as_uri() + "#arrow-detail-19")
    dom = proc.stdout
    assert "<svg" in dom and 'id="flow"' in dom, f"no diagram in DOM; chromium said:\n{proc.stderr[-2000:]}"
    for n, a in cat.arrows.items():
        if a.in_route:
            assert f'id="arrow-{n}"' in dom, n
    for fid in cat.functions:
        assert f'id="fn-{fid}"' in dom, fid
    # the inline script ran offline: it selected the arrow named in the URL and opened its panel
    assert 'class="arrow cls-yellow line-system st-fail selected" id="arrow-19"' in dom
    assert 'class="arrow-detail open" id="arrow-detail-19"' in dom
    assert MY_NUMBER not in dom
