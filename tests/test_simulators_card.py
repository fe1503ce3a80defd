"""J-LIS card management: issuance, verification, status changes, 通知書 destinations, カード管理情報."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort, forbid_scans

from conformance.codec import address_el, person_identity_el
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors.card import CardSimulator, valid_until
from simulators.actors.cs import CsSimulator
from simulators.toolbox import E, txt

T = "T1"
COUNTER = ("counter", SUT)
CS = ("cs", SUT)
JUKI = ("juki", SUT)


@pytest.fixture
def port() -> FakePort:
    p = FakePort()
    p.add(CsSimulator)
    p.add(CardSimulator)
    return p


@pytest.fixture
def person() -> Resident:
    return ResidentFactory(3, SUT).resident()


def issuance(r: Resident, app: str = "APP-1", on: str = "2026-03-30") -> etree._Element:
    return E.CardIssuanceRequest(E.ApplicationNo(app), person_identity_el("Identity", r), E.HandoverDate(on),
                                 E.CheckedDocument("通知カード"))


async def issue(port: FakePort, r: Resident, app: str = "APP-1") -> etree._Element:
    res = await port.inject(COUNTER, CS, "CardIssuanceRequest", issuance(r, app), T)
    assert res.response is not None
    assert [m.arrow for m in port.of_type("CardIssuanceRequest")][-2:] == [13, 6]
    return res.response.body


def verification(card: etree._Element, *, pin: bool = True, jc: str | None = None,
                 serial: str | None = None) -> etree._Element:
    v = E.CardVerificationRequest(E.VerificationNo("V-1"), E.CardNo(txt(card, "CardNo")),
                                  E.CertSerial(serial or txt(card, "CertSerial")),
                                  E.PinVerified(str(pin).lower()))
    if jc:
        v.append(E.JuminhyoCode(jc))
    return v


async def verify(port: FakePort, card: etree._Element, **kw: object) -> etree._Element:
    res = await port.inject(COUNTER, CS, "CardVerificationRequest", verification(card, **kw), T)  # type: ignore[arg-type]
    assert res.response is not None
    return res.response.body


async def test_issuance_gives_card_number_serial_and_validity(port: FakePort, person: Resident) -> None:
    card = await issue(port, person)
    assert txt(card, "Result/Status") == "accepted"
    assert re.fullmatch(r"C[0-9A-Z]{11}", txt(card, "CardNo") or "")
    assert re.fullmatch(r"[0-9A-F]{16}", txt(card, "CertSerial") or "")
    assert txt(card, "ValidUntil") == valid_until(person.birth_date.western, date(2026, 3, 30)).isoformat()
    assert {txt(card, "CardNo"), txt(card, "CertSerial")} <= port.registered[T]


async def test_issuance_is_refused_without_a_valid_my_number(port: FakePort, person: Resident) -> None:
    card = await issue(port, replace(person, my_number=None))
    assert (txt(card, "Result/Status"), txt(card, "Result/Code")) == ("refused", "CARD-MYNUMBER")
    assert txt(card, "CardNo") is None


async def test_same_application_same_card_and_a_new_card_abolishes_the_old(port: FakePort,
                                                                           person: Resident) -> None:
    forbid_scans(port.sims["card"], T, "cards")  # the holder's old cards through the index, not a scan
    first = await issue(port, person, "APP-1")
    again = await issue(port, person, "APP-1")
    assert txt(again, "CardNo") == txt(first, "CardNo")
    second = await issue(port, person, "APP-2")
    assert txt(second, "CardNo") != txt(first, "CardNo")
    old = await verify(port, first)
    assert (txt(old, "Valid"), txt(old, "Result/Code")) == ("false", "CARD-STATUS")
    assert txt(await verify(port, second), "Valid") == "true"


@pytest.mark.parametrize(("kw", "status", "code", "valid", "matches"), [
    ({}, "accepted", None, "true", None),
    ({"jc": "self"}, "accepted", None, "true", "true"),
    ({"jc": "other"}, "accepted", None, "true", "false"),
    ({"pin": False}, "refused", "CARD-PIN", "false", None),
    ({"serial": "FFFFFFFFFFFFFFFF"}, "refused", "CARD-SERIAL", "false", None),
])
async def test_verification(port: FakePort, person: Resident, kw: dict[str, object], status: str,
                            code: str | None, valid: str, matches: str | None) -> None:
    card = await issue(port, person)
    if kw.get("jc") == "self":
        kw = {"jc": person.juminhyo_code}
    elif kw.get("jc") == "other":
        kw = {"jc": ResidentFactory(4, SUT).resident().juminhyo_code}
    got = await verify(port, card, **kw)
    assert (txt(got, "Result/Status"), txt(got, "Result/Code"), txt(got, "Valid"), txt(got, "Matches")) == \
        (status, code, valid, matches)
    if valid == "true":
        assert txt(got, "Identity/JuminhyoCode") == person.juminhyo_code


async def test_verification_of_an_unknown_card(port: FakePort) -> None:
    fake = E.X(E.CardNo("C00000000000"), E.CertSerial("0000000000000000"))
    got = await verify(port, fake)
    assert (txt(got, "Result/Status"), txt(got, "Valid")) == ("not-found", "false")


def status_change(card: etree._Element, jc: str, new: str, no: str) -> etree._Element:
    return E.CardStatusChange(E.ChangeNo(no), E.CardNo(txt(card, "CardNo")), E.JuminhyoCode(jc),
                              E.NewStatus(new), E.ReasonText("個人番号の変更"))


async def test_status_changes(port: FakePort, person: Resident) -> None:
    card = await issue(port, person)
    jc = person.juminhyo_code
    steps = [("一時停止", "accepted", "一時停止", "false"), ("一時停止解除", "accepted", "有効", "true"),
             ("一時停止解除", "refused", "有効", "true"), ("廃止", "accepted", "廃止", "false"),
             ("一時停止", "refused", "廃止", "false")]
    for i, (new, status, card_status, valid) in enumerate(steps):
        res = await port.inject(COUNTER, CS, "CardStatusChange", status_change(card, jc, new, f"CH-{i}"), T)
        assert res.response is not None
        body = res.response.body
        assert (txt(body, "Result/Status"), txt(body, "Status")) == (status, card_status), new
        assert txt(await verify(port, card), "Valid") == valid
    other = ResidentFactory(4, SUT).resident().juminhyo_code
    wrong = await port.inject(COUNTER, CS, "CardStatusChange", status_change(card, other, "廃止", "X"), T)
    assert wrong.response is not None and txt(wrong.response.body, "Result/Code") == "CARD-PERSON"


async def test_card_management_info_is_recorded_and_revokes_on_death(port: FakePort,
                                                                      person: Resident) -> None:
    card = await issue(port, person)
    mine = txt(card, "CardNo")
    for i, (card_no, event) in enumerate([(mine, "転出"), ("C99999999999", "交付"), (mine, "失効")]):
        info = E.CardManagementInfo(E.InfoNo(f"I-{i}"), E.CardNo(card_no),
                                    E.JuminhyoCode(person.juminhyo_code), E.Event(event),
                                    E.EventDate("2026-04-01"))
        if event == "転出":
            info.append(address_el("Address", person.address))
            info.append(E.ContinuedUseDeadline("2026-06-30"))
        await port.inject(JUKI, ("card", SUT), "CardManagementInfo", info, T)
    mgmt = port.sims["card"].snapshot(T)["management"]
    assert [(v["event"], v["known"]) for v in mgmt.values()] == \
        [("転出", True), ("交付", False), ("失効", True)]
    assert port.sims["card"].snapshot(T)["cards"][mine]["continued_use_deadline"] == "2026-06-30"
    assert txt(await verify(port, card), "Valid") == "false"


async def test_replay_reissues_the_same_cards(port: FakePort, person: Resident) -> None:
    card = await issue(port, person)
    fresh = CardSimulator(FakePort())
    for m in port.log:
        if m.header.receiver_actor == "card":
            fresh.apply(m, "in")
    assert fresh.snapshot(T)["cards"] == port.sims["card"].snapshot(T)["cards"]
    assert txt(card, "CardNo") in fresh.snapshot(T)["cards"]


@pytest.mark.parametrize(("birth", "issued", "until"), [
    (date(1980, 5, 10), date(2026, 3, 30), date(2035, 5, 10)),  # 10th birthday after issuance
    (date(1980, 3, 30), date(2026, 3, 30), date(2036, 3, 30)),  # issued on a birthday: count from the next
    (date(2015, 7, 1), date(2026, 3, 30), date(2030, 7, 1)),  # under 18: 5th birthday
    (date(2000, 2, 29), date(2026, 3, 30), date(2036, 2, 29)),  # 29 February in a leap year
    (date(2000, 2, 29), date(2025, 3, 30), date(2035, 3, 1)),  # ... and in a common year
    (None, date(2026, 3, 30), date(2036, 3, 30)),
])
def test_valid_until(birth: date | None, issued: date, until: date) -> None:
    assert valid_until(birth, issued) == until


async def test_continued_use_keeps_its_deadline_until_the_card_is_presented(port: FakePort,
                                                                            person: Resident) -> None:
    """転入継続利用 with a deadline (card not presented, 転入届 + 90 days) is still due; without one it is done."""
    card = await issue(port, person)
    mine = txt(card, "CardNo")
    for i, deadline in enumerate(["2026-06-29", None]):
        info = E.CardManagementInfo(E.InfoNo(f"K-{i}"), E.CardNo(mine), E.JuminhyoCode(person.juminhyo_code),
                                    E.Event("転入継続利用"), E.EventDate("2026-03-31"))
        if deadline:
            info.append(E.ContinuedUseDeadline(deadline))
        await port.inject(JUKI, ("card", SUT), "CardManagementInfo", info, T)
        assert port.sims["card"].snapshot(T)["cards"][mine]["continued_use_deadline"] == deadline
