"""The judge is judged, for real: `juki-harness selftest` on every defect of the reference SUT.

One subprocess run (real servers on loopback, one fresh reference SUT per defect) backs the checks: the clean
suite has no failure, every defect is detected by the scenario that names it, and the defect catalogue covers
every kind of defect a conformance judge must catch. Those runs are slow (``-m slow``); the catalogue's
classes and the traffic mutations are checked fast in tests/test_reference_defects.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from conformance.scenario import load_suite
from conformance.selftest import load_defects

#: The kinds of defect the judge must be shown to catch ("missing message, wrong arrow, wrong order,
#: wrong value, 個人番号 leaked, duplicate without retry reason, no retry after downtime, accepting a malformed
#: inbound message, a document missing a required item").
REQUIRED_KINDS = {"missing-message", "wrong-arrow", "wrong-order", "wrong-value", "data-class-leak",
                  "duplicate", "no-retry", "accept-malformed", "document-missing-item"}


def test_the_defect_catalogue_covers_every_required_kind() -> None:
    kinds = Counter(c.kind for c in load_defects(load_suite()))
    assert set(kinds) >= REQUIRED_KINDS, f"kinds without a defect: {REQUIRED_KINDS - set(kinds)}"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "selftest", "--quiet", "--seed", "5"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(proc.stdout)
    data["_exit"] = proc.returncode
    return data


@pytest.mark.slow
def test_the_clean_reference_sut_passes_every_scenario(report: dict[str, Any]) -> None:
    assert report["clean_failures"] == []


@pytest.mark.slow
def test_every_defect_is_caught_by_the_scenario_that_names_it(report: dict[str, Any]) -> None:
    missed = [(r["defect"], r["expected_scenario"], r["caught_by"], r["errors"]) for r in report["results"]
              if r["expected_scenario"] not in r["caught_by"]]
    assert not missed
    assert report["detection_rate"] == 1.0 and report["detected"] == report["defects"] == len(report["results"])
    assert report["_exit"] == 0


@pytest.mark.slow
def test_the_report_lists_every_defect_of_the_catalogue(report: dict[str, Any]) -> None:
    from simulators.reference.defects import DEFECTS

    assert {r["defect"] for r in report["results"]} == set(DEFECTS)
    assert report["kinds_missing"] == []
    assert all(v["rate"] == 1.0 for v in report["by_kind"].values() if v["defects"])


@pytest.mark.slow
def test_mutation_mode_measures_the_suite_against_a_running_sut() -> None:
    """`selftest --mutate`: the mutations are hooked into the gateway in front of the (here: reference) SUT."""
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "selftest", "--quiet", "--mutate",
                           "--sut", "reference", "--mutations", "itaiji-variant,refusal-generic,seq-offset",
                           "--scenarios", "F06-P01,F03-N01"],
                          capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(proc.stdout)
    assert data["clean_failures"] == [] and data["mutations"] == 3
    caught = {r["mutation"]: r["caught_by"] for r in data["results"]}
    assert "F06-P01" in caught["itaiji-variant"] and caught["refusal-generic"] == ["F03-N01"]
    assert proc.returncode == 0
