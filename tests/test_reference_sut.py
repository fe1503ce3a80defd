"""The reference SUT through its real contract over HTTP on loopback: surfaces, then F01–F07.

A small stand-in gateway (simulators.reference.testing.FakeGateway) records and validates every message the
SUT sends (schema, rules, arrow): a test fails at teardown if the SUT sent anything invalid. F08–F30 are in
``test_reference_sut_functions.py``; fixtures in ``conftest.py``, builders in ``reference_sut_support.py``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from lxml import etree
from reference_sut_support import (  # noqa: F401  (fixtures; sut overrides the conftest one)
    DAY,
    LG,
    PEER,
    code_only,
    entry_notice,
    factory,
    gw,
    here,
    japanese,
    jd,
    load,
    moving,
    seqs,
    status,
    sut,
)

from conformance.catalogue import SCHEMAS, default
from conformance.codec import jdate_el, name_el
from conformance.envelope import body_of, findings_of
from conformance.identifiers import (
    is_valid_juminhyo_code,
    is_valid_my_number,
    make_my_number,
)
from conformance.model import Address, Name, Resident
from conformance.residents import ResidentFactory
from conformance.rules import find_my_numbers
from conformance.xmlsafe import parse, q
from simulators.reference import RefConfig, ReferenceSut
from simulators.reference.testing import E as J
from simulators.reference.testing import (
    FakeGateway,
    Received,
    documents,
    items,
    members,
    official_record,
    person_el,
    text,
)

# ============================================================================================ surfaces


async def test_contract_lists_every_operation_of_counter_xsd(sut: ReferenceSut) -> None:
    xsd = etree.parse(str(SCHEMAS / "counter.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    found = xsd.xpath("//xs:element[@name='CounterRequest']//xs:choice/xs:element/@name", namespaces=ns)
    choice = [str(x) for x in cast(list[object], found)]
    assert len(choice) == 15
    async with aiohttp.ClientSession() as s, s.get(f"{sut.url}/contract") as r:
        assert r.status == 200
        data = await r.json()
    assert data["contract"] == default().counter_contract_version
    assert sorted(data["operations"]) == sorted(choice)


async def test_health(sut: ReferenceSut) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{sut.url}/health") as r:
        assert r.status == 200
        assert json.loads(await r.text())["ok"] is True




@pytest.mark.parametrize(
    "breakage", ["malformed", "schema", "check-digit", "unknown-type", "wrong-receiver", "wrong-lg", "dtd"]
)
async def test_inbound_refuses_bad_messages_and_records_nothing(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory, breakage: str
) -> None:
    r = japanese(factory)
    await load(gw, r)
    good = gw.envelope("IndividualEntryNotice", entry_notice(r.juminhyo_code), message_id="M-in-1")
    bad = {
        "malformed": good[:-20],
        "schema": good.replace(b"<Kind>", b"<Kynd>").replace(b"</Kind>", b"</Kynd>"),
        "check-digit": good.replace(
            r.juminhyo_code.encode(),
            (r.juminhyo_code[:10] + str((int(r.juminhyo_code[10]) + 1) % 10)).encode(),
        ),
        "unknown-type": gw.envelope(
            "IndividualEntryNotice", entry_notice(r.juminhyo_code), message_id="M-in-1"
        ).replace(b"<MessageType>IndividualEntryNotice", b"<MessageType>NoSuchType"),
        "wrong-receiver": gw.envelope(
            "IndividualEntryNotice",
            entry_notice(r.juminhyo_code),
            message_id="M-in-1",
            receiver=("addressee", LG),
        ),
        "wrong-lg": gw.envelope(
            "IndividualEntryNotice",
            entry_notice(r.juminhyo_code),
            message_id="M-in-1",
            receiver=("juki", PEER),
        ),
        "dtd": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + good.split(b"?>", 1)[1],
    }[breakage]
    mark = gw.mark()
    st, data = await gw.post_sut("/inbound", bad)
    assert st == 400
    report = body_of(parse(data))
    assert etree.QName(report).localname == "ErrorReport"
    assert findings_of(report)
    await gw.settle()
    assert gw.since(mark) == []
    # nothing was recorded: the corrected message with the same MessageId is processed normally
    st, _ = await gw.post_sut("/inbound", good)
    assert st == 202
    got = await gw.wait_for("ResidentTransfer", 2, since=mark)
    assert {text(m.body, "Target") for m in got} == {"税務", "国民健康保険"}


async def test_inbound_needs_the_gateway_credential(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    env = gw.envelope("IndividualEntryNotice", entry_notice(r.juminhyo_code), message_id="M-auth")
    st, _ = await gw.post_sut("/inbound", env, token="wrong")
    assert st == 401
    st, _ = await gw.post_sut("/counter", env, token="wrong")
    assert st == 401
    st, _ = await gw.post_sut("/inbound", env)
    assert st == 202


async def test_duplicate_message_id_is_acknowledged_but_not_processed_twice(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    mark = gw.mark()
    env = gw.envelope("IndividualEntryNotice", entry_notice(r.juminhyo_code), message_id="M-dup")
    assert (await gw.post_sut("/inbound", env))[0] == 202
    assert (await gw.post_sut("/inbound", env))[0] == 202
    await gw.settle()
    assert len(gw.since(mark, "ResidentTransfer")) == 2  # 税務 + 国民健康保険, once


async def test_counter_duplicate_message_id_returns_the_first_result(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    first = await gw.counter(DAY, official_record(r), message_id="M-ctr-1")
    again = await gw.counter(DAY, official_record(r), message_id="M-ctr-1")
    assert etree.tostring(first) == etree.tostring(again)
    await gw.settle()
    assert len(gw.of("IdentityNotice")) == 1


async def test_a_counter_request_resent_while_it_runs_is_one_operation(
    gw: FakeGateway, tmp_path: Path, factory: ResidentFactory
) -> None:
    """The gateway resends a slow counter request (same MessageId) while staff still wait: one operation."""
    del gw.reactions["NumberGenerationRequest"]
    cfg = RefConfig(gateway_url=gw.url, data_dir=tmp_path / "r", answer_timeout=0.4)
    async with ReferenceSut(cfg) as s:
        gw.sut_url = s.url
        op = moving("国外転入", DAY, person_el(japanese(factory), ids=False), NewAddress=here())
        first, again = await asyncio.gather(
            gw.counter(DAY, op, message_id="M-slow-1"), gw.counter(DAY, op, message_id="M-slow-1")
        )
        assert etree.tostring(first) == etree.tostring(again)
        assert status(first) == ("held", "NUMBER-PENDING")
        await gw.settle()
        assert [m.type for m in gw.received].count("IdentityNotice") == 1
        assert [m.type for m in gw.received].count("NumberGenerationRequest") == 1


async def test_counter_refuses_an_invalid_request(gw: FakeGateway, sut: ReferenceSut) -> None:
    st, data = await gw.post_sut("/counter", b"<Envelope/>")
    assert st == 400
    assert etree.QName(body_of(parse(data))).localname == "ErrorReport"


# ================================================================================ F01 住民異動届


async def test_f01_move_in_records_sends_consequences_then_movein_notice(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    hh = factory.household(2)
    people = [person_el(replace(m, honseki=replace(m.honseki, lg_code=PEER)) if m.honseki else m) for m in hh]
    res = await gw.counter(
        DAY, moving("国内転入", DAY - timedelta(days=3), *people, FromLgCode="011002", NewAddress=here())
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    # per person: 8, 21, 18, 1 (本籍 elsewhere); then the 転入通知 to the moving-out municipality
    per_person = ["IdentityNotice", "ResidentTransfer", "AddresseeRecord", "FuhyoNotice"]
    assert gw.types() == per_person * 2 + ["MoveInNotice"]
    assert [c for _, c, _ in seqs(gw.of("IdentityNotice"))] == ["A01", "A01"]
    notice = gw.of("MoveInNotice")[0]
    assert notice.header.receiver_lg == "011002" and notice.arrow == 8
    assert text(notice.body, "MoveOutLgCode") == "011002"
    assert [text(p, "JuminhyoCode") for p in notice.body.iterfind(q("Person"))] == [
        m.juminhyo_code for m in hh
    ]
    fuhyo = gw.of("FuhyoNotice")[0]
    assert fuhyo.header.receiver_lg == PEER
    doc = documents(res)[0]
    assert doc.get("kind") == "受付票"
    assert [text(m, "Status") for m in members(doc)] == ["住民", "住民"]
    assert text(members(doc)[0], "Address/Town") == "神田錦町"
    assert "届出期間経過" not in items(doc)


async def test_f01_late_move_in_is_recorded_with_the_item(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    res = await gw.counter(
        DAY,
        moving("国内転入", DAY - timedelta(days=15), person_el(r), FromLgCode="011002", NewAddress=here()),
    )
    assert status(res) == ("accepted", None)
    assert "届出期間経過" in items(documents(res)[0])


async def test_f01_move_in_to_an_address_elsewhere_is_refused_and_sends_nothing(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    elsewhere = replace(here(), lg_code=PEER, prefecture="大阪府", city="大阪市")
    res = await gw.counter(
        DAY, moving("国内転入", DAY, person_el(r), FromLgCode="011002", NewAddress=elsewhere)
    )
    assert status(res) == ("refused", "MOVE-ADDRESS")
    assert documents(res) == []
    await gw.settle()
    assert gw.received == []


async def test_f01_f23_f25_birth_gets_a_new_code_and_a_designated_number(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    mother = japanese(factory)
    await load(gw, mother)
    mark = gw.mark()
    child = J.Person()
    name_el("Name", Name(kanji="山田\u3000花", kana="ヤマダ\u3000ハナ"), child)
    child.append(J.Sex("2"))
    child.append(J.Relationship("子"))
    res = await gw.counter(
        DAY, moving("出生", DAY - timedelta(days=2), child, HeadJuminhyoCode=mother.juminhyo_code)
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    types = [m.type for m in gw.since(mark)]
    assert types[:4] == ["IdentityNotice", "ResidentTransfer", "AddresseeRecord", "NumberGenerationRequest"]
    assert types[4:7] == ["IdentityNotice", "ResidentTransfer", "AddresseeRecord"]
    assert types[7:] == ["NoticeDestination"]
    first, second = gw.since(mark, "IdentityNotice")
    new_code = text(first.body, "Identity/JuminhyoCode") or ""
    assert is_valid_juminhyo_code(new_code) and new_code != mother.juminhyo_code
    assert text(first.body, "Identity/MyNumber") is None
    assert seqs([first, second]) == [(new_code, "A03", "1"), (new_code, "M11", "2")]
    number = text(second.body, "Identity/MyNumber") or ""
    assert is_valid_my_number(number)
    assert text(gw.of("NoticeDestination")[0].body, "MyNumber") == number
    req = gw.of("NumberGenerationRequest")[0]
    assert text(req.body, "Purpose") == "新規指定" and req.header.receiver_actor == "cs"
    m = members(documents(res)[0])[0]
    assert text(m, "MyNumber") == number and text(m, "Household/HeadName") == mother.name.kanji


async def test_f23_without_an_answer_the_counter_is_held(
    gw: FakeGateway, tmp_path: Path, factory: ResidentFactory
) -> None:
    del gw.reactions["NumberGenerationRequest"]
    cfg = RefConfig(gateway_url=gw.url, data_dir=tmp_path / "r", answer_timeout=0.3)
    async with ReferenceSut(cfg) as s:
        gw.sut_url = s.url
        r = japanese(factory)
        res = await gw.counter(DAY, moving("国外転入", DAY, person_el(r, ids=False), NewAddress=here()))
        assert status(res) == ("held", "NUMBER-PENDING")
        await gw.settle()
        req = gw.of("NumberGenerationRequest")[0]
        # the late answer is still applied
        mark = gw.mark()
        await gw.deliver(
            "NumberToDesignate",
            J.NumberToDesignate(
                J.RequestNo(text(req.body, "RequestNo") or ""),
                J.JuminhyoCode(text(req.body, "Identity/JuminhyoCode") or ""),
                J.MyNumber(make_my_number("12345678901")),
            ),
        )
        got = await gw.wait_for("NoticeDestination", since=mark)
        assert text(got[0].body, "MyNumber") == "123456789018"


async def test_f01_f06_f29_seq_and_card_events_across_changes(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=PEER)
    assert r.card_no
    await load(gw, r)
    res = await gw.counter(DAY, moving("転居", DAY, code_only(r.juminhyo_code), NewAddress=here("一番町")))
    assert status(res) == ("accepted", None)
    res = await gw.counter(
        DAY + timedelta(days=1),
        moving(
            "国内転出",
            DAY + timedelta(days=10),
            code_only(r.juminhyo_code),
            ToLgCode=PEER,
            NewAddress=Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田"),
        ),
    )
    assert status(res) == ("accepted", None)
    assert text(members(documents(res)[0])[0], "Status") == "転出予定"
    await gw.settle()
    assert [(c, s) for _, c, s in seqs(gw.of("IdentityNotice"))] == [("A04", "1"), ("M01", "2"), ("D01", "3")]
    assert [m.type for m in gw.of("FuhyoNotice")] == ["FuhyoNotice"] * 2  # 記載 and 転居, not 転出
    cards = gw.of("CardManagementInfo")
    assert [text(c.body, "Event") for c in cards] == ["券面記載事項変更", "転出"]
    assert text(cards[0].body, "Address/Town") == "一番町"
    # 番号法施行令: the card lapses unless the 転入届 is made within 30 days of the planned move-out
    assert text(cards[1].body, "ContinuedUseDeadline") == (DAY + timedelta(days=40)).isoformat()
    assert all(c.arrow == 10 for c in cards)


async def test_f01_household_change_sends_no_identity_notice(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    hh = factory.household(2)
    await load(gw, *hh)
    mark = gw.mark()
    res = await gw.counter(
        DAY, moving("世帯変更", DAY, code_only(hh[1].juminhyo_code), HeadJuminhyoCode=hh[1].juminhyo_code)
    )
    assert status(res) == ("accepted", None)
    await gw.settle()
    assert [m.type for m in gw.since(mark)] == ["ResidentTransfer", "AddresseeRecord"]
    m = members(documents(res)[0])[0]
    assert text(m, "Household/Relationship") == "世帯主"
    assert text(m, "Household/HouseholdNo") != hh[0].household_no


async def test_f01_death_deletes_and_expires_the_card(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory, honseki_lg=LG)
    await load(gw, r)
    mark = gw.mark()
    res = await gw.counter(DAY, moving("死亡", DAY - timedelta(days=1), code_only(r.juminhyo_code)))
    assert status(res) == ("accepted", None)
    await gw.settle()
    assert [m.type for m in gw.since(mark)] == [
        "IdentityNotice",
        "ResidentTransfer",
        "AddresseeRecord",
        "CardManagementInfo",
    ]
    assert text(gw.since(mark, "CardManagementInfo")[0].body, "Event") == "失効"
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1:] == ("D03", "2")


# ================================================================================ F02 職権


async def test_f02_official_amendment_prints_before_and_after(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    mark = gw.mark()
    op = J.OfficialCorrection(J.Action("修正"), J.Basis("実態調査"))
    jdate_el("EventDate", jd(DAY), op)
    p = J.Person(J.JuminhyoCode(r.juminhyo_code))
    name_el("Name", Name(kanji="高橋\u3000一郎", kana="タカハシ\u3000イチロウ"), p)
    op.append(p)
    res = await gw.counter(DAY, op)
    assert status(res) == ("accepted", None)
    doc = documents(res)[0]
    assert doc.get("kind") == "処理票"
    assert items(doc)["氏名"][1:] == (
        " ".join(x for x in (r.name.kanji, r.name.kana) if x),
        "高橋\u3000一郎 タカハシ\u3000イチロウ",
    )
    await gw.settle()
    assert seqs(gw.since(mark, "IdentityNotice"))[0][1:] == ("M07", "2")
    assert text(gw.since(mark, "IdentityNotice")[0].body, "Identity/Name/Kanji") == "高橋\u3000一郎"
    assert text(gw.since(mark, "CardManagementInfo")[0].body, "Event") == "券面記載事項変更"


async def test_f02_official_deletion(gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory) -> None:
    r = japanese(factory)
    await load(gw, r)
    op = J.OfficialCorrection(J.Action("消除"), J.Basis("実態調査"))
    jdate_el("EventDate", jd(DAY), op)
    op.append(J.Person(J.JuminhyoCode(r.juminhyo_code)))
    res = await gw.counter(DAY, op)
    assert status(res) == ("accepted", None)
    assert items(documents(res)[0])["状態"][1:] == ("住民", "消除")
    await gw.settle()
    assert seqs(gw.of("IdentityNotice"))[-1][1:] == ("D04", "2")
    again = await gw.counter(DAY, op)
    assert status(again) == ("refused", "CORR-DELETED")


# ============================================================================ F03 写し, F04 転出証明書


def copy_req(
    code: str,
    *,
    scope: str = "本人",
    requester: str = "本人",
    rel: bool = False,
    honseki: bool = False,
    my_number: bool = False,
    jcode: bool = False,
) -> etree._Element:
    b = {True: "true", False: "false"}
    return J.CopyRequest(
        J.JuminhyoCode(code),
        J.Scope(scope),
        J.Requester(requester),
        J.Purpose("就職"),
        J.Relationship(b[rel]),
        J.Honseki(b[honseki]),
        J.IncludeMyNumber(b[my_number]),
        J.IncludeJuminhyoCode(b[jcode]),
    )


async def test_f03_copy_has_required_items_and_optional_ones_only_when_asked(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    hh = factory.household(3)
    await load(gw, *hh)
    mark = gw.mark()
    res = await gw.counter(DAY, copy_req(hh[0].juminhyo_code))
    m = members(documents(res)[0])
    assert len(m) == 1
    for tag in ("Name", "BirthDate", "Sex", "Address", "ResidentSince", "AddressSince"):
        assert m[0].find(q(tag)) is not None, tag
    for tag in ("Household", "Honseki", "MyNumber", "JuminhyoCode"):
        assert m[0].find(q(tag)) is None, tag
    res = await gw.counter(
        DAY,
        copy_req(hh[0].juminhyo_code, scope="世帯全員", rel=True, honseki=True, my_number=True, jcode=True),
    )
    m = members(documents(res)[0])
    assert [text(x, "JuminhyoCode") for x in m] == [h.juminhyo_code for h in hh]
    assert [text(x, "MyNumber") for x in m] == [h.my_number for h in hh]
    assert all(x.find(q("Honseki")) is not None and x.find(q("Household")) is not None for x in m)
    await gw.settle()
    assert gw.since(mark) == []  # issuing a copy sends nothing


@pytest.mark.parametrize("requester", ["第三者", "代理人"])
@pytest.mark.parametrize("ask", ["honseki", "my_number", "jcode"])
async def test_f03_third_party_never_gets_restricted_items(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory, requester: str, ask: str
) -> None:
    r = japanese(factory)
    await load(gw, r)
    res = await gw.counter(
        DAY,
        copy_req(
            r.juminhyo_code,
            requester=requester,
            honseki=ask == "honseki",
            my_number=ask == "my_number",
            jcode=ask == "jcode",
        ),
    )
    assert status(res) == ("refused", "COPY-RESTRICTED")
    assert documents(res) == []


async def test_f04_move_out_certificate_only_when_moving(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)
    await load(gw, r)
    op = J.MoveOutCertificateIssue(J.JuminhyoCode(r.juminhyo_code))
    assert status(await gw.counter(DAY, op)) == ("refused", "MOC-NOT-MOVING")
    dest = Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田")
    await gw.counter(
        DAY,
        moving(
            "国内転出", DAY + timedelta(days=7), code_only(r.juminhyo_code), ToLgCode=PEER, NewAddress=dest
        ),
    )
    res = await gw.counter(DAY, op)
    assert status(res) == ("accepted", None)
    doc = documents(res)[0]
    assert doc.get("kind") == "転出証明書"
    m = members(doc)[0]
    for tag in ("JuminhyoCode", "MyNumber", "Name", "BirthDate", "Sex", "Address", "Honseki"):
        assert m.find(q(tag)) is not None, tag
    it = items(doc)
    assert it["転出先"][0] == dest.one_line()
    assert it["転出予定年月日"][0] == "令和8年4月6日（2026-04-06）"


# ============================================================================ F05/F27 証明書データ


async def _idno(gw: FakeGateway, r: Resident) -> str:
    res = await gw.counter(DAY, official_record(r))
    return items(documents(res)[0])[f"識別番号:{r.juminhyo_code}"][0] or ""


def cert_req(idno: str, *, scope: str = "本人", honseki: bool = False) -> etree._Element:
    return J.CertificateDataRequest(
        J.RequestNo("REQ-1"),
        J.IdentificationNo(idno),
        J.Request(
            J.CertificateKind("住民票の写し"),
            J.Scope(scope),
            J.Copies("1"),
            J.Options(J.Relationship("true"), J.Honseki("true" if honseki else "false")),
        ),
    )


async def test_f05_f27_certificate_data_by_identification_number(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    hh = factory.household(2)
    idno = await _idno(gw, hh[0])
    await _idno(gw, hh[1])
    assert idno.startswith("ID") and len(idno) == 16
    sender = ("certserver", LG)
    st, data = await gw.deliver("CertificateDataRequest", cert_req(idno, scope="世帯全員"), sender=sender)
    assert st == 200
    assert gw.validator.check(data).ok
    body = body_of(parse(data))
    assert text(body, "Result/Status") == "accepted"
    assert len(members(body)) == 2
    payload = data.decode()
    assert find_my_numbers(payload) == []
    assert hh[0].juminhyo_code not in payload and "JuminhyoCode" not in payload
    assert body.find(f".//{q('Honseki')}") is None
    st, data = await gw.deliver("CertificateDataRequest", cert_req(idno, honseki=True), sender=sender)
    assert body_of(parse(data)).find(f".//{q('Honseki')}") is not None
    st, data = await gw.deliver("CertificateDataRequest", cert_req("ID00000000000000"), sender=sender)
    assert text(body_of(parse(data)), "Result/Status") == "not-found"
    await gw.counter(DAY, moving("死亡", DAY, code_only(hh[0].juminhyo_code)))
    st, data = await gw.deliver("CertificateDataRequest", cert_req(idno), sender=sender)
    assert text(body_of(parse(data)), "Result/Status") == "refused"


# ============================================================================ F07 照会 (CS terminal)


async def test_f07_identity_query_from_the_cs_terminal(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory
) -> None:
    r = japanese(factory)

    def answer(g: FakeGateway, m: Received) -> etree._Element:
        from conformance.codec import person_identity_el

        out: etree._Element = J.IdentityQueryResult(
            J.QueryNo(text(m.body, "QueryNo") or "Q"), J.Result(J.Status("accepted"))
        )
        person_identity_el("Identity", r, out)
        return out

    gw.answers["IdentityQuery"] = answer
    op = J.IdentityQueryOp(J.Purpose("窓口確認"), J.JuminhyoCode(r.juminhyo_code))
    res = await gw.counter(DAY, op)
    assert status(res) == ("accepted", None)
    q_msg = gw.of("IdentityQuery")[0]
    assert (q_msg.header.sender_actor, q_msg.arrow) == ("counter", 13)
    assert text(q_msg.body, "JuminhyoCode") == r.juminhyo_code
    doc = documents(res)[0]
    assert doc.get("kind") == "照会結果"
    assert text(members(doc)[0], "MyNumber") == r.my_number
    bad = J.IdentityQueryOp(J.Purpose("4情報"), J.NameKana("ヤマダ"))
    assert status(await gw.counter(DAY, bad)) == ("refused", "QUERY-ATTRIBUTES")
