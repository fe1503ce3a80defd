"""The reference SUT through its real contract over HTTP on loopback: F08–F30, 和暦 and characters.

The same stand-in gateway and fixtures as ``test_reference_sut.py`` (``reference_sut_support.py``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from lxml import etree
from reference_sut_support import (  # noqa: F401  (fixtures; sut overrides the conftest one)
    DAY,
    LG,
    PEER,
    code_only,
    eapp,
    entry_notice,
    factory,
    gw,
    here,
    japanese,
    jd,
    load,
    moving,
    reason,
    seqs,
    status,
    sut,
)

from conformance.codec import address_el, jdate_el, name_el
from conformance.identifiers import (
    is_valid_juminhyo_code,
    make_juminhyo_code,
)
from conformance.model import Address, JDate, Name, Resident
from conformance.residents import ResidentFactory
from conformance.rules import find_my_numbers
from conformance.xmlsafe import q
from simulators.reference import ReferenceSut
from simulators.reference.testing import E as J
from simulators.reference.testing import (
    FakeGateway,
    Received,
    documents,
    items,
    members,
    person_el,
    text,
)

# ===================================================================== F08, F09, F13 市町村間の異動


async def test_f08_move_out_cert_info_on_request(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r, stay = japanese(factory), japanese(factory)
    await load(gw, r, stay)
    await gw.counter(
        DAY, moving("国内転出", DAY + timedelta(days=5), code_only(r.juminhyo_code), ToLgCode=PEER)
    )
    await gw.settle()
    mark = gw.mark()
    req = J.MoveOutCertRequest(
        J.RequestNo("RQ-1"),
        J.MoveInLgCode(PEER),
        J.MoveOutLgCode(LG),
        J.Subject(J.JuminhyoCode(r.juminhyo_code)),
        J.Subject(J.JuminhyoCode(stay.juminhyo_code)),
    )
    st, _ = await gw.deliver("MoveOutCertRequest", req, message_id="M-req-1")
    assert st == 202
    info = (await gw.wait_for("MoveOutCertInfo", since=mark))[0]
    assert info.header.correlation_id == "M-req-1" and info.header.receiver_lg == PEER
    assert text(info.body, "RequestNo") == "RQ-1"
    assert [text(m, "Resident/JuminhyoCode") for m in info.body.iterfind(q("Member"))] == [r.juminhyo_code]
    assert text(info.body, "PlannedMoveOutDate/Western") == (DAY + timedelta(days=5)).isoformat()
    mark = gw.mark()
    req2 = J.MoveOutCertRequest(
        J.RequestNo("RQ-2"),
        J.MoveInLgCode(PEER),
        J.MoveOutLgCode(LG),
        J.Subject(J.JuminhyoCode(stay.juminhyo_code)),
    )
    await gw.deliver("MoveOutCertRequest", req2)
    await gw.settle()
    assert gw.since(mark) == []


def moc_info(r: Resident, cert_no: str, planned: date, card: str | None) -> etree._Element:
    from conformance.codec import resident_el

    body = J.MoveOutCertInfo(J.CertificateNo(cert_no), J.MoveOutLgCode(PEER), J.MoveInLgCode(LG))
    jdate_el("PlannedMoveOutDate", jd(planned), body)
    body.append(J.NotifiedDate((planned - timedelta(days=3)).isoformat()))
    address_el("PlannedAddress", here(), body)
    m = J.Member(resident_el("Resident", r))
    if card:
        m.append(J.CardNo(card))
    body.append(m)
    return body


def smi(cert_no: str, card: str, move_in: date, *codes: str) -> etree._Element:
    op = J.SpecialMoveInConfirm(J.CertificateNo(cert_no), J.CardNo(card))
    jdate_el("MoveInDate", jd(move_in), op)
    address_el("NewAddress", here("三番町"), op)
    for c in codes:
        op.append(J.JuminhyoCode(c))
    return op


async def test_f09_f13_special_move_in(gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory) -> None:
    r = replace(
        japanese(factory, honseki_lg=PEER),
        address=Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田"),
    )
    assert r.card_no
    st, _ = await gw.deliver("MoveOutCertInfo", moc_info(r, "CERT-1", DAY - timedelta(days=2), r.card_no))
    assert st == 202
    pending = await gw.counter(DAY, J.SpecialMoveInPending())
    doc = documents(pending)[0]
    assert doc.get("kind") == "特例転入候補"
    assert [text(m, "JuminhyoCode") for m in members(doc)] == [r.juminhyo_code]
    assert items(doc)["証明書番号"][0] == "CERT-1"
    res = await gw.counter(DAY, smi("CERT-1", r.card_no, DAY - timedelta(days=1), r.juminhyo_code))
    assert status(res) == ("accepted", None)
    await gw.settle()
    assert gw.types() == [
        "IdentityNotice",
        "ResidentTransfer",
        "AddresseeRecord",
        "FuhyoNotice",
        "MoveInNotice",
        "CardManagementInfo",
    ]
    assert seqs(gw.of("IdentityNotice")) == [(r.juminhyo_code, "A05", "1")]
    assert text(gw.of("IdentityNotice")[0].body, "Identity/MyNumber") == r.my_number
    notice = gw.of("MoveInNotice")[0]
    assert (notice.header.receiver_lg, text(notice.body, "CertificateNo")) == (PEER, "CERT-1")
    assert text(gw.of("CardManagementInfo")[0].body, "Event") == "転入継続利用"
    assert members(documents(await gw.counter(DAY, J.SpecialMoveInPending()))[0]) == []
    assert status(await gw.counter(DAY, smi("CERT-1", r.card_no, DAY, r.juminhyo_code)))[1] == "SMI-USED"


@pytest.mark.parametrize(("case", "code"), [("card", "SMI-CARD"), ("14", "SMI-14DAYS"), ("30", "SMI-30DAYS")])
async def test_f09_special_move_in_refusals(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory, case: str, code: str
) -> None:
    r = japanese(factory)
    assert r.card_no
    planned = DAY - timedelta(days=31) if case == "30" else DAY - timedelta(days=5)
    move_in = DAY - timedelta(days=15) if case == "14" else DAY - timedelta(days=1)
    card = "C99999999999" if case == "card" else r.card_no
    await gw.deliver("MoveOutCertInfo", moc_info(r, "CERT-X", planned, r.card_no))
    mark = gw.mark()
    res = await gw.counter(DAY, smi("CERT-X", card, move_in, r.juminhyo_code))
    assert status(res) == ("refused", code)
    await gw.settle()
    assert gw.since(mark) == []


async def test_f13_movein_notice_keeps_the_planned_values_and_the_latest_wins(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    planned_addr = Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田")
    await gw.counter(
        DAY,
        moving(
            "国内転出",
            DAY + timedelta(days=5),
            code_only(r.juminhyo_code),
            ToLgCode=PEER,
            NewAddress=planned_addr,
        ),
    )
    await gw.settle()
    mark = gw.mark()
    for n, town in ((1, "中央区難波"), (2, "西区江戸堀")):
        body = J.MoveInNotice(J.NoticeNo(f"MIN-{n}"), J.MoveOutLgCode(LG), J.MoveInLgCode(PEER))
        jdate_el("MoveInDate", jd(DAY + timedelta(days=5 + n)), body)
        body.append(J.NotifiedDate((DAY + timedelta(days=6 + n)).isoformat()))
        address_el("NewAddress", replace(planned_addr, town=town), body)
        pe = J.Person(J.JuminhyoCode(r.juminhyo_code))
        name_el("Name", r.name, pe)
        jdate_el("BirthDate", r.birth_date, pe)
        body.append(pe)
        assert (await gw.deliver("MoveInNotice", body, sender=("cs", LG)))[0] == 202
    assert sut.store is not None
    p = sut.store.by_code(r.juminhyo_code)
    assert p is not None and p.status == "消除"
    assert p.planned is not None and p.planned.address == planned_addr
    assert p.planned.when.western == DAY + timedelta(days=5)
    assert p.confirmed is not None and p.confirmed.address.town == "西区江戸堀"
    assert p.confirmed.notice_no == "MIN-2"
    await gw.settle()
    assert gw.since(mark) == []


# ====================================================================== F10, F11 外国人住民


def foreigner(factory: ResidentFactory, category: str = "中長期在留者") -> Resident:
    r = factory.foreign_resident()
    assert r.foreign is not None
    return replace(r, relationship="世帯主", foreign=replace(r.foreign, category=category))


async def test_f10_municipal_notice_for_a_foreign_resident(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = foreigner(factory)
    await load(gw, r)
    notices = gw.of("MunicipalNotice")
    assert len(notices) == 1
    n = notices[0]
    assert (n.arrow, text(n.body, "Kind"), text(n.body, "Person/ResidenceCardNo")) == (
        29,
        "記載",
        r.foreign.residence_card_no if r.foreign else None,
    )
    assert find_my_numbers(n.raw.decode()) == []
    assert gw.types().index("MunicipalNotice") == 3  # after 8, 21, 18


async def test_f10_refused_municipal_notice_is_resent_with_a_retry_reason(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    calls: list[str] = []

    def flaky(g: FakeGateway, m: Received) -> etree._Element:
        calls.append(m.header.message_id)
        st = "refused" if len(calls) == 1 else "accepted"
        out: etree._Element = J.MunicipalNoticeResult(
            J.NoticeNo(text(m.body, "NoticeNo") or "N"), J.Result(J.Status(st))
        )
        return out

    gw.answers["MunicipalNotice"] = flaky
    await load(gw, foreigner(factory))
    notices = gw.of("MunicipalNotice")
    assert len(notices) == 2 and calls[0] == calls[1]
    assert notices[0].header.retry_reason is None
    assert notices[1].header.retry_reason and "refused" in notices[1].header.retry_reason


def moj(r: Resident, kind: str, category: str, no: str = "MOJ-1", **changes: str) -> etree._Element:
    assert r.foreign is not None
    person = J.Person()
    name_el("Name", r.name, person)
    jdate_el("BirthDate", r.birth_date, person)
    person.append(J.Sex(r.sex))
    person.append(J.Nationality(r.foreign.nationality))
    person.append(J.ResidenceCardNo(r.foreign.residence_card_no))
    ch = J.Changes()
    for tag in ("ResidenceStatus", "PeriodOfStay", "PeriodEnd", "NewResidenceCardNo"):
        if tag in changes:
            ch.append(J(tag, changes[tag]))
    return J.MojNotice(
        J.NoticeNo(no),
        J.LgCode(LG),
        J.Kind(kind),
        J.Category(category),
        person,
        ch,
        J.EffectiveDate(DAY.isoformat()),
    )


async def test_f11_moj_notice_amends_and_keeps_a_slip(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = foreigner(factory)
    assert r.foreign is not None
    await load(gw, r)
    mark = gw.mark()
    st, _ = await gw.deliver(
        "MojNotice",
        moj(r, "在留期間更新", "中長期在留者", PeriodEnd="2029-04-01", NewResidenceCardNo="AB12345678CD"),
        sender=("immigration", LG),
    )
    assert st == 202
    await gw.settle()
    # no 本人確認情報 item changed: no IdentityNotice; the other consequences in order
    assert [m.type for m in gw.since(mark)] == ["ResidentTransfer", "AddresseeRecord", "MunicipalNotice"]
    assert reason(gw.since(mark, "ResidentTransfer")[0].body) == "M09"
    assert text(gw.since(mark, "MunicipalNotice")[0].body, "Person/ResidenceCardNo") == "AB12345678CD"
    res = await gw.counter(DAY, J.ImmigrationSlipsOp())
    doc = documents(res)[0]
    it = items(doc)
    assert it["処理"][0] == "適用"
    assert it["在留カード等の番号"][1:] == (r.foreign.residence_card_no, "AB12345678CD")
    assert it["在留期間の満了の日"][2] == "2029-04-01"
    assert documents(await gw.counter(DAY, J.ImmigrationSlipsOp())) == []  # each slip printed once


async def test_f11_special_permanent_resident_is_held(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = foreigner(factory, "特別永住者")
    await load(gw, r)
    mark = gw.mark()
    await gw.deliver(
        "MojNotice",
        moj(r, "在留カード再交付", "特別永住者", "MOJ-2", NewResidenceCardNo="ZZ00000000ZZ"),
        sender=("immigration", LG),
    )
    await gw.settle()
    assert gw.since(mark) == []
    res = await gw.counter(DAY, J.ImmigrationSlipsOp(J.NoticeNo("MOJ-2")))
    assert items(documents(res)[0])["処理"][0] == "保留（特別永住者）"


async def test_f11_departure_deletes(gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory) -> None:
    r = foreigner(factory)
    await load(gw, r)
    mark = gw.mark()
    await gw.deliver("MojNotice", moj(r, "出国", "中長期在留者", "MOJ-3"), sender=("immigration", LG))
    await gw.settle()
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1] == "D06"
    assert text(gw.since(mark, "MunicipalNotice")[0].body, "Kind") == "消除"


# ====================================================================== F12, F14, F15 戸籍・附票


def koseki_entry(r: Resident, address_lg: str, kind: str, new_name: Name | None = None) -> etree._Element:
    op = J.KosekiEntry(
        person_el(r, relationship=False, card=False), J.AddressLgCode(address_lg), J.EntryKind(kind)
    )
    jdate_el("EntryDate", jd(DAY), op)
    if new_name is not None:
        name_el("NewName", new_name, op)
    return op


async def test_f14_koseki_entry_for_a_person_living_elsewhere(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=LG)
    res = await gw.counter(
        DAY, koseki_entry(r, PEER, "婚姻", Name(kanji="佐藤\u3000花子", kana="サトウ\u3000ハナコ"))
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    [n] = gw.of("KosekiEntryNotice")
    assert n.header.receiver_lg == PEER and n.arrow == 8
    assert text(n.body, "HonsekiLgCode") == LG and text(n.body, "NewName/Kanji") == "佐藤\u3000花子"


async def test_f14_koseki_entry_for_a_person_living_here_amends(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=LG)
    await load(gw, r)
    mark = gw.mark()
    res = await gw.counter(
        DAY, koseki_entry(r, LG, "氏の変更", Name(kanji="鈴木\u3000太郎", kana="スズキ\u3000タロウ"))
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1:] == ("M08", "2")
    assert gw.since(mark, "KosekiEntryNotice") == [] and gw.since(mark, "FuhyoNotice") == []


async def test_f14_koseki_entry_notice_received_amends(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=PEER)
    await load(gw, r)
    assert r.honseki is not None
    mark = gw.mark()
    kp = J.Person(J.JuminhyoCode(r.juminhyo_code))
    name_el("Name", r.name, kp)
    jdate_el("BirthDate", r.birth_date, kp)
    from conformance.codec import honseki_el

    honseki_el("Honseki", r.honseki, kp)
    body = J.KosekiEntryNotice(J.NoticeNo("KE-1"), J.HonsekiLgCode(PEER), kp, J.EntryKind("死亡"))
    jdate_el("EntryDate", jd(DAY), body)
    assert (await gw.deliver("KosekiEntryNotice", body))[0] == 202
    await gw.settle()
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1] == "D03"


async def test_f12_fuhyo_notice_checked_against_the_koseki(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=LG)
    await gw.counter(DAY, koseki_entry(r, PEER, "転籍"))  # the koseki now holds r
    await gw.settle()
    assert r.honseki is not None

    def fuhyo(name: Name, no: str) -> etree._Element:
        from conformance.codec import honseki_el

        kp = J.Person(J.JuminhyoCode(r.juminhyo_code))
        name_el("Name", name, kp)
        jdate_el("BirthDate", r.birth_date, kp)
        kp.append(J.Sex(r.sex))
        assert r.honseki is not None
        honseki_el("Honseki", r.honseki, kp)
        body = J.FuhyoNotice(J.NoticeNo(no), J.AddressLgCode(PEER), kp)
        address_el(
            "Address", Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田"), body
        )
        jdate_el("AddressSince", jd(DAY), body)
        body.append(
            J.Change(J.Reason("国内転入", code="A01"), J.EventDate(J.Western(DAY.isoformat())), J.Seq("1"))
        )
        return body

    mark = gw.mark()
    await gw.deliver("FuhyoNotice", fuhyo(r.name, "FU-1"), sender=("cs", LG))
    await gw.settle()
    assert gw.since(mark) == []
    await gw.deliver("FuhyoNotice", fuhyo(Name(kanji="誤記\u3000太郎", kana=r.name.kana), "FU-2"))
    [mm] = await gw.wait_for("FuhyoMismatchNotice", since=mark)
    assert mm.header.receiver_lg == PEER and text(mm.body, "RefNoticeNo") == "FU-2"
    assert text(mm.body, "Mismatch/Item") == "氏名" and text(mm.body, "Mismatch/InKoseki") == r.name.kanji


async def test_f15_no_fuhyo_notice_when_the_honseki_is_here(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    await load(gw, japanese(factory, honseki_lg=LG))
    assert gw.of("FuhyoNotice") == []
    await load(gw, japanese(factory, honseki_lg=PEER))
    assert [m.header.receiver_lg for m in gw.of("FuhyoNotice")] == [PEER]


# ======================================================================== F16, F17, F18, F19, F26


async def test_f16_f17_individual_entry_goes_to_tax_and_the_matching_system(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    mark = gw.mark()
    await gw.deliver("IndividualEntryNotice", entry_notice(r.juminhyo_code))
    await gw.settle()
    got = gw.since(mark)
    assert [m.type for m in got] == ["ResidentTransfer", "ResidentTransfer", "AddresseeRecord"]
    assert [(text(m.body, "Target"), text(m.body, "Resident/MyNumber")) for m in got[:2]] == [
        ("税務", r.my_number),
        ("国民健康保険", r.my_number),
    ]
    assert text(got[0].body, "Change/Reason") == "個別記載事項の記載"
    kinds = [text(e, "Kind") for e in got[2].body.iterfind(f"{q('Resident')}/{q('IndividualEntry')}")]
    assert "国民健康保険" in kinds


async def test_f18_wide_area_copy_never_carries_honseki(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    hh = factory.household(2)
    await load(gw, *hh)
    mark = gw.mark()

    def req(no: str, code: str, mn: bool) -> etree._Element:
        return J.WideAreaCopyRequest(
            J.RequestNo(no),
            J.IssuingLgCode(PEER),
            J.Subject(J.JuminhyoCode(code)),
            J.Scope("世帯全員"),
            J.Options(J.Relationship("true"), J.IncludeMyNumber("true" if mn else "false")),
        )

    await gw.deliver("WideAreaCopyRequest", req("W-1", hh[0].juminhyo_code, False), message_id="M-w1")
    await gw.deliver("WideAreaCopyRequest", req("W-2", hh[0].juminhyo_code, True), message_id="M-w2")
    await gw.deliver(
        "WideAreaCopyRequest", req("W-3", make_juminhyo_code("1234567890"), True), message_id="M-w3"
    )
    got = await gw.wait_for("WideAreaCopyInfo", 3, since=mark)
    assert [(m.header.correlation_id, m.header.receiver_lg) for m in got] == [
        ("M-w1", PEER),
        ("M-w2", PEER),
        ("M-w3", PEER),
    ]
    assert all(m.body.find(f".//{q('Honseki')}") is None for m in got)
    assert len(list(got[0].body.iterfind(q("Member")))) == 2
    assert find_my_numbers(got[0].raw.decode()) == []
    assert [text(x, "MyNumber") for x in got[1].body.iterfind(q("Member"))] == [h.my_number for h in hh]
    assert text(got[2].body, "Result/Status") == "not-found"


async def test_f19_f26_addressee_record_carries_the_code_the_symbol_request_uses(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    [rec] = gw.of("AddresseeRecord")
    assert rec.arrow == 18
    assert text(rec.body, "Resident/JuminhyoCode") == r.juminhyo_code
    assert text(rec.body, "Resident/MyNumber") == r.my_number


# ============================================================================ F20, F21, F22 カード


async def test_f20_card_issue_through_the_cs_terminal(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, card=False)
    await load(gw, r)
    mark = gw.mark()
    res = await gw.counter(
        DAY,
        J.CardIssueOp(
            J.JuminhyoCode(r.juminhyo_code), J.ApplicationNo("APP-1"), J.CheckedDocument("通知カード")
        ),
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    req, info = gw.since(mark)
    assert (req.type, req.header.sender_actor, req.arrow) == ("CardIssuanceRequest", "counter", 13)
    assert text(req.body, "Identity/MyNumber") == r.my_number
    assert (info.type, text(info.body, "Event")) == ("CardManagementInfo", "交付")
    card_no = text(info.body, "CardNo")
    assert items(documents(res)[0])["カード管理番号"][0] == card_no
    # the new card holder now gets 券面記載事項変更 on 転居
    await gw.counter(DAY, moving("転居", DAY, code_only(r.juminhyo_code), NewAddress=here("二番町")))
    await gw.settle()
    assert text(gw.of("CardManagementInfo")[-1].body, "Event") == "券面記載事項変更"


async def test_f21_my_number_change(gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory) -> None:
    r = japanese(factory)
    assert r.card_no
    await load(gw, r)
    mark = gw.mark()
    res = await gw.counter(
        DAY,
        J.MyNumberChangeOp(J.JuminhyoCode(r.juminhyo_code), J.Basis("請求"), J.ReasonText("漏えいのおそれ")),
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    types = [m.type for m in gw.since(mark)]
    assert types == [
        "NumberGenerationRequest",
        "IdentityNotice",
        "ResidentTransfer",
        "AddresseeRecord",
        "NoticeDestination",
        "CardStatusChange",
    ]
    req = gw.since(mark, "NumberGenerationRequest")[0]
    assert (text(req.body, "Purpose"), text(req.body, "Identity/MyNumber")) == ("変更", r.my_number)
    notice = gw.since(mark, "IdentityNotice")[0]
    new = text(notice.body, "Identity/MyNumber")
    assert new != r.my_number and seqs([notice])[0][1:] == ("M03", "2")
    status_change = gw.since(mark, "CardStatusChange")[0]
    assert (text(status_change.body, "NewStatus"), text(status_change.body, "CardNo")) == ("廃止", r.card_no)
    assert items(documents(res)[0])["変更後の個人番号"][0] == new


async def test_f22_card_verification_prints_the_cs_verdict(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    def invalid(g: FakeGateway, m: Received) -> etree._Element:
        out: etree._Element = J.CardVerificationResult(
            J.VerificationNo(text(m.body, "VerificationNo") or "V"),
            J.Result(J.Status("accepted")),
            J.Valid("false"),
            J.Matches("false"),
        )
        return out

    op = J.CardVerifyOp(J.CardNo("C12345678901"), J.CertSerial("0123456789ABCDEF"), J.PinVerified("true"))
    res = await gw.counter(DAY, op)
    assert items(documents(res)[0])["カードの有効性"][0] == "有効"
    gw.answers["CardVerificationRequest"] = invalid
    res = await gw.counter(DAY, op)
    doc = documents(res)[0]
    assert doc.get("kind") == "本人確認結果"
    assert items(doc)["カードの有効性"][0] == "無効" and items(doc)["本人との一致"][0] == "不一致"
    assert all(m.arrow == 13 and m.header.sender_actor == "counter" for m in gw.of("CardVerificationRequest"))


# ============================================================================ F24 住民票コードの変更


async def test_f24_code_change_retries_with_another_code_when_refused(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    refused_once: list[str] = []

    async def result(g: FakeGateway, m: Received) -> None:
        new = text(m.body, "NewJuminhyoCode") or ""
        st = "refused" if not refused_once else "accepted"
        refused_once.append(new)
        await g.deliver(
            "ResidentCodeChangeResult",
            J.ResidentCodeChangeResult(
                J.RequestNo(text(m.body, "RequestNo") or ""),
                J.Result(J.Status(st), J.Code("IN-USE")),
                J.NewJuminhyoCode(new),
            ),
        )

    gw.reactions["ResidentCodeChange"] = result
    mark = gw.mark()
    res = await gw.counter(DAY, J.ResidentCodeChangeOp(J.JuminhyoCode(r.juminhyo_code)))
    assert status(res) == ("accepted", None)
    await gw.settle()
    changes = gw.since(mark, "ResidentCodeChange")
    assert len(changes) == 2
    first, second = (text(c.body, "NewJuminhyoCode") or "" for c in changes)
    assert first != second and is_valid_juminhyo_code(first) and is_valid_juminhyo_code(second)
    [notice] = gw.since(mark, "IdentityNotice")
    assert text(notice.body, "Identity/JuminhyoCode") == second
    assert text(notice.body, "PreviousJuminhyoCode") == r.juminhyo_code
    assert seqs([notice])[0][1:] == ("M04", "2")
    assert items(documents(res)[0])["変更後の住民票コード"][0] == second


# ============================================================================ F28 交付予約, F30 電子申請


async def test_f28_card_handover_prints_the_booking(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    res = await gw.counter(
        DAY,
        J.CardHandoverOp(
            J.JuminhyoCode(r.juminhyo_code),
            J.BookingId("BK-77"),
            J.Slot("2026-04-02T10:30:00+09:00"),
            J.Place("千代田区役所2階"),
        ),
    )
    doc = documents(res)[0]
    assert doc.get("kind") == "交付通知"
    it = items(doc)
    assert (it["予約番号"][0], it["予約日時"][0], it["交付場所"][0]) == (
        "BK-77",
        "2026-04-02T10:30:00+09:00",
        "千代田区役所2階",
    )


async def test_f30_e_application_moves_out_and_tells_the_destination(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    st, _ = await gw.deliver(
        "EApplication",
        eapp("EA-1", r, "2026-03-28T21:00:00+09:00", DAY + timedelta(days=5)),
        sender=("portal", LG),
        receiver=("counter", LG),
    )
    assert st == 202
    mark = gw.mark()
    res = await gw.counter(DAY, J.EApplicationProcessOp(J.ApplicationId("EA-1")))
    assert status(res) == ("accepted", None)
    await gw.settle()
    types = [m.type for m in gw.since(mark)]
    assert types[0] == "IdentityNotice" and types[-1] == "MoveOutCertInfo"
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1] == "D01"
    info = gw.since(mark, "MoveOutCertInfo")[0]
    assert info.header.receiver_lg == PEER and text(info.body, "RequestNo") is None
    assert text(info.body, "Member/Resident/MyNumber") == r.my_number
    assert status(await gw.counter(DAY, J.EApplicationProcessOp(J.ApplicationId("EA-1"))))[1] == "EAPP-DONE"


@pytest.mark.parametrize(
    ("submitted", "who", "code"),
    [
        ("2026-02-01T10:00:00+09:00", "known", "EAPP-WINDOW"),
        ("2026-04-20T10:00:00+09:00", "known", "EAPP-WINDOW"),
        ("2026-03-28T10:00:00+09:00", "unknown", "EAPP-UNKNOWN"),
    ],
)
async def test_f30_e_application_refusals(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory, submitted: str, who: str, code: str
) -> None:
    r = japanese(factory)
    if who == "known":
        await load(gw, r)
    await gw.deliver(
        "EApplication",
        eapp("EA-2", r, submitted, DAY + timedelta(days=5)),
        sender=("portal", LG),
        receiver=("counter", LG),
    )
    mark = gw.mark()
    res = await gw.counter(DAY, J.EApplicationProcessOp(J.ApplicationId("EA-2")))
    assert status(res) == ("refused", code)
    await gw.settle()
    assert gw.since(mark) == []


# ============================================================================ 和暦, characters


async def test_dates_carry_wareki_and_names_keep_ivs(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = replace(
        japanese(factory),
        name=Name(kanji="葛\U000e0100城\u3000太郎", kana="カツラギ\u3000タロウ"),
        birth_date=JDate(western=date(1912, 7, 30)),
    )
    await load(gw, r)
    [n] = gw.of("IdentityNotice")
    assert text(n.body, "Identity/Name/Kanji") == "葛\U000e0100城\u3000太郎"
    assert text(n.body, "Identity/BirthDate/Wareki") == "大正元年7月30日"
    assert text(n.body, "Change/EventDate/Wareki") is not None


async def test_the_14_days_of_zhukiho_22_25_for_tenkyo_household_change_and_a_late_moveout(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    """住基法23・24・25条: on the 14th day after the event a notice is in time (民法140条), on the 15th it is late."""
    a, b, c = (japanese(factory) for _ in range(3))
    await load(gw, a, b, c)

    def late(res: etree._Element) -> bool:
        assert status(res) == ("accepted", None), etree.tostring(res, encoding="unicode")
        return "届出期間経過" in items(documents(res)[0])

    day = DAY + timedelta(days=20)
    tenkyo = moving("転居", day - timedelta(days=14), code_only(a.juminhyo_code), NewAddress=here("一番町"))
    assert not late(await gw.counter(day, tenkyo))
    tenkyo = moving("転居", day - timedelta(days=15), code_only(a.juminhyo_code), NewAddress=here("二番町"))
    assert late(await gw.counter(day + timedelta(days=0), tenkyo))
    split = moving("世帯変更", day - timedelta(days=15), code_only(b.juminhyo_code), HeadJuminhyoCode=b.juminhyo_code)
    assert late(await gw.counter(day, split))
    out = Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田")
    moveout = moving("国内転出", day - timedelta(days=15), code_only(c.juminhyo_code), ToLgCode=PEER, NewAddress=out)
    assert late(await gw.counter(day, moveout))


async def test_an_online_moveout_needs_the_applicants_card(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    """The online 転出届 is signed with the applicant's card: without one it is refused (EAPP-NO-CARD)."""
    r = japanese(factory, card=False)
    await load(gw, r)
    app = eapp("EA-NOCARD", r, "2026-03-30T10:00:00+09:00", DAY + timedelta(days=5), kind="転出届")
    st, _ = await gw.deliver("EApplication", app, sender=("portal", LG), receiver=("counter", LG))
    assert st == 202
    mark = gw.mark()
    res = await gw.counter(DAY, J.EApplicationProcessOp(J.ApplicationId("EA-NOCARD")))
    assert status(res) == ("refused", "EAPP-NO-CARD")
    await gw.settle()
    assert gw.since(mark) == []
