"""The reference SUT through its real contract over HTTP on loopback: surfaces, then every function F01–F30.

A small stand-in gateway (simulators.reference.testing.FakeGateway) records and validates every message the
SUT sends (schema, rules, arrow): a test fails at teardown if the SUT sent anything invalid.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from lxml import etree

from conformance.catalogue import SCHEMAS, default
from conformance.codec import address_el, jdate_el, name_el
from conformance.envelope import body_of, findings_of
from conformance.identifiers import (
    is_valid_juminhyo_code,
    is_valid_my_number,
    make_juminhyo_code,
    make_my_number,
)
from conformance.model import Address, JDate, Name, Resident
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

LG = "131016"
PEER = "271004"  # 大阪市
DAY = date(2026, 3, 30)


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as g:
        yield g


@pytest.fixture
async def sut(gw: FakeGateway, tmp_path: Path) -> AsyncIterator[ReferenceSut]:
    cfg = RefConfig(
        gateway_url=gw.url, data_dir=tmp_path / "ref", retry_initial=0.02, retry_max=0.2, answer_timeout=3.0
    )
    async with ReferenceSut(cfg) as s:
        gw.sut_url = s.url
        yield s
    bad = [[f.for_people() for f in fs] for _, fs in gw.invalid]
    assert not bad, f"the SUT sent invalid messages: {bad}"


@pytest.fixture
def factory() -> ResidentFactory:
    return ResidentFactory(7, LG, hard_share=0.0, card_share=1.0)


def jd(d: date) -> JDate:
    return JDate.of(d)


async def load(gw: FakeGateway, *people: Resident) -> None:
    for r in people:
        res = await gw.counter(DAY - timedelta(days=1), official_record(r))
        assert text(res, "Result/Status") == "accepted", etree.tostring(res, encoding="unicode")
    await gw.settle()


def japanese(factory: ResidentFactory, *, honseki_lg: str | None = None, card: bool = True) -> Resident:
    r = factory.resident()
    if r.foreign is not None or r.honseki is None:
        return japanese(factory, honseki_lg=honseki_lg, card=card)
    if honseki_lg is not None:
        r = replace(r, honseki=replace(r.honseki, lg_code=honseki_lg))
    if not card:
        r = replace(r, card_no=None, card_serial=None)
    return replace(r, relationship="世帯主")


def moving(
    kind: str,
    event: date,
    *people: etree._Element,
    FromLgCode: str | None = None,
    ToLgCode: str | None = None,
    NewAddress: Address | None = None,
    HeadJuminhyoCode: str | None = None,
) -> etree._Element:
    """A MovingNotification in the XSD's element order."""
    op = J.MovingNotification(J.Kind(kind))
    jdate_el("EventDate", jd(event), op)
    if FromLgCode:
        op.append(J.FromLgCode(FromLgCode))
    if ToLgCode:
        op.append(J.ToLgCode(ToLgCode))
    if NewAddress is not None:
        address_el("NewAddress", NewAddress, op)
    if HeadJuminhyoCode:
        op.append(J.HeadJuminhyoCode(HeadJuminhyoCode))
    for p in people:
        op.append(p)
    return op


def code_only(code: str, relationship: str | None = None) -> etree._Element:
    el = J.Person(J.JuminhyoCode(code))
    if relationship:
        el.append(J.Relationship(relationship))
    return el


def here(town: str = "神田錦町") -> Address:
    return Address(lg_code=LG, prefecture="東京都", city="千代田区", town=town, block="1丁目1番1号")


def reason(body: etree._Element) -> str | None:
    el = body.find(f"{q('Change')}/{q('Reason')}")
    return None if el is None else el.get("code")


def status(res: etree._Element) -> tuple[str | None, str | None]:
    return text(res, "Result/Status"), text(res, "Result/Code")


def seqs(msgs: list[Received]) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (
            text(m.body, "Identity/JuminhyoCode"),
            reason(m.body),
            text(m.body, "Change/Seq"),
        )
        for m in msgs
    ]


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


def _entry_notice(code: str) -> etree._Element:
    return J.IndividualEntryNotice(
        J.NoticeNo("N-1"),
        J.SourceLgCode(PEER),
        J.Subject(J.JuminhyoCode(code)),
        J.Entry(J.Kind("国民健康保険"), J.From("2026-04-01"), J.Number("123")),
    )


@pytest.mark.parametrize(
    "breakage", ["malformed", "schema", "check-digit", "unknown-type", "wrong-receiver", "wrong-lg", "dtd"]
)
async def test_inbound_refuses_bad_messages_and_records_nothing(
    gw: FakeGateway, sut: ReferenceSut, factory: ResidentFactory, breakage: str
) -> None:
    r = japanese(factory)
    await load(gw, r)
    good = gw.envelope("IndividualEntryNotice", _entry_notice(r.juminhyo_code), message_id="M-in-1")
    bad = {
        "malformed": good[:-20],
        "schema": good.replace(b"<Kind>", b"<Kynd>").replace(b"</Kind>", b"</Kynd>"),
        "check-digit": good.replace(
            r.juminhyo_code.encode(),
            (r.juminhyo_code[:10] + str((int(r.juminhyo_code[10]) + 1) % 10)).encode(),
        ),
        "unknown-type": gw.envelope(
            "IndividualEntryNotice", _entry_notice(r.juminhyo_code), message_id="M-in-1"
        ).replace(b"<MessageType>IndividualEntryNotice", b"<MessageType>NoSuchType"),
        "wrong-receiver": gw.envelope(
            "IndividualEntryNotice",
            _entry_notice(r.juminhyo_code),
            message_id="M-in-1",
            receiver=("addressee", LG),
        ),
        "wrong-lg": gw.envelope(
            "IndividualEntryNotice",
            _entry_notice(r.juminhyo_code),
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
    env = gw.envelope("IndividualEntryNotice", _entry_notice(r.juminhyo_code), message_id="M-auth")
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
    env = gw.envelope("IndividualEntryNotice", _entry_notice(r.juminhyo_code), message_id="M-dup")
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
    await gw.deliver("IndividualEntryNotice", _entry_notice(r.juminhyo_code))
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


def eapp(
    app_id: str, r: Resident, submitted: str, planned: date, kind: str = "転出届・転入予約"
) -> etree._Element:
    a = J.Applicant()
    name_el("Name", r.name, a)
    jdate_el("BirthDate", r.birth_date, a)
    body = J.EApplication(J.ApplicationId(app_id), J.Kind(kind), J.SubmittedAt(submitted), J.LgCode(LG), a)
    address_el("CurrentAddress", r.address, body)
    body.append(J.PlannedMoveOutDate(planned.isoformat()))
    address_el(
        "Destination", Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田"), body
    )
    body.append(J.CertSerial("0123456789ABCDEF0123"))
    body.append(J.Signature("c2lnbmF0dXJl"))
    return body


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
