"""入管通知連携 and 出入国在留管理庁 (29→27, 28): results, IMM-CARD refusals, resends, 法務省通知."""

from __future__ import annotations

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort, change, residents_xml

from conformance.codec import address_el, jdate_el, name_el
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors.immigration import ImmigrationSimulator
from simulators.actors.immlink import ImmLinkSimulator
from simulators.toolbox import E, txt

T = "T1"
JUKI = ("juki", SUT)
LINK = ("immlink", SUT)


@pytest.fixture
def port() -> FakePort:
    p = FakePort()
    p.add(ImmLinkSimulator)
    p.add(ImmigrationSimulator)
    return p


@pytest.fixture
def foreigner() -> Resident:
    return ResidentFactory(41, SUT).foreign_resident()


def person(r: Resident, card: str | None = None) -> etree._Element:
    assert r.foreign is not None
    return E.Person(name_el("Name", r.name), jdate_el("BirthDate", r.birth_date), E.Sex(r.sex),
                    E.Nationality(r.foreign.nationality),
                    E.ResidenceCardNo(card or r.foreign.residence_card_no), address_el("Address", r.address))


def notice(r: Resident, card: str | None = None, no: str = "MN-1") -> etree._Element:
    return E.MunicipalNotice(E.NoticeNo(no), E.LgCode(SUT), E.Kind("記載"), person(r, card), change("A02", 1))


async def send(port: FakePort, body: etree._Element) -> etree._Element:
    res = await port.inject(JUKI, LINK, "MunicipalNotice", body, T)
    assert res.status == 200 and res.response is not None
    assert [m.arrow for m in port.of_type("MunicipalNotice")][-2:] == [29, 27]
    return res.response.body


@pytest.mark.parametrize(("seeded", "card", "status"), [
    (False, None, "accepted"),  # an agency that knows nobody accepts any well-formed number
    (True, None, "accepted"),
    (True, "ZZ00000000ZZ", "refused"),  # seeded agency: an unknown card is refused
])
async def test_municipal_notice_result(port: FakePort, foreigner: Resident, seeded: bool, card: str | None,
                                       status: str) -> None:
    if seeded:
        port.sims["immigration"].seed(T, "residents", {"xml": residents_xml(foreigner)})
    got = await send(port, notice(foreigner, card))
    assert txt(got, "Result/Status") == status
    assert txt(got, "Result/Code") == (None if status == "accepted" else "IMM-CARD")


async def test_invalid_card_refused_then_resend_recorded(port: FakePort, foreigner: Resident) -> None:
    assert foreigner.foreign is not None
    bad = foreigner.foreign.residence_card_no
    port.sims["immigration"].seed(T, "invalid_cards", {"cards": [bad], "reason": "失効"})
    assert txt(await send(port, notice(foreigner)), "Result/Code") == "IMM-CARD"
    assert txt(await send(port, notice(foreigner, "AB12345678CD")), "Result/Status") == "accepted"
    attempts = port.sims["immigration"].snapshot(T)["notices"]["MN-1"]["attempts"]
    assert [a["status"] for a in attempts] == ["refused", "accepted"]
    assert [a["status"] for a in port.sims["immlink"].snapshot(T)["notices"]["MN-1"]["attempts"]] == \
        ["refused", "accepted"]


async def test_agency_down_is_held_at_the_link(port: FakePort, foreigner: Resident) -> None:
    port.down.add("immigration")
    got = await send(port, notice(foreigner))
    assert (txt(got, "Result/Status"), txt(got, "Result/Code")) == ("held", "IMMLINK-UPSTREAM-503")


async def test_moj_notice_replacing_a_card_invalidates_the_old_number(port: FakePort,
                                                                       foreigner: Resident) -> None:
    assert foreigner.foreign is not None
    port.sims["immigration"].seed(T, "residents", {"xml": residents_xml(foreigner)})
    old, new = foreigner.foreign.residence_card_no, "XY87654321ZW"
    moj = E.MojNotice(E.NoticeNo("MOJ-1"), E.LgCode(SUT), E.Kind("在留カード再交付"),
                      E.Category(foreigner.foreign.category), person(foreigner),
                      E.Changes(E.NewResidenceCardNo(new)), E.EffectiveDate("2026-03-30"))
    await port.inject(("immigration", SUT), JUKI, "MojNotice", moj, T)
    assert port.last("MojNotice").arrow == 28
    assert txt(await send(port, notice(foreigner, old, "MN-2")), "Result/Code") == "IMM-CARD"
    assert txt(await send(port, notice(foreigner, new, "MN-3")), "Result/Status") == "accepted"
