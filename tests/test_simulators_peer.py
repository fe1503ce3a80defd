"""他市町村: 転出証明書情報 via the national server, 転入通知 (latest wins), 附票 mismatches, 広域住民票."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort, change, residents_xml

from conformance.codec import address_el, jdate_el, name_el
from conformance.model import Address, JDate, Name, Resident
from conformance.residents import ResidentFactory
from simulators.actors.cs import CsSimulator
from simulators.actors.national import NationalSimulator
from simulators.actors.peer import PeerSimulator
from simulators.actors.pref import PrefSimulator
from simulators.toolbox import E, txt

T = "T1"
PEER = "325236"
JUKI = ("juki", SUT)
TO_PEER = ("cs", PEER)  # the SUT addresses a message for another municipality by the Receiver's lgCode


@pytest.fixture
def port() -> FakePort:
    p = FakePort()
    for cls in (CsSimulator, PrefSimulator, NationalSimulator, PeerSimulator):
        p.add(cls)
    return p


@pytest.fixture
def family() -> list[Resident]:
    return ResidentFactory(5, PEER).household(2)


def seed_moving(port: FakePort, people: list[Resident], **extra: Any) -> None:
    cards = {r.juminhyo_code: {"card_no": f"C{i:011d}", "cert_serial": f"{i:016X}"}
             for i, r in enumerate(people)}
    port.sims["peer"].seed(T, "residents", {
        "xml": residents_xml(*people), "lg_code": PEER, "planned_move_out_date": "2026-04-01",
        "notified_date": "2026-03-20", "cards": cards, **extra})


def subject_by_code(jc: str) -> etree._Element:
    return E.Subject(E.JuminhyoCode(jc))


def request(*subjects: etree._Element, request_no: str = "MOR-1") -> etree._Element:
    return E.MoveOutCertRequest(E.RequestNo(request_no), E.MoveInLgCode(SUT), E.MoveOutLgCode(PEER),
                                *subjects)


async def test_moveout_request_is_answered_through_the_national_server(port: FakePort,
                                                                        family: list[Resident]) -> None:
    seed_moving(port, family)
    res = await port.inject(JUKI, TO_PEER, "MoveOutCertRequest",
                            request(*(subject_by_code(r.juminhyo_code) for r in family)), T)
    assert [m.arrow for m in port.of_type("MoveOutCertRequest")] == [8, 1]
    hops = port.of_type("MoveOutCertInfo")
    assert [(m.arrow, m.header.sender_actor) for m in hops] == [(4, "national"), (9, "cs")]
    info = hops[-1]
    assert info.header.receiver_actor == "juki"
    assert info.header.correlation_id == res.message_id
    body = info.body
    assert (txt(body, "RequestNo"), txt(body, "MoveOutLgCode"), txt(body, "MoveInLgCode")) == \
        ("MOR-1", PEER, SUT)
    assert (txt(body, "PlannedMoveOutDate/Western"), txt(body, "PlannedMoveOutDate/Wareki")) == \
        ("2026-04-01", "令和8年4月1日")
    members = body.findall("{*}Member")
    assert [txt(m, "Resident/JuminhyoCode") for m in members] == [r.juminhyo_code for r in family]
    assert [txt(m, "Resident/MyNumber") for m in members] == [r.my_number for r in family]
    assert [txt(m, "CardNo") for m in members] == ["C00000000000", "C00000000001"]
    assert txt(body, "PlannedAddress/LgCode") == SUT
    noted = port.sims["peer"].muni(T, PEER)["moc_requests"]["MOR-1"]
    assert noted["answered"] == txt(body, "CertificateNo") and noted["status"] == 202


@pytest.mark.parametrize("case", ["not-moving", "unknown", "moving-elsewhere"])
async def test_no_certificate_for_who_is_not_moving_here(port: FakePort, family: list[Resident],
                                                         case: str) -> None:
    if case == "not-moving":
        port.sims["peer"].seed(T, "residents", {"xml": residents_xml(*family), "lg_code": PEER})
    elif case == "moving-elsewhere":
        seed_moving(port, family, move_in_lg="012238")
    else:
        seed_moving(port, family[:1])
    target = family[1] if case == "unknown" else family[0]
    await port.inject(JUKI, TO_PEER, "MoveOutCertRequest", request(subject_by_code(target.juminhyo_code)), T)
    assert port.of_type("MoveOutCertInfo") == []
    noted = port.sims["peer"].muni(T, PEER)["moc_requests"]["MOR-1"]
    assert noted["answered"] is None
    assert noted["reason"] == ("unknown subjects" if case == "unknown" else "not 転出予定 to the requester")


async def test_subject_found_by_kana_and_birth_date(port: FakePort, family: list[Resident]) -> None:
    seed_moving(port, family)
    r = family[1]
    subject = E.Subject(name_el("Name", Name(kana=r.name.kana)), jdate_el("BirthDate", r.birth_date))
    await port.inject(JUKI, TO_PEER, "MoveOutCertRequest", request(subject), T)
    info = port.last("MoveOutCertInfo").body
    assert [txt(m, "Resident/JuminhyoCode") for m in info.findall("{*}Member")] == [r.juminhyo_code]


async def test_special_moving_in_delivery_without_a_request(port: FakePort, family: list[Resident]) -> None:
    seed_moving(port, family)
    res = await port.sims["peer"].send_moveout(T, PEER, [family[0].juminhyo_code])
    await port.drain()
    assert res is not None and res.status == 202
    info = port.last("MoveOutCertInfo")
    assert info.arrow == 9 and txt(info.body, "RequestNo") is None


# --- 転入通知: the latest wins, the plan is kept ------------------------------------------------------------
def move_in_notice(people: list[Resident], on: date, town: str, notice_no: str) -> etree._Element:
    addr = Address(lg_code=SUT, prefecture="東京都", city="千代田区", town=town, block="1番1号")
    n = E.MoveInNotice(E.NoticeNo(notice_no), E.MoveOutLgCode(PEER), E.MoveInLgCode(SUT),
                       jdate_el("MoveInDate", JDate.of(on)), E.NotifiedDate(on.isoformat()),
                       address_el("NewAddress", addr))
    for r in people:
        n.append(E.Person(E.JuminhyoCode(r.juminhyo_code), name_el("Name", r.name),
                          jdate_el("BirthDate", r.birth_date)))
    return n


async def test_move_in_notice_latest_wins_and_planned_values_stay(port: FakePort,
                                                                   family: list[Resident]) -> None:
    seed_moving(port, family)
    stranger = ResidentFactory(6, PEER).resident()
    await port.inject(JUKI, TO_PEER, "MoveInNotice",
                      move_in_notice(family, date(2026, 4, 2), "一番町", "N-1"), T)
    await port.inject(JUKI, TO_PEER, "MoveInNotice",
                      move_in_notice([family[0], stranger], date(2026, 4, 3), "二番町", "N-2"), T)
    m = port.sims["peer"].muni(T, PEER)
    first, second = (m["residents"][r.juminhyo_code] for r in family)
    assert first["confirmed"]["move_in_date"] == "2026-04-03" and "二番町" in first["confirmed"]["address"]
    assert first["confirmed"]["notice_no"] == "N-2"
    assert second["confirmed"]["notice_no"] == "N-1"
    for rec in (first, second):
        assert rec["planned"]["date"] == "2026-04-01" and rec["status"] == "消除"
    assert [u["juminhyo_code"] for u in m["unknown"]] == [stranger.juminhyo_code]
    # the same state comes back from the seed and the messages alone (a restart)
    fresh = PeerSimulator(FakePort())
    seed_moving(FakePort(sims={"peer": fresh}), family)
    for msg in port.log:
        if msg.header.receiver_actor == "peer":
            fresh.apply(msg, "in")
    assert fresh.snapshot(T) == port.sims["peer"].snapshot(T)


# --- 附票: the peer as 本籍地 -------------------------------------------------------------------------------
def fuhyo_notice(r: Resident) -> etree._Element:
    assert r.honseki is not None
    person = E.Person(E.JuminhyoCode(r.juminhyo_code), name_el("Name", r.name),
                      jdate_el("BirthDate", r.birth_date), E.Sex(r.sex),
                      E.Honseki(E.Place(r.honseki.place), E.LgCode(PEER),
                                E.HeadOfFamily(r.honseki.head_of_family)))
    return E.FuhyoNotice(E.NoticeNo("F-1"), E.AddressLgCode(SUT), person, address_el("Address", r.address),
                         jdate_el("AddressSince", r.birth_date), change("A01", 1))


@pytest.mark.parametrize("differs", [True, False])
async def test_fuhyo_notice_checked_against_the_family_register(port: FakePort, differs: bool) -> None:
    r = next(x for x in ResidentFactory(8, SUT).residents(10) if x.honseki is not None and x.name.kanji)
    koseki = replace(r, name=replace(r.name, kanji="別名\u3000花子")) if differs else r
    port.sims["peer"].seed(T, "koseki", {"xml": residents_xml(koseki), "lg_code": PEER})
    res = await port.inject(JUKI, TO_PEER, "FuhyoNotice", fuhyo_notice(r), T)
    mismatches = port.of_type("FuhyoMismatchNotice")
    if not differs:
        assert mismatches == []
        return
    assert [(m.arrow, m.header.receiver_actor) for m in mismatches] == [(2, "cs"), (9, "juki")]
    body = mismatches[-1].body
    assert txt(body, "RefNoticeNo") == "F-1"
    assert mismatches[0].header.correlation_id == res.message_id
    assert [txt(x, "Item") for x in body.findall("{*}Mismatch")] == ["氏名"]
    assert txt(body, "Mismatch/InKoseki") == "別名\u3000花子"
    assert port.sims["peer"].muni(T, PEER)["fuhyo"][r.juminhyo_code][0]["notice_no"] == "F-1"


# --- 広域住民票: the peer as issuing municipality ----------------------------------------------------------
async def test_wide_area_copy_info_is_matched_to_the_peers_request(port: FakePort) -> None:
    r = ResidentFactory(9, SUT).resident()
    ask = E.WideAreaCopyRequest(E.RequestNo("W-1"), E.IssuingLgCode(PEER),
                                E.Subject(E.JuminhyoCode(r.juminhyo_code)), E.Scope("本人"),
                                E.Options(E.Relationship("false"), E.IncludeMyNumber("false")))
    await port.inject(("peer", PEER), ("cs", SUT), "WideAreaCopyRequest", ask, T)
    assert port.last("WideAreaCopyRequest").arrow == 9
    member = E.Member(name_el("Name", r.name), jdate_el("BirthDate", r.birth_date), E.Sex(r.sex),
                      address_el("Address", r.address))
    info = E.WideAreaCopyInfo(E.RequestNo("W-1"), E.Result(E.Status("accepted")), member)
    await port.inject(JUKI, ("cs", SUT), "WideAreaCopyInfo", info, T)  # addressed by the request it answers
    relayed = port.last("WideAreaCopyInfo")
    assert (relayed.arrow, relayed.header.receiver_lg) == (1, PEER)
    got = port.sims["peer"].muni(T, PEER)["wide_area"]["W-1"]
    assert got["result"]["status"] == "accepted" and got["result"]["has_honseki"] is False
