"""`juki-harness bench suite`: how long the whole suite takes against the reference SUT, as a user runs it.

Why a subprocess per run: the figure that matters is what `juki-harness certify --sut reference` costs a
user — interpreter start, harness and reference SUT start, every scenario, reports — not an in-process loop.
Prints one JSON object: the median wall time and certify's own duration over ``runs``, every run, and the
slowest scenarios by their median duration.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def _one_run(concurrency: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="juki-bench-suite-") as tmp:
        out = Path(tmp)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "conformance.cli", "certify", "--sut", "reference",
                               "--report-dir", str(out), "--concurrency", str(concurrency), "--seed", str(seed),
                               "--no-progress"], capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {"exit": proc.returncode, "wall_s": round(wall, 3), "certify_s": doc["duration"],
            "scenarios": len(doc["scenarios"]),
            "passed": sum(1 for s in doc["scenarios"] if s["verdict"] == "pass"),
            "durations": {s["id"]: s["duration"] for s in doc["scenarios"]}}


def run_suite_bench(*, runs: int = 3, concurrency: int = 8, slowest: int = 8) -> dict[str, Any]:
    """Certify the reference SUT ``runs`` times; medians, per-run figures and the slowest scenarios."""
    per_run = [_one_run(concurrency, seed=1000 + i) for i in range(runs)]
    by_id: dict[str, list[float]] = defaultdict(list)
    for r in per_run:
        for sid, d in r.pop("durations").items():
            by_id[sid].append(float(d))
    medians = sorted(((statistics.median(v), k) for k, v in by_id.items()), reverse=True)
    return {
        "suite_wall_s": round(statistics.median(r["wall_s"] for r in per_run), 3),
        "suite_certify_s": round(statistics.median(r["certify_s"] for r in per_run), 3),
        "target_s": 60,
        "scenarios": per_run[0]["scenarios"] if per_run else 0,
        "all_passed": all(r["exit"] == 0 and r["passed"] == r["scenarios"] for r in per_run),
        "concurrency": concurrency, "runs": runs,
        "slowest": [{"scenario": k, "median_s": round(m, 3)} for m, k in medians[:slowest]],
        "per_run": per_run,
    }
