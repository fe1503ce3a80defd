"""End to end against the reference SUT: certify on a subset passes, reports are complete and masked, and a
scenario fails (with evidence) against a SUT carrying the defect it exists to catch."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from lxml import etree

from conformance.certify import certify, run_suite
from conformance.identifiers import is_valid_my_number
from conformance.scenario import load_suite

SUBSET = ["F06-P01", "F03-P01", "F04-N01", "F21-P01"]


async def test_certify_on_a_subset_passes_and_writes_masked_reports(tmp_path: Path) -> None:
    out = io.StringIO()
    code = await certify(ids=SUBSET, report_dir=tmp_path, concurrency=4, run_seed=7, progress=False, out=out,
                         partial_ok=True)
    assert code == 0, out.getvalue()
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    summary = {k: doc["summary"][k] for k in ("total", "passed", "failed", "errors", "verdict")}
    assert summary == {"total": 4, "passed": 4, "failed": 0, "errors": 0, "verdict": "pass"}
    assert doc["summary"]["conformance"] == "PARTIAL"
    assert doc["suite"]["version"] == "1.0" and len(doc["suite"]["digest"]) == 64
    assert doc["harness"]["version"]
    assert doc["coverage"]["functions_total"] == 30 and doc["coverage"]["routes_total"] == 22
    assert doc["coverage"]["functions"]["F06"]["positive"] == 1
    by_id = {s["id"]: s for s in doc["scenarios"]}
    assert set(by_id) == set(SUBSET)
    f06 = by_id["F06-P01"]
    assert f06["route"] == "R04" and f06["functions"] == ["F06"] and f06["verdict"] == "pass"
    assert f06["duration"] > 0
    ev = next(e for e in f06["expectations"] if e["check"] == "content.message")
    assert ev["evidence"][0]["seq"] > 0 and ev["evidence"][0]["message_id"]
    assert any(e.get("xpath") == "j:Identity/j:MyNumber" for e in ev["evidence"])
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert not [n for n in re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", text) if is_valid_my_number(n)]
    assert "********" in text
    junit = etree.parse(str(tmp_path / "junit.xml")).getroot()
    assert junit.get("tests") == "4" and junit.get("failures") == "0"
    assert {tc.get("name").split()[0] for tc in junit.iter("testcase")} == set(SUBSET)
    assert not (tmp_path / "trace.sqlite").exists(), "the raw trace (unmasked 個人番号) must not be left behind"
    assert (tmp_path / "report.html").is_file() and (tmp_path / "evidence.json").is_file()
    assert "4/4 scenarios passed" in out.getvalue()


@pytest.mark.parametrize(("defect", "scenario", "xpath"), [
    ("wrong-address-in-notice", "F06-P01", "j:Identity/j:Address/j:Town"),
    ("copy-unasked-honseki", "F03-P01", "j:Document/j:Member/j:Honseki"),
])
async def test_a_scenario_fails_against_the_defect_it_exists_to_catch(defect: str, scenario: str,
                                                                      xpath: str) -> None:
    chosen = load_suite().select(ids=[scenario])
    (res,) = await run_suite(chosen, defects=[defect], run_seed=3, default_within=2.0)
    assert res.verdict == "fail"
    bad = [e for o in res.failures() for e in o.evidence if e.note]
    assert any(e.xpath == xpath for e in bad), res.explain()
    assert scenario in res.explain() and "✗" in res.explain()
