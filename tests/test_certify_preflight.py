"""certify's pre-flight and verdict: an unreachable, mistyped or non-conforming SUT stops in seconds with one
message and its own exit code; operations a SUT does not list are "not implemented", not failures; the
verdict is in words and a selection is PARTIAL."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from conformance.cli import main
from conformance.preflight import (
    EXIT_REPORT_EXISTS,
    EXIT_SUT_NONCONFORMING,
    EXIT_SUT_UNREACHABLE,
    EXIT_USAGE,
    PreflightError,
    needed_operations,
    preflight,
    split_implemented,
)
from conformance.scenario import COUNTER_OPERATIONS, load_suite
from conformance.verdict import CONFORMS, DOES_NOT_CONFORM, PARTIAL, group_failures, headline, verdict


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _certify(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    rc = main(["certify", "--report-dir", str(tmp_path / "out"), "--no-progress", *args])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out, time.monotonic() - t0


def test_nothing_listening_stops_in_seconds_with_one_message(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    port = _closed_port()
    rc, text, took = _certify(capsys, tmp_path, "--sut", f"http://127.0.0.1:{port}")
    assert rc == EXIT_SUT_UNREACHABLE
    assert took < 10
    assert text.strip().count("\n") == 0, text
    assert f"cannot reach the SUT at http://127.0.0.1:{port}/health" in text
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("sut", ["foo", "127.0.0.1:8800", "ftp://x/", "http://127.0.0.1:port"])
def test_a_sut_that_is_not_a_url_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  sut: str) -> None:
    rc, text, _ = _certify(capsys, tmp_path, "--sut", sut)
    assert rc == EXIT_USAGE
    assert repr(sut) in text


def test_a_selection_names_the_bad_ids_and_suggests(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, text, _ = _certify(capsys, tmp_path, "--routes", "R99,r06", "--functions", "F08")
    assert rc == EXIT_USAGE
    assert "unknown route 'R99'" in text and "unknown route 'r06' (did you mean R06?)" in text
    rc, text, _ = _certify(capsys, tmp_path, "--scenarios", "f08-p01")
    assert rc == EXIT_USAGE and "(did you mean F08-P01?)" in text


def test_a_report_dir_holding_a_run_is_not_overwritten(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text("{}", encoding="utf-8")
    rc, text, _ = _certify(capsys, tmp_path, "--routes", "R06")
    assert rc == EXIT_REPORT_EXISTS and "--overwrite" in text
    assert (tmp_path / "out" / "results.json").read_text(encoding="utf-8") == "{}"


# --------------------------------------------------------------------------- a vendor's SUT stand-in

Handler = Callable[[web.Request], Any]


@pytest.fixture
async def stand_in() -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """A vendor SUT's /health and /contract only (real HTTP on loopback); answers as configured."""
    runners: list[web.AppRunner] = []

    async def start(answers: dict[str, Any]) -> str:
        async def handle(request: web.Request) -> web.StreamResponse:
            status, body = answers[request.path]
            if isinstance(body, str):
                return web.Response(status=status, text=body)
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_get("/health", handle)
        app.router.add_get("/contract", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for r in runners:
        await r.cleanup()


async def test_contract_operations_are_read(stand_in: Callable[[dict[str, Any]], Any]) -> None:
    url = await stand_in({"/health": (200, {"ok": True}),
                          "/contract": (200, {"contract": "1.0", "operations": ["MovingNotification"]})})
    c = await preflight(url + "/", contract_version="1.0")
    assert c.version == "1.0" and c.operations == ("MovingNotification",)


@pytest.mark.parametrize(("answers", "words"), [
    ({"/health": (503, {"ok": False}), "/contract": (200, {})}, "/health answered 503"),
    ({"/health": (200, {}), "/contract": (404, "no")}, "/contract answered 404"),
    ({"/health": (200, {}), "/contract": (200, "<html>")}, "but not JSON"),
    ({"/health": (200, {}), "/contract": (200, {"operations": []})}, "must answer"),
    ({"/health": (200, {}), "/contract": (200, {"contract": "2.0", "operations": []})}, "major versions differ"),
    ({"/health": (200, {}), "/contract": (200, {"contract": "1.0", "operations": ["Moving"]})},
     "unknown operations Moving"),
])
async def test_a_non_conforming_endpoint_is_refused_with_why(stand_in: Callable[[dict[str, Any]], Any],
                                                            answers: dict[str, Any], words: str) -> None:
    url = await stand_in(answers)
    with pytest.raises(PreflightError) as e:
        await preflight(url, contract_version="1.0")
    assert e.value.code == EXIT_SUT_NONCONFORMING
    assert words in e.value.message


async def test_non_conforming_contract_exits_4_from_the_cli(stand_in: Callable[[dict[str, Any]], Any],
                                                           tmp_path: Path) -> None:
    url = await stand_in({"/health": (200, {}), "/contract": (200, {"contract": "1.0"})})
    from conformance.certify import certify

    t0 = time.monotonic()
    rc = await certify(sut=url, report_dir=tmp_path / "out", progress=False)
    assert rc == EXIT_SUT_NONCONFORMING and time.monotonic() - t0 < 10


def test_operations_not_listed_make_their_scenarios_not_implemented() -> None:
    suite = load_suite()
    ops = sorted(COUNTER_OPERATIONS - {"SpecialMoveInConfirm", "CardHandoverOp"})
    run, skipped = split_implemented(suite.scenarios, ops)
    assert len(run) + len(skipped) == len(suite.scenarios)
    assert skipped and all(set(n["missing_operations"]) <= {"SpecialMoveInConfirm", "CardHandoverOp"}
                           for n in skipped)
    assert {n["id"] for n in skipped} == {s.id for s in suite.scenarios
                                          if needed_operations(s) & {"SpecialMoveInConfirm", "CardHandoverOp"}}
    # every scenario with fixtures in the SUT needs 職権記載 (OfficialCorrection), the fixture loader
    _, none = split_implemented(suite.scenarios, [])
    assert len(none) == sum(1 for s in suite.scenarios if needed_operations(s))


# ------------------------------------------------------------------------------------------ verdict

def test_verdict_in_words() -> None:
    assert verdict(total=122, passed=122, partial=False) == CONFORMS
    assert verdict(total=122, passed=121, partial=False) == DOES_NOT_CONFORM
    assert verdict(total=3, passed=3, partial=True) == PARTIAL
    assert verdict(total=3, passed=2, partial=True) == DOES_NOT_CONFORM
    assert verdict(total=0, passed=0, partial=False) == PARTIAL
    s = {"conformance": PARTIAL, "total": 3, "passed": 3, "partial": True, "selection": {"routes": ["R06"]}}
    line = headline(s, {"version": "1.0", "digest": "abc", "scenarios_in_suite": 122}, "en")
    assert line.startswith("PARTIAL — suite 1.0") and "3 of the suite's 122 ran" in line and "R06" in line
    assert headline(s, {"version": "1.0"}, "ja").startswith("部分実施")


def test_failures_group_by_first_cause() -> None:
    def sc(i: str, msg: str, fn: str = "F06") -> dict[str, Any]:
        return {"id": i, "verdict": "fail", "functions": [fn], "error": None,
                "expectations": [{"verdict": "pass", "code": "X", "check": "c", "message": "ok"},
                                 {"verdict": "fail", "code": "CONT-MESSAGE", "check": "content.message",
                                  "message": msg}]}

    scen = [sc(f"F01-P0{i}", f"no IdentityNotice on arrow 8 for seq {i}", f"F0{i}") for i in range(1, 5)]
    scen += [sc("F08-P01", "no MoveOutCertInfo on arrow 8"), {"id": "F09-P01", "verdict": "pass"},
             {"id": "F10-P01", "verdict": "error", "error": "GW-DOWN: connection refused", "functions": []}]
    groups = group_failures(scen)
    assert [g["count"] for g in groups] == [4, 1, 1]
    assert groups[0]["scenarios"] == ["F01-P01", "F01-P02", "F01-P03", "F01-P04"]
    assert groups[0]["functions"] == ["F01", "F02", "F03", "F04"]
    assert {g["code"] for g in groups[1:]} == {"CONT-MESSAGE", "ERROR"}


def test_results_json_carries_the_verdict_and_not_run(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from conformance.certify import results_json

    suite = load_suite()
    doc = results_json([], suite, sut="http://x", started=datetime.now(UTC), duration=0.1,
                       not_run=[{"id": "F01-P01", "missing_operations": ["MovingNotification"]}])
    assert doc["summary"]["conformance"] == PARTIAL and doc["summary"]["partial"] is True
    assert doc["summary"]["not_implemented"] == ["MovingNotification"]
    assert json.loads(json.dumps(doc))["not_run"][0]["id"] == "F01-P01"


def test_preflight_runs_before_any_harness_starts(tmp_path: Path) -> None:
    """The closed-port answer comes from the pre-flight, not from 121 time-outs (checked by duration)."""
    from conformance.certify import certify

    t0 = time.monotonic()
    rc = asyncio.run(certify(sut=f"http://127.0.0.1:{_closed_port()}", report_dir=tmp_path / "o",
                             progress=False))
    assert rc == EXIT_SUT_UNREACHABLE and time.monotonic() - t0 < 5


async def test_a_sut_serving_another_municipality_is_refused(stand_in: Callable[[dict[str, Any]], Any]) -> None:
    url = await stand_in({"/health": (200, {}), "/contract": (200, {"contract": "1.0", "operations": [],
                                                                    "lg_code": "271276"})})
    with pytest.raises(PreflightError) as e:
        await preflight(url, contract_version="1.0", lg_code="131016")
    assert e.value.code == EXIT_SUT_NONCONFORMING and "lgCode 271276" in e.value.message
    assert (await preflight(url, contract_version="1.0", lg_code="271276")).lg_code == "271276"


def test_one_missing_consequence_is_one_group_whichever_check_saw_it() -> None:
    def sc(i: str, code: str, msg: str) -> dict[str, Any]:
        return {"id": i, "verdict": "fail", "functions": ["F06"],
                "expectations": [{"verdict": "fail", "code": code, "check": "x", "message": msg}]}

    groups = group_failures([
        sc("A", "CONT-MESSAGE", "no IdentityNotice on arrow 8 was found"),
        sc("B", "CONT-MESSAGE", "no IdentityNotice on arrow 8 where j:Change/j:Reason/@code was found"),
        sc("C", "SEQ-PRESENT", "0 × IdentityNotice on arrow 8, expected exactly 1"),
        sc("D", "STEP", "step refused: waited 10.0 s for 1 × IdentityNotice on arrow 8; found 0"),
        sc("E", "CONT-MESSAGE", "no IdentityNotice on arrow 5 was found"),
        sc("F", "CONT-MESSAGE", "IdentityNotice on arrow 8: 1 of 1 message(s) break an assertion"),
    ])
    assert [(g["count"], g["message"]) for g in groups] == [
        (4, "IdentityNotice on arrow 8 was never sent"), (1, "IdentityNotice on arrow 5 was never sent"),
        (1, "IdentityNotice on arrow 8: 1 of 1 message(s) break an assertion")]
    assert groups[0]["scenarios"] == ["A", "B", "C", "D"]


def test_junit_lists_not_implemented_scenarios_as_skipped() -> None:
    from lxml import etree

    from conformance.certify import junit_xml

    xml = junit_xml([], not_run=[{"id": "F09-P01", "route": "R07", "title": {"en": "特例転入 <ok>"},
                                  "missing_operations": ["SpecialMoveInConfirm"]}])
    root = etree.fromstring(xml.encode())
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "F09-P01 特例転入 <ok>"
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == "not implemented by the SUT: SpecialMoveInConfirm"


async def test_a_run_where_nothing_is_implemented_is_partial_and_lists_them(
        stand_in: Callable[[dict[str, Any]], Any], tmp_path: Path) -> None:
    from conformance.certify import certify
    from conformance.preflight import EXIT_PARTIAL

    url = await stand_in({"/health": (200, {}), "/contract": (200, {"contract": "1.0", "operations": []})})
    out = tmp_path / "out"
    rc = await certify(sut=url, functions=["F03"], report_dir=out, progress=False, lang="en")
    assert rc == EXIT_PARTIAL
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["summary"]["conformance"] == PARTIAL and doc["summary"]["total"] == 0
    assert doc["summary"]["not_implemented"] == ["CopyRequest", "OfficialCorrection"]
    assert {n["id"] for n in doc["not_run"]} == {s.id for s in load_suite().select(None, ["F03"], None)}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-verdict="PARTIAL"' in html and 'id="not-run"' in html and "OfficialCorrection" in html
    assert "skipped=" in (out / "junit.xml").read_text(encoding="utf-8")
