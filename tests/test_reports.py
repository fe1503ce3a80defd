"""Reports: the evidence bundle verifies, tampering is detected and named, report.html has everything."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance import catalogue
from conformance.cli import main
from conformance.masking import salted_hash
from reports import write_reports
from reports.demo import (
    MY_NUMBER,
    OTHER_NUMBER,
    synthetic_clock_log,
    synthetic_config,
    synthetic_records,
    synthetic_results,
)
from reports.evidence import (
    build_evidence,
    file_digest,
    results_digest,
    sha256_json,
    verify_bundle,
    versions_of,
)
from reports.html import LABELS, build_model, pretty_xml, render_html
from simulators.trace import TraceRecord, TraceStore, record_to_json

UNUSED = {11, 12, 17, 22, 34}
Bundle = dict[str, Any]


@pytest.fixture(scope="module")
def records() -> list[TraceRecord]:
    return synthetic_records()


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return synthetic_results()


@pytest.fixture(scope="module")
def cat() -> catalogue.Catalogue:
    return catalogue.default()


def _bundle(results: dict[str, Any], records: list[TraceRecord], keep_raw: bool = False) -> Bundle:
    return build_evidence(results, records, config=synthetic_config(), seeds={"run": 7},
                          clock_log=synthetic_clock_log(), keep_raw=keep_raw, salt="00" * 16)


@pytest.fixture
def out(tmp_path: Path, results: dict[str, Any], records: list[TraceRecord]) -> Path:
    paths = write_reports(results, records, tmp_path / "run", config=synthetic_config(), seeds={"run": 7},
                          clock_log=synthetic_clock_log(), lang="ja")
    assert paths == {"evidence": tmp_path / "run" / "evidence.json", "html": tmp_path / "run" / "report.html"}
    (tmp_path / "run" / "results.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return tmp_path / "run"


def _verify(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["verify", str(path), *extra])
    return rc, capsys.readouterr().out


# ------------------------------------------------------------------------------------------ evidence

def test_untouched_bundle_verifies(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = _verify(out, capsys)
    assert rc == 0, text
    assert text.startswith("bundle intact: 4 trace records")
    assert "results.json beside the bundle agrees" in text


def test_bundle_keeps_what_a_reviewer_needs(out: Path, records: list[TraceRecord]) -> None:
    b = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
    assert b["versions"]["harness_version"] == "0.1.0"
    assert b["versions"]["suite_digest"] == "sha256:" + "ab" * 32
    assert b["versions"]["catalogue_version"] == "1.0"
    assert b["versions"]["catalogue_digest"] == file_digest(catalogue.default().source)
    assert b["versions"]["catalogue_digest"].startswith("sha256:")
    assert b["seeds"] == {"run": 7}
    assert [c["reason"] for c in b["clock_log"]] == ["14 days after moving in"]
    assert [r["hash"] for r in b["records"]] == [r.hash for r in records]
    assert [r["payload_sha256"] for r in b["records"]] == [r.payload_sha256 for r in records]
    assert [v["verdict"] for v in b["verdicts"]] == ["pass", "fail", "error"]
    assert b["anchor"] == {"count": 4, "first_seq": 1, "last_seq": 4, "last_hash": records[-1].hash,
                           "last_evidence_hash": b["records"][-1]["evidence_hash"],
                           "results_digest": results_digest(json.loads((out / "results.json").read_text("utf-8")))}
    assert b["config"]["sut"]["token"] == "***"
    assert b["config"]["tls"] == {"key_file": "***", "password": "***"}
    assert b["config"]["gateway"]["port"] == 8080


def test_masked_bundle_keeps_salted_hashes_not_numbers(out: Path) -> None:
    text = (out / "evidence.json").read_text(encoding="utf-8")
    assert MY_NUMBER not in text and OTHER_NUMBER not in text
    b = json.loads(text)
    assert b["masking"]["mode"] == "masked" and b["masking"]["salt"]
    assert "salted SHA-256" in b["masking"]["en"]
    rec = b["records"][2]
    assert "********9018" in rec["payload"]
    assert rec["findings"][0]["message"] == "個人番号 ********9018 on 19"
    salt = b["masking"]["salt"]
    assert rec["my_numbers"] == [{"last4": "9018", "salted_sha256": salted_hash(MY_NUMBER, salt)}]


def _set(path: tuple[Any, ...], value: Callable[[Any], Any]) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        node: Any = b
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value(node[path[-1]])
    return edit


def _flip_hex(h: str) -> str:
    return ("1" if h[0] != "1" else "2") + h[1:]


# one byte changed in: a record's payload hash, a field, a masked payload, a verdict, the suite digest ...
TAMPERING: dict[str, tuple[Callable[[Bundle], None], str]] = {
    "payload hash": (_set(("records", 1, "payload_sha256"), _flip_hex), "record seq 2: evidence hash"),
    "record field": (_set(("records", 2, "verdict"), lambda v: "refused"), "record seq 3: evidence hash"),
    "trace hash": (_set(("records", 0, "hash"), _flip_hex), "record seq 1: evidence hash"),
    "masked payload": (_set(("records", 0, "payload"), lambda p: p.replace("山田", "山中")),
                       "record seq 1: evidence hash"),
    "verdict": (_set(("verdicts", 1, "verdict"), lambda v: "pass"), "verdict of scenario R19-F27-yellow"),
    "expectation verdict": (_set(("verdicts", 1, "expectations", 0, "verdict"), lambda v: "pass"),
                            "verdict of scenario R19-F27-yellow"),
    "suite digest": (_set(("versions", "suite_digest"), lambda d: d[:-1] + ("c" if d[-1] != "c" else "d")),
                     "versions digest: suite_digest was changed"),
    "harness version": (_set(("versions", "harness_version"), lambda v: "0.1.1"),
                        "versions digest: harness_version was changed"),
    "config": (_set(("config", "gateway", "port"), lambda v: 9090), "context digest"),
    "last record removed": (lambda b: b["records"].pop(), "anchor count"),
}


@pytest.mark.parametrize("what", list(TAMPERING))
def test_tampering_is_detected_and_named(what: str, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit, expected = TAMPERING[what]
    path = out / "evidence.json"
    b = json.loads(path.read_text(encoding="utf-8"))
    edit(b)
    path.write_text(json.dumps(b, ensure_ascii=False), encoding="utf-8")
    rc, text = _verify(path, capsys, "--no-results")
    assert rc == 1
    assert text.startswith("FAIL: ")
    assert expected in text


def test_a_rewritten_verdict_and_its_hash_is_still_caught(results: dict[str, Any],
                                                          records: list[TraceRecord]) -> None:
    b = _bundle(results, records)
    b["verdicts"][1]["verdict"] = "pass"
    b["verdicts"][1]["hash"] = sha256_json({k: v for k, v in b["verdicts"][1].items() if k != "hash"})
    problems = verify_bundle(b).problems
    assert problems == ["verdicts digest does not match the list of verdict hashes",
                        "bundle digest does not match the versions, verdicts, context and anchor digests"]


def test_results_json_that_disagrees_with_the_evidence_fails(out: Path, results: dict[str, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    changed = copy.deepcopy(results)
    changed["scenarios"][1]["verdict"] = "pass"
    (out / "results.json").write_text(json.dumps(changed), encoding="utf-8")
    rc, text = _verify(out, capsys)
    assert rc == 1
    assert "results.json scenario R19-F27-yellow" in text


def test_raw_bundle_keeps_payloads_and_checks_the_trace_chain(results: dict[str, Any],
                                                              records: list[TraceRecord]) -> None:
    b = _bundle(results, records, keep_raw=True)
    assert b["masking"]["mode"] == "raw" and b["masking"]["salt"] is None
    assert b["records"][0]["payload"] == records[0].payload.decode()
    assert MY_NUMBER in json.dumps(b, ensure_ascii=False)
    assert b["config"]["sut"]["token"] == "***"  # secrets go even with keep_raw
    assert verify_bundle(b).ok
    # change one payload byte and recompute the whole evidence chain, anchor and digests: only the trace's
    # own hashing over the raw payload can tell
    forged = copy.deepcopy(b)
    forged["records"][0]["payload"] = forged["records"][0]["payload"].replace("山田", "山中")
    redo = build_evidence(results, [copy.deepcopy(r) for r in forged["records"]], config=synthetic_config(),
                          seeds={"run": 7}, clock_log=synthetic_clock_log(), keep_raw=True)
    check = verify_bundle(redo)
    assert not check.ok
    assert check.problems == ["record seq 1: payload_sha256 does not match the payload (trace chain over raw "
                              "payloads)"]


def test_records_may_be_given_as_json(results: dict[str, Any], records: list[TraceRecord]) -> None:
    as_json = build_evidence(results, [record_to_json(r) for r in records], config={}, seeds={},
                             clock_log=[], salt="00" * 16)
    as_records = build_evidence(results, records, config={}, seeds={}, clock_log=[], salt="00" * 16)
    assert as_json["records"] == as_records["records"]
    assert as_json["digests"]["verdicts"] == as_records["digests"]["verdicts"]


def test_versions_from_flat_or_nested_results() -> None:
    flat = {"harness_version": "1", "suite_version": "2", "suite_digest": "d", "started_at": "t",
            "duration_s": 1.5, "sut": "s"}
    nested = {"harness": {"version": "1", "catalogue": "9"}, "suite": {"version": "2", "digest": "d"},
              "started": "t", "duration": 1.5, "sut": "s"}
    a, b = versions_of(flat, "9"), versions_of(nested)
    assert a == b
    assert a["catalogue_version"] == "9" and a["suite_digest"] == "d"


def test_verify_of_something_that_is_not_a_bundle_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    rc, text = _verify(tmp_path / "x.json", capsys)
    assert rc == 1 and "not an evidence bundle" in text
    rc, text = _verify(tmp_path / "missing.json", capsys)
    assert rc == 1 and "cannot read" in text


# ------------------------------------------------------------------------------------------------ HTML

@pytest.fixture(scope="module")
def html_ja(results: dict[str, Any], records: list[TraceRecord]) -> str:
    return render_html(results, _bundle(results, records), lang="ja")


def test_html_has_the_diagram_every_arrow_and_function(html_ja: str, cat: catalogue.Catalogue) -> None:
    assert '<svg id="flow"' in html_ja
    used = [n for n, a in cat.arrows.items() if a.in_route]
    assert len(used) == 33
    for n in used:
        group = re.search(rf'<g class="arrow [^"]*" id="arrow-{n}" data-arrow="{n}">(.*?)</g>', html_ja, re.S)
        assert group, n
        assert f">{n}</text>" in group.group(1), n
        assert f'id="arrow-detail-{n}"' in html_ja
    for n in range(1, 39):  # the table lists all 38 numbers, the unused ones marked
        assert f'id="arrow-row-{n}"' in html_ja
    for n in UNUSED:
        assert f'id="arrow-{n}"' not in html_ja
    for fid in cat.functions:
        assert f'id="fn-{fid}"' in html_ja
        assert f">{fid}</th>" in html_ja  # coverage matrix column
    for rid in cat.routes:
        assert f'id="route-{rid}"' in html_ja


def test_html_styles_arrows_by_line_class_and_status(html_ja: str) -> None:
    def cls(n: int) -> str:
        m = re.search(rf'<g class="([^"]*)" id="arrow-{n}"', html_ja)
        assert m
        return m.group(1)

    assert cls(8) == "arrow cls-green line-system st-pass"
    assert cls(19) == "arrow cls-yellow line-system st-fail"  # the failing expectation named arrow 19
    assert cls(36) == "arrow cls-none line-manual st-fail"  # R01 errored without naming an arrow
    assert cls(26) == "arrow cls-blue line-system st-notrun"
    assert 'class="fn st-pass" id="fn-F06"' in html_ja
    assert 'class="fn st-fail" id="fn-F27"' in html_ja
    assert 'class="fn st-notrun" id="fn-F02"' in html_ja


def test_html_shows_the_failure_with_the_node_highlighted(html_ja: str) -> None:
    failures = html_ja[html_ja.index('<section id="failures">'):html_ja.index('<section id="coverage">')]
    assert "R19-F27-yellow" in failures and "CLASS-MYNUMBER" in failures
    assert "/j:Envelope/j:Body/j:CertificateData/j:Remarks" in failures
    assert "no 個人番号" in failures  # expected
    highlighted = re.findall(r'<span class="hl">(.*?)</span>\n', failures)
    assert len(highlighted) == 1 and "Remarks" in highlighted[0] and "********9018" in highlighted[0]
    assert "the counter adapter did not answer" in failures  # the scenario error


def test_html_is_masked_self_contained_and_says_so_first(results: dict[str, Any], records: list[TraceRecord]
                                                        ) -> None:
    html = render_html(results, _bundle(results, records, keep_raw=True), lang="en")
    assert MY_NUMBER not in html and OTHER_NUMBER not in html  # masked even from a raw bundle
    notice = html.index('id="masking-notice"')
    assert notice < html.index('<svg id="flow"')
    assert "--keep-raw" in html[notice:notice + 600]
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched: no CDN, no remote asset
    assert "<script src" not in html and "<link" not in html and "@import" not in html


@pytest.mark.parametrize(("lang", "words"), [
    ("ja", ["適合性試験レポート", "データフロー図", "カバレッジ", "既存住基システム", "破線"]),
    ("en", ["Conformance report", "Data-flow diagram", "Coverage", "Existing resident-record system",
            "dashed"]),
])
def test_labels_follow_the_language(lang: str, words: list[str], results: dict[str, Any],
                                    records: list[TraceRecord]) -> None:
    html = render_html(results, _bundle(results, records), lang=lang)
    assert f'<html lang="{lang}">' in html
    for w in words:
        assert w in html, w


def test_report_command_renders_again_without_rerunning(out: Path, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert "適合性試験レポート" in (out / "report.html").read_text(encoding="utf-8")
    assert main(["report", str(out), "--lang", "en"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Conformance report" in html and "適合性試験レポート" not in html
    assert "R19-F27-yellow" in html
    assert "report.html" in capsys.readouterr().out


def test_report_builds_evidence_from_certify_trace_when_missing(tmp_path: Path, results: dict[str, Any],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    async def write() -> None:
        async with TraceStore(tmp_path / "trace.sqlite") as s:
            await s.append(kind="message", verdict="accepted", arrow=8,
                           payload=f"<a>{MY_NUMBER}</a>".encode())

    asyncio.run(write())
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()
    assert MY_NUMBER not in (tmp_path / "evidence.json").read_text(encoding="utf-8")
    capsys.readouterr()
    rc, text = _verify(tmp_path, capsys)
    assert rc == 0, text


@pytest.mark.parametrize(("xpath", "selects"), [
    ("/j:Envelope/j:Body/j:X/j:B", "element"),
    ("//j:X/@code", "attribute"),
    ("//j:B/text()", "text"),
])
def test_pretty_xml_highlights_elements_attributes_and_text(xpath: str, selects: str) -> None:
    xml = ('<j:Envelope xmlns:j="urn:juki-harness:1"><j:Body><j:X code="7"><j:A>1</j:A>'
           f"<j:B>{MY_NUMBER}</j:B></j:X></j:Body></j:Envelope>")
    out = str(pretty_xml(xml, xpath))
    assert MY_NUMBER not in out and "********9018" in out
    hl = re.findall(r'<span class="hl">(.*?)</span>\n?', out)
    marks = re.findall(r"<mark>(.*?)</mark>", out)
    if selects == "attribute":
        assert len(marks) == 1 and 'code</span>="7"' in marks[0] and not hl
    else:
        assert len(hl) == 1 and "j:B" in hl[0] and not marks


def test_pretty_xml_of_a_broken_payload_is_escaped_text() -> None:
    out = str(pretty_xml(f"<a><b>{MY_NUMBER}</a>", "//b"))
    assert out.startswith('<pre class="xml">&lt;a&gt;')
    assert "********9018" in out


def test_labels_exist_in_both_languages() -> None:
    assert set(LABELS["ja"]) == set(LABELS["en"])


def _rec(seq: int, payload: str, **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "payload": payload, "message_id": None, "correlation_id": None, "arrow": None,
            "kind": "message", **kw}


REQUEST = ('<Envelope xmlns="urn:juki-harness:1"><Header><MessageId>M-1</MessageId></Header>'
           "<Body><CounterRequest><CopyRequest/></CounterRequest></Body></Envelope>")
ANSWER = ('<Envelope xmlns="urn:juki-harness:1"><Header><MessageId>M-2</MessageId>'
          "<CorrelationId>M-1</CorrelationId></Header><Body><CounterResult><Result><Status>accepted</Status>"
          '</Result><Document kind="copy"><Member><Name>x</Name></Member></Document></CounterResult></Body>'
          "</Envelope>")


def test_evidence_without_seq_points_at_the_message_holding_its_xpath(cat: catalogue.Catalogue) -> None:
    """Checks name the request's id and an XPath relative to the answer's body root (content.result)."""
    evidence = {"records": [_rec(1, REQUEST, message_id="M-1", arrow=30),
                            _rec(2, ANSWER, message_id="M-2", correlation_id="M-1", arrow=31)]}
    scenario = {"id": "S", "route": "R02", "functions": ["F03"], "verdict": "fail", "expectations": [
        {"check": "content.result", "code": "CONT-RESULT", "verdict": "fail", "message": "m", "evidence": [
            {"message_id": "M-1", "xpath": "j:Document/j:Member/j:Address/j:Town", "expected": "A",
             "actual": []},
            {"message_id": "M-1", "xpath": "j:Result/j:Status", "expected": "accepted", "actual": "accepted"},
        ]}]}
    model = build_model({"scenarios": [scenario]}, evidence, cat, "en")
    (failure,) = model["failures"]
    assert [it["record"]["seq"] for it in failure["items"]] == [2, 2]
    assert [it["same"] for it in failure["items"]] == [False, True]
    (msg,) = failure["messages"]  # the answer, shown once
    assert msg["record"]["seq"] == 2
    assert msg["missing"] == [("j:Document/j:Member/j:Address/j:Town", "j:Document/j:Member")]
    highlighted = re.findall(r'<span class="hl">(.*?)</span>', str(msg["xml"]))
    assert any("Member" in h for h in highlighted) and not any("Status" in h for h in highlighted)


def test_a_failure_naming_no_arrow_marks_its_route_not_incidental_traffic(cat: catalogue.Catalogue) -> None:
    evidence = {"records": [_rec(1, REQUEST, tenant="T1", arrow=30), _rec(2, REQUEST, tenant="T1", arrow=21)]}
    scenario = {"id": "S", "route": "R01", "functions": ["F01"], "verdict": "fail", "tenant": "T1",
                "expectations": [{"check": "content.message", "code": "CONT-MESSAGE", "verdict": "fail",
                                  "message": "no IdentityNotice on arrow 8 was found", "evidence": []}]}
    model = build_model({"scenarios": [scenario]}, evidence, cat, "en")
    status = {a.n: a.status for a in model["diagram"].arrows}
    assert status[36] == status[30] == "fail"
    assert status[21] == "pass"  # touched by the tenant, not what failed
    assert status[8] == "notrun"


@pytest.mark.parametrize("damage", [
    lambda b: b.update(records={"a": 1}),
    lambda b: b.update(anchor=[1, 2]),
    lambda b: b.update(verdicts="pass"),
    lambda b: b.update(versions=None),
    lambda b: b["records"].__setitem__(0, ["not", "a", "record"]),
])
def test_a_structurally_damaged_bundle_fails_without_crashing(damage: Callable[[Bundle], None],
                                                              results: dict[str, Any],
                                                              records: list[TraceRecord]) -> None:
    b = _bundle(results, records)
    damage(b)
    check = verify_bundle(b)
    assert not check.ok
    assert check.lines()[0].startswith("FAIL: ")


def test_diagram_number_badges_do_not_overlap(cat: catalogue.Catalogue) -> None:
    """No badge covers another (13/14, 23/24/30/31 did) or sits on an actor box."""
    import math

    from reports import diagram

    d = diagram.build(cat, {})
    spots = [(a.n, a.label_x, a.label_y) for a in d.arrows]
    assert len(spots) == sum(1 for a in cat.arrows.values() if a.src and a.dst)
    for i, (n, x, y) in enumerate(spots):
        for m, u, v in spots[i + 1:]:
            assert math.hypot(x - u, y - v) >= 2 * diagram.LABEL_R, (n, m)
        for b in d.boxes:
            assert abs(x - b.x) >= diagram.BOX_W / 2 or abs(y - b.y) >= diagram.BOX_H / 2, (n, b.id)


def test_diagram_badges_of_bent_arrows_sit_off_the_other_curve(cat: catalogue.Catalogue) -> None:
    """13 and 14 bend over the SUT 12 px apart: a badge on one must not sit under the other's line."""
    import math
    import re as re_

    from reports import diagram

    d = diagram.build(cat, {})
    bent = [a for a in d.arrows if " Q" in a.path]
    assert len(bent) >= 2
    for a in bent:
        for b in bent:
            if a.n == b.n:
                continue
            x0, y0, mx, my, x2, y2 = map(float, re_.findall(r"-?\d+(?:\.\d+)?", b.path))
            pts = [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t ** 2 * x2,
                    (1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t ** 2 * y2) for t in (i / 200 for i in range(201))]
            gap = min(math.hypot(a.label_x - x, a.label_y - y) for x, y in pts)
            assert gap >= diagram.LABEL_R + 0.4, (a.n, b.n, gap)
