"""Named checks on crafted trace records: each fails on the defect it exists to catch, passes without it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from lxml import etree

from conformance import catalogue
from conformance.checks import CHECKS, CheckContext, Rec, StepResult, mask_my_numbers, run_check
from conformance.envelope import J, build, error_report, header
from conformance.errors import Finding
from conformance.identifiers import make_juminhyo_code, make_my_number

SUT = "131016"
PEER = "011002"
MY = make_my_number("12345678901")  # 123456789018
CODE = make_juminhyo_code("1234567890")
_seq = count(1)
T0 = datetime(2026, 3, 30, 1, 0, tzinfo=UTC)


def rec(mtype: str, arrow: int | None, body: etree._Element, *, sender: str = "juki", receiver: str = "cs",
        kind: str = "message", verdict: str = "accepted", mid: str | None = None, retry: str | None = None,
        findings: list[dict[str, Any]] | None = None, seq: int | None = None, at: datetime | None = None,
        receiver_lg: str = SUT, correlation: str | None = None) -> Rec:
    h = header(mtype, (sender, SUT), (receiver, receiver_lg), sent_at=T0,
               message_id=mid, correlation_id=correlation)
    if retry:
        h = replace(h, retry_reason=retry)
    n = seq if seq is not None else next(_seq)
    return Rec({"seq": n, "kind": kind, "verdict": verdict, "arrow": arrow, "message_type": mtype,
                "message_id": h.message_id, "correlation_id": correlation, "sender_actor": sender,
                "receiver_actor": receiver, "sender_lg": SUT, "receiver_lg": receiver_lg,
                "findings": findings or [], "payload": build(h, body).decode(),
                "recorded_at": (at or T0 + timedelta(seconds=n)).isoformat(), "note": None})


def identity(code: str = CODE, seq: int = 1, reason: str = "A04", town: str = "丸の内") -> etree._Element:
    el: etree._Element = J.IdentityNotice(
        J.Identity(J.JuminhyoCode(code), J.MyNumber(MY), J.Name(J.Kanji("山田　太郎")),
                   J.BirthDate(J.Western("1980-01-02")), J.Sex("1"),
                   J.Address(J.LgCode(SUT), J.Prefecture("東京都"), J.City("千代田区"), J.Town(town))),
        J.Change(J.Reason("職権記載", code=reason), J.EventDate(J.Western("2026-03-30")), J.Seq(str(seq))))
    return el


def transfer(target: str = "税務") -> etree._Element:
    el: etree._Element = J.ResidentTransfer(J.TransferNo("T-1"), J.Target(target))
    return el


def cert_data(remarks: str = "") -> etree._Element:
    m = J.Member(J.Name(J.Kanji("山田　太郎")))
    if remarks:
        m.append(J.Remarks(remarks))
    el: etree._Element = J.CertificateData(J.RequestNo("R-1"), J.Result(J.Status("accepted")), m)
    return el


def ctx(records: list[Rec], window: int = 0, steps: dict[str, StepResult] | None = None) -> CheckContext:
    return CheckContext(records=sorted(records, key=lambda r: r.seq), catalogue=catalogue.default(),
                        window=window, steps=steps or {}, sut_lg=SUT)


def run(name: str, records: list[Rec], params: dict[str, Any] | None = None, **kw: Any) -> tuple[bool, str]:
    o = run_check(name, ctx(records, **kw), params or {})
    return o.passed, o.message


# ---------------------------------------------------------------------------------------------- data class

def test_no_my_number_on_a_yellow_arrow() -> None:
    clean = rec("CertificateData", 19, cert_data(), kind="response", sender="juki", receiver="certserver")
    leaked = rec("CertificateData", 19, cert_data(f"番号 {MY}"), kind="response", sender="juki",
                 receiver="certserver")
    green = rec("IdentityNotice", 8, identity())
    assert run("class.no_my_number", [clean, green])[0]
    o = run_check("class.no_my_number", ctx([clean, leaked, green]), {})
    assert not o.passed
    assert o.evidence[0].seq == leaked.seq and o.evidence[0].actual == "********9018"
    assert MY not in str(o.to_json())


def test_a_split_or_full_width_my_number_is_still_a_leak() -> None:
    wide = MY.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    split = f"{MY[:4]}-{MY[4:8]}-{MY[8:]}"
    for text in (wide, split):
        assert not run("class.no_my_number", [rec("CertificateData", 19, cert_data(text), kind="response",
                                                   receiver="certserver")])[0]


# ------------------------------------------------------------------------------------------- duplicates

def test_duplicate_without_retry_reason_is_caught() -> None:
    a = rec("IdentityNotice", 8, identity())
    copy = rec("IdentityNotice", 8, identity())  # a new MessageId, the same body, no RetryReason
    ok, msg = run("sequence.no_duplicate", [a, copy])
    assert not ok and "1 duplicate" in msg


def test_resend_with_same_id_and_retry_reason_is_fine() -> None:
    first = rec("IdentityNotice", 8, identity(), kind="refused", verdict="refused", mid="M-1",
                findings=[{"code": "GW-DOWN", "message": "cs is down"}])
    again = rec("IdentityNotice", 8, identity(), mid="M-1", retry="503 from the gateway")
    assert run("sequence.no_duplicate", [first, again])[0]
    bare = rec("IdentityNotice", 8, identity(), mid="M-1")
    assert not run("sequence.no_duplicate", [first, bare])[0]


# -------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize(("code", "ok"), [("GW-NO-ARROW", False), ("XSD-PATTERN", False), ("GW-DOWN", True)])
def test_a_refused_sut_message_fails_unless_the_receiver_was_down(code: str, ok: bool) -> None:
    r = rec("IdentityNotice", 8, identity(), kind="refused", verdict="refused", findings=[
        {"code": code, "message": "x", "xpath": "/j:Envelope"}])
    assert run("sequence.sut_not_refused", [r])[0] is ok


# ---------------------------------------------------------------------------------------------- ordering

def test_person_order_catches_changes_out_of_order() -> None:
    one, two = rec("IdentityNotice", 8, identity(seq=1)), rec("IdentityNotice", 8, identity(seq=2))
    assert run("sequence.person_order", [one, two])[0]
    late_one = rec("IdentityNotice", 8, identity(seq=1), seq=two.seq + 1)
    ok, msg = run("sequence.person_order", [two, late_one])
    assert not ok and "1, 2, 3" in msg


def test_changes_need_their_reasons_in_order_and_seq_plus_one() -> None:
    recs = [rec("IdentityNotice", 8, identity(seq=2, reason="M01")),
            rec("IdentityNotice", 8, identity(seq=3, reason="M07"))]
    p = {"person": CODE, "reasons": ["M01", "M07"]}
    assert run("sequence.changes", recs, p)[0]
    assert not run("sequence.changes", recs, {"person": CODE, "reasons": ["M07", "M01"]})[0]
    restart = [rec("IdentityNotice", 8, identity(seq=1, reason="M01")),
               rec("IdentityNotice", 8, identity(seq=1, reason="M07"))]
    ok, msg = run("sequence.changes", restart, p)
    assert not ok and "Seq" in msg


def test_order_of_consequences() -> None:
    n, t = rec("IdentityNotice", 8, identity()), rec("ResidentTransfer", 21, transfer(), receiver="others")
    p = {"messages": [{"arrow": 8, "type": "IdentityNotice"}, {"arrow": 21, "type": "ResidentTransfer"}]}
    assert run("sequence.order", [n, t], p)[0]
    t2 = rec("ResidentTransfer", 21, transfer(), receiver="others", seq=n.seq - 1)
    assert not run("sequence.order", [t2, n], p)[0]


def test_only_allowed_messages() -> None:
    n = rec("IdentityNotice", 8, identity())
    extra = rec("ResidentTransfer", 21, transfer(), receiver="others")
    from_sim = rec("IdentityNotice", 5, identity(), sender="cs", receiver="pref")
    p = {"allow": [{"arrow": 8, "type": "IdentityNotice"}]}
    assert run("sequence.only", [n, from_sim], p)[0]
    o = run_check("sequence.only", ctx([n, extra]), p)
    assert not o.passed and o.evidence[0].seq == extra.seq


def test_absent_and_present() -> None:
    n = rec("IdentityNotice", 8, identity())
    assert not run("sequence.absent", [n], {"match": {"type": "IdentityNotice"}})[0]
    assert run("sequence.absent", [n], {"match": {"type": "MoveInNotice"}})[0]
    assert run("sequence.present", [n], {"match": {"arrow": 8}, "count": 1})[0]
    assert not run("sequence.present", [n, rec("IdentityNotice", 8, identity(seq=2))],
                   {"match": {"arrow": 8}, "count": 1})[0]


def test_window_excludes_fixture_records() -> None:
    fixture = rec("IdentityNotice", 8, identity())
    assert not run("sequence.present", [fixture], {"match": {"arrow": 8}}, window=fixture.seq)[0]


def test_within_budget_after_a_step() -> None:
    step = StepResult("s1", "counter", status=200, mark=0, ended=T0)
    slow = rec("IdentityNotice", 8, identity(), at=T0 + timedelta(seconds=9))
    p = {"match": {"arrow": 8, "after": "s1"}, "within": 2}
    ok, msg = run("sequence.present", [slow], p, steps={"s1": step})
    assert not ok and "later than 2" in msg
    fast = rec("IdentityNotice", 8, identity(), at=T0 + timedelta(seconds=1))
    assert run("sequence.present", [fast], p, steps={"s1": step})[0]


# ----------------------------------------------------------------------------------------------- content

def test_content_assertion_evidence_names_message_xpath_expected_actual() -> None:
    r = rec("IdentityNotice", 8, identity(town="丸の内誤"))
    p = {"match": {"arrow": 8, "type": "IdentityNotice"},
         "assert": [{"xpath": "j:Identity/j:Address/j:Town", "equals": "丸の内"},
                    {"xpath": "j:Identity/j:JuminhyoCode", "valid": "juminhyo_code"}]}
    o = run_check("content.message", ctx([r]), p)
    assert not o.passed
    bad = o.evidence[0]
    assert (bad.seq, bad.message_id, bad.xpath, bad.expected, bad.actual) == (
        r.seq, r.message_id, "j:Identity/j:Address/j:Town", "丸の内", "丸の内誤")
    assert run("content.message", [rec("IdentityNotice", 8, identity())], p)[0]


def test_content_capture_feeds_later_assertions() -> None:
    info = rec("MoveOutCertInfo", 8, J.MoveOutCertInfo(J.CertificateNo("C-1"), J.Member(
        J.Resident(J.JuminhyoCode(CODE)))), receiver_lg=PEER)
    c = ctx([info])
    o = run_check("content.message", c, {"match": {"type": "MoveOutCertInfo"},
                                         "capture": {"code": "j:Member/j:Resident/j:JuminhyoCode"}})
    assert o.passed and c.captured["code"] == CODE


def test_header_xpath_checks_correlation() -> None:
    r = rec("MoveOutCertInfo", 8, J.MoveOutCertInfo(J.CertificateNo("C-1")), correlation="REQ-1")
    p = {"match": {"type": "MoveOutCertInfo"},
         "assert": [{"xpath": "/j:Envelope/j:Header/j:CorrelationId", "equals": "REQ-1"}]}
    assert run("content.message", [r], p)[0]
    assert not run("content.message", [rec("MoveOutCertInfo", 8, J.MoveOutCertInfo(J.CertificateNo("C-2")))],
                   p)[0]


def _result(status: str, code: str | None = None, doc: etree._Element | None = None) -> StepResult:
    res = J.Result(J.Status(status))
    if code:
        res.append(J.Code(code))
    body = J.CounterResult(res)
    if doc is not None:
        body.append(doc)
    h = header("CounterResult", ("juki", SUT), ("counter", SUT), sent_at=T0)
    return StepResult("op", "counter", status=200, response=build(h, body))


def test_content_result_status_code_and_document() -> None:
    doc = J.Document(J.Title("住民票の写し"), J.IssuedDate("2026-03-30"), J.IssuerLgCode(SUT),
                     J.Member(J.Name(J.Kanji("山田　太郎"))), kind="住民票の写し")
    p = {"step": "op", "status": "accepted",
         "assert": [{"xpath": "j:Document/j:Member/j:Address", "exists": True}]}
    o = run_check("content.result", ctx([], steps={"op": _result("accepted", doc=doc)}), p)
    assert not o.passed and o.evidence[0].actual == "absent"
    refused = {"op": _result("refused", "COPY-RESTRICTED")}
    assert run_check("content.result", ctx([], steps=refused), {"step": "op", "status": "refused",
                                                                 "code": "COPY-RESTRICTED"}).passed
    assert not run_check("content.result", ctx([], steps={"op": _result("accepted")}),
                         {"step": "op", "status": "refused"}).passed


# -------------------------------------------------------------------------------------------- robustness

def _down(mid: str, body: etree._Element) -> Rec:
    return rec("IdentityNotice", 8, body, kind="refused", verdict="refused", mid=mid,
               findings=[{"code": "GW-DOWN", "message": "cs is down"}])


def test_retry_in_order_with_same_id_and_reason() -> None:
    a, b = identity(seq=2, reason="M01"), identity(seq=3, reason="M07")
    good = [_down("M-a", a), _down("M-b", b), rec("IdentityNotice", 8, a, mid="M-a", retry="503"),
            rec("IdentityNotice", 8, b, mid="M-b", retry="503")]
    p = {"match": {"arrow": 8, "type": "IdentityNotice"}}
    assert run("robust.retried_in_order", good, p)[0]
    lost = good[:3]
    assert "1 lost" in run("robust.retried_in_order", lost, p)[1]
    new_id = [*good[:2], rec("IdentityNotice", 8, a, mid="M-x", retry="503"),
              rec("IdentityNotice", 8, b, mid="M-b", retry="503")]
    assert not run("robust.retried_in_order", new_id, p)[0]
    no_reason = [*good[:2], rec("IdentityNotice", 8, a, mid="M-a"), good[3]]
    assert "without RetryReason" in run("robust.retried_in_order", no_reason, p)[1]
    reversed_ = [*good[:2], rec("IdentityNotice", 8, b, mid="M-b", retry="503"),
                 rec("IdentityNotice", 8, a, mid="M-a", retry="503")]
    assert "out of order" in run("robust.retried_in_order", reversed_, p)[1]
    assert "needs 1" in run("robust.retried_in_order", good[2:], p)[1]


def test_refused_cleanly_needs_400_and_an_error_report() -> None:
    h = header("ErrorReport", ("juki", SUT), ("cs", SUT), sent_at=T0)
    report = build(h, error_report([Finding("XML-SYNTAX", "not well-formed")]))
    good = StepResult("bad", "deliver_raw", status=400, response=report)
    assert run_check("robust.refused_cleanly", ctx([], steps={"bad": good}),
                     {"step": "bad", "codes": ["XML-"]}).passed
    accepted = StepResult("bad", "deliver_raw", status=202, response=b"")
    o = run_check("robust.refused_cleanly", ctx([], steps={"bad": accepted}), {"step": "bad"})
    assert not o.passed and "HTTP 202" in o.message
    wrong_code = run_check("robust.refused_cleanly", ctx([], steps={"bad": good}), {"step": "bad",
                                                                                  "codes": ["XSD-"]})
    assert not wrong_code.passed


def test_nothing_recorded_after_a_refused_message() -> None:
    step = StepResult("bad", "deliver_raw", status=202, mark=100)
    acted = rec("IdentityNotice", 8, identity(), seq=101)
    assert not run("robust.nothing_recorded", [acted], {"after": "bad"}, steps={"bad": step})[0]
    before = rec("IdentityNotice", 8, identity(), seq=99)
    assert run("robust.nothing_recorded", [before], {"after": "bad"}, steps={"bad": step})[0]


# ------------------------------------------------------------------------------------------------ misc

def test_mask_my_numbers_keeps_last_four_and_other_numbers() -> None:
    assert mask_my_numbers(f"番号 {MY} と 123456789012") == "番号 ********9018 と 123456789012"
    assert mask_my_numbers(f"<MyNumber>{MY}</MyNumber>") == "<MyNumber>********9018</MyNumber>"


def test_every_check_has_a_stable_unique_code_and_a_schema() -> None:
    codes = [c.code for c in CHECKS.values()]
    assert len(codes) == len(set(codes))
    assert {c.name for c in CHECKS.values() if c.auto} == {
        "class.no_my_number", "sequence.no_duplicate", "sequence.sut_not_refused", "sequence.person_order",
        "identity.name_exact", "clock.virtual_time"}
    for c in CHECKS.values():
        assert c.params["properties"]["check"] == {"const": c.name}


def test_an_evaluation_error_is_a_failed_outcome_not_a_crash() -> None:
    r = rec("IdentityNotice", 8, identity())
    bad = {"match": {"arrow": 8}, "assert": [{"xpath": "j:[", "equals": "x"}]}
    o = run_check("content.message", ctx([r]), bad)
    assert not o.passed and "could not evaluate" in o.message


# ------------------------------------------------------------------------- judge (issue 12): sharper checks

def _named(kanji: str, code: str = CODE, seq: int = 1) -> etree._Element:
    body = identity(code, seq=seq)
    body.find(".//{urn:juki-harness:1}Kanji").text = kanji  # type: ignore[union-attr]
    return body


def _counter_request(kanji: str) -> Rec:
    """What the harness gave the SUT: a counter request naming the person."""
    return rec("CounterRequest", 30, J.CounterRequest(J.Person(J.Name(J.Kanji(kanji)))), sender="counter",
               receiver="juki")


@pytest.mark.parametrize("registered, sent", [
    ("渡辺　太郎", "渡邊　太郎"),  # 異体字
    ("髙橋　一郎", "高橋　一郎"),  # beyond JIS X 0208, normalised
    ("葛\U000e0100西　花子", "葛西　花子"),  # IVS selector dropped
])
def test_a_name_must_be_the_registered_one_character_for_character(registered: str, sent: str) -> None:
    given = _counter_request(registered)
    assert run("identity.name_exact", [given, rec("IdentityNotice", 8, _named(registered))])[0]
    ok, msg = run("identity.name_exact", [given, rec("IdentityNotice", 8, _named(sent))])
    assert not ok and "differ" in msg
    # CS relaying the SUT's own wrong name to the prefecture does not make it "given"
    relay = rec("IdentityNotice", 5, _named(sent), sender="cs", receiver="pref")
    assert not run("identity.name_exact", [given, rec("IdentityNotice", 8, _named(sent)), relay])[0]


def test_a_name_from_the_fixtures_counts_as_registered() -> None:
    from types import SimpleNamespace

    person = SimpleNamespace(name=SimpleNamespace(kanji="齊藤　次郎", kana=None, latin=None, tsusho=None,
                                                  tsusho_kana=None, former_surname=None,
                                                  former_surname_kana=None))
    c = ctx([rec("IdentityNotice", 8, _named("齊藤　次郎"))])
    c.people = {CODE: person}
    assert run_check("identity.name_exact", c, {}).passed
    c = ctx([rec("IdentityNotice", 8, _named("斉藤　次郎"))])
    c.people = {CODE: person}
    assert not run_check("identity.name_exact", c, {}).passed


def _wide_area(building: str = "丸の内ビル101", block: str = "1丁目2番3号") -> etree._Element:
    el: etree._Element = J.WideAreaCopyInfo(J.RequestNo("R-1"), J.Result(J.Status("accepted")), J.Member(
        J.JuminhyoCode(CODE), J.Name(J.Kanji("山田　太郎")),
        J.Address(J.LgCode(SUT), J.Prefecture("東京都"), J.City("千代田区"), J.Town("丸の内"), J.Block(block),
                  J.Building(building))))
    return el


@pytest.mark.parametrize("building", ["丸の内ビル101（本籍 東京都千代田区1番地）", "筆頭者 山田　一郎",
                                      "大阪府大阪市北区梅田1丁目100番地"])
def test_no_honseki_anywhere_not_even_as_text_in_another_field(building: str) -> None:
    p = {"match": {"arrow": 8, "type": "WideAreaCopyInfo"}, "values": ["大阪府大阪市北区梅田1丁目100番地"]}
    assert run("privacy.no_honseki", [rec("WideAreaCopyInfo", 8, _wide_area())], p)[0]
    ok, msg = run("privacy.no_honseki", [rec("WideAreaCopyInfo", 8, _wide_area(building))], p)
    assert not ok and "本籍" in msg


def test_the_address_must_equal_the_registered_one() -> None:
    from types import SimpleNamespace

    addr = SimpleNamespace(lg_code=SUT, postal_code=None, prefecture="東京都", city="千代田区", town="丸の内",
                           block="1丁目2番3号", building="丸の内ビル101", overseas=None)
    p = {"match": {"arrow": 8, "type": "WideAreaCopyInfo"}, "person": CODE, "xpath": "j:Member/j:Address"}
    for body, want in ((_wide_area(), True), (_wide_area(block="1丁目2番4号"), False)):
        c = ctx([rec("WideAreaCopyInfo", 8, body)])
        c.people = {CODE: SimpleNamespace(address=addr, my_number=MY)}
        o = run_check("content.registered_address", c, p)
        assert o.passed is want, o.message


def _copy_step(*extra: etree._Element) -> StepResult:
    doc = J.Document(J.Member(J.Name(J.Kanji("山田　太郎"))), *extra, kind="住民票の写し")
    body = J.CounterResult(J.Result(J.Status("accepted")), doc)
    h = header("CounterResult", ("juki", SUT), ("counter", SUT), sent_at=T0)
    return StepResult("copy", "counter", status=200, response=build(h, body))


@pytest.mark.parametrize("leak", [
    lambda: J.MyNumber(MY),
    lambda: J.Item(J.Label("備考"), J.Value(f"番号 {MY}")),
    lambda: J.Item(J.Label("住民票コード"), J.Value(CODE)),
])
def test_an_accepted_third_party_copy_prints_no_my_number_or_code(leak: Any) -> None:
    p = {"step": "copy", "persons": [CODE]}
    assert run("privacy.restricted_items", [], p, steps={"copy": _copy_step()})[0]
    ok, msg = run("privacy.restricted_items", [], p, steps={"copy": _copy_step(leak())})
    assert not ok and MY not in msg


@pytest.mark.parametrize("seqs, good", [([1, 2, 3], True), ([7, 8], False), ([1, 3], False), ([2], False)])
def test_seq_starts_at_one_and_runs_without_gaps(seqs: list[int], good: bool) -> None:
    recs = [rec("IdentityNotice", 8, identity(seq=s)) for s in seqs]
    assert run("sequence.person_order", recs)[0] is good


def test_a_code_change_continues_the_seq_of_the_previous_code() -> None:
    new = make_juminhyo_code("2234567890")
    body = identity(new, seq=3)
    body.append(J.PreviousJuminhyoCode(CODE))
    recs = [rec("IdentityNotice", 8, identity(seq=1)), rec("IdentityNotice", 8, identity(seq=2)),
            rec("IdentityNotice", 8, body)]
    assert run("sequence.person_order", recs)[0]


def _dated(sent_at: datetime, business: str, vt: datetime) -> Rec:
    r = rec("IdentityNotice", 8, identity())
    h = header("IdentityNotice", ("juki", SUT), ("cs", SUT), sent_at=sent_at,
               business_date=datetime.fromisoformat(business).date())
    return Rec({**r.data, "payload": build(h, identity()).decode(), "virtual_time": vt.isoformat()})


def test_sent_at_and_business_date_come_from_the_virtual_clock() -> None:
    vt = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    c = ctx([_dated(vt, "2026-03-30", vt)])
    c.virtual_start = (vt - timedelta(minutes=5)).isoformat()
    assert run_check("clock.virtual_time", c, {}).passed
    wall = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    for r in (_dated(wall, "2026-03-30", vt), _dated(vt, "2026-12-05", vt)):
        c = ctx([r])
        c.virtual_start = (vt - timedelta(minutes=5)).isoformat()
        assert not run_check("clock.virtual_time", c, {}).passed


def test_order_per_person_fails_when_every_person_is_out_of_order() -> None:
    other = make_juminhyo_code("3234567890")

    def rt(code: str) -> etree._Element:
        el: etree._Element = J.ResidentTransfer(J.TransferNo("T"), J.Target("税務"), J.Resident(J.JuminhyoCode(code)))
        return el

    # person A: IdentityNotice, B: ResidentTransfer, A: ResidentTransfer, B: IdentityNotice
    wrong = [rec("IdentityNotice", 8, identity(CODE)), rec("ResidentTransfer", 21, rt(other), receiver="others"),
             rec("ResidentTransfer", 21, rt(CODE), receiver="others"), rec("IdentityNotice", 8, identity(other))]
    msgs = [{"arrow": 8, "type": "IdentityNotice"}, {"arrow": 21, "type": "ResidentTransfer"}]
    assert run("sequence.order", wrong, {"messages": msgs})[0]  # "some message later": blind to it
    ok, msg = run("sequence.order", wrong, {"messages": msgs, "per": "(.//j:JuminhyoCode)[1]"})
    assert not ok and other in msg
    right = [wrong[0], wrong[2], wrong[3], wrong[1]]
    right = [Rec({**r.data, "seq": i + 1000}) for i, r in enumerate(right)]
    assert run("sequence.order", right, {"messages": msgs, "per": "(.//j:JuminhyoCode)[1]"})[0]


def test_an_expectation_names_its_rule_and_a_failure_shows_it() -> None:
    o = run_check("sequence.present", ctx([]), {"match": {"arrow": 8}, "because": "contract §3"})
    assert not o.passed and o.because == "contract §3" and o.to_json()["because"] == "contract §3"
    assert "because" in CHECKS["sequence.present"].params["properties"]
    assert CHECKS["sequence.order"].ready is not None  # readiness declared with the check itself
