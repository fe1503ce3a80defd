"""マイナポータル (38→35): the 30-days-before / 10-days-after window, forwarding to the SUT's counter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import etree
from test_simulators_support import JST, SUT, FakePort

from conformance.codec import address_el, jdate_el, name_el
from conformance.model import Address, JDate, Name
from simulators.actors.portal import PortalSimulator, arrival
from simulators.clock import OperatingCalendar
from simulators.toolbox import E, txt

T = "T1"
RESIDENT = ("resident", SUT)
PORTAL = ("portal", SUT)
PLANNED = date(2026, 4, 10)


@pytest.fixture
def port() -> FakePort:
    p = FakePort()
    p.add(PortalSimulator)
    p.sims["portal"].lag = None  # these tests are about the window; the lag has its own tests below
    return p


def application(submitted: datetime, app_id: str = "EA-1", lg: str = SUT) -> etree._Element:
    here = Address(lg_code=SUT, prefecture="東京都", city="千代田区", town="一番町", block="1番1号")
    there = Address(lg_code="325236", prefecture="島根県", city="松江市", town="殿町", block="1番地")
    return E.EApplication(
        E.ApplicationId(app_id), E.Kind("転出届・転入予約"), E.SubmittedAt(submitted.isoformat()),
        E.LgCode(lg),
        E.Applicant(name_el("Name", Name(kanji="山田\u3000太郎", kana="ヤマダ\u3000タロウ")),
                    jdate_el("BirthDate", JDate.of(date(1990, 1, 2)))),
        address_el("CurrentAddress", here), E.PlannedMoveOutDate(PLANNED.isoformat()),
        address_el("Destination", there), E.CertSerial("0123456789ABCDEF"), E.Signature("c2lnbmF0dXJl"))


def at(days: int, hour: int = 12) -> datetime:
    return datetime.combine(PLANNED + timedelta(days=days), datetime.min.time(), JST).replace(hour=hour)


@pytest.mark.parametrize(("submitted", "ok"), [
    (at(-31, 23), False), (at(-30, 0), True), (at(0), True), (at(10, 23), True), (at(11, 0), False),
    (datetime(2026, 3, 11, 0, 0), True),  # no offset: read as JST
    (datetime(2026, 3, 10, 15, 0, tzinfo=UTC), True),  # 00:00 JST on the first day
    (datetime(2026, 3, 10, 14, 59, tzinfo=UTC), False),  # 23:59 JST the day before
])
async def test_window(port: FakePort, submitted: datetime, ok: bool) -> None:
    res = await port.inject(RESIDENT, PORTAL, "EApplication", application(submitted), T)
    forwarded = [m for m in port.of_type("EApplication") if m.arrow == 35]
    if ok:
        assert not port.refused
        assert len(forwarded) == 1
        head = forwarded[0].header
        assert (head.receiver_actor, head.correlation_id) == ("counter", res.message_id)
        assert txt(forwarded[0].body, "SubmittedAt") == submitted.isoformat()
    else:
        assert [r.code for _, r in port.refused] == ["PORTAL-WINDOW"]
        assert forwarded == []
    status = port.sims["portal"].snapshot(T)["applications"]["EA-1"]["status"]
    assert status == ("accepted" if ok else "refused")


async def test_forwarded_once_and_other_municipalities_kept(port: FakePort) -> None:
    for _ in range(2):
        await port.inject(RESIDENT, PORTAL, "EApplication", application(at(-3)), T)
    await port.inject(RESIDENT, PORTAL, "EApplication", application(at(-3), "EA-2", lg="325236"), T)
    assert [txt(m.body, "ApplicationId") for m in port.of_type("EApplication") if m.arrow == 35] == ["EA-1"]
    apps = port.sims["portal"].snapshot(T)["applications"]
    assert apps["EA-2"]["status"] == "kept" and apps["EA-2"]["forwarded"] is None
    assert {"EA-1", "EA-2"} <= port.registered[T]


# --- the lag: about two hours on the virtual clock, out-of-hours ones the next business day -----------------
@pytest.mark.parametrize(("made", "due"), [
    (datetime(2026, 4, 1, 10, 0, tzinfo=JST), datetime(2026, 4, 1, 12, 0, tzinfo=JST)),  # Wednesday, in hours
    (datetime(2026, 4, 1, 15, 15, tzinfo=JST), datetime(2026, 4, 2, 8, 30, tzinfo=JST)),  # 17:15 is closing
    (datetime(2026, 4, 1, 5, 0, tzinfo=JST), datetime(2026, 4, 1, 8, 30, tzinfo=JST)),  # before opening
    (datetime(2026, 4, 3, 16, 30, tzinfo=JST), datetime(2026, 4, 6, 8, 30, tzinfo=JST)),  # Friday → Monday
    (datetime(2026, 4, 29, 10, 0, tzinfo=JST), datetime(2026, 4, 30, 8, 30, tzinfo=JST)),  # 昭和の日
    (datetime(2026, 12, 28, 16, 0, tzinfo=JST), datetime(2027, 1, 4, 8, 30, tzinfo=JST)),  # year-end closure
])
def test_arrival(made: datetime, due: datetime) -> None:
    assert arrival(made, OperatingCalendar()) == due


async def test_forwarded_only_when_the_virtual_clock_reaches_the_arrival() -> None:
    port = FakePort(clock=datetime(2026, 4, 3, 16, 30, tzinfo=JST))  # a Friday afternoon
    port.add(PortalSimulator)
    sim = port.sims["portal"]
    await port.inject(RESIDENT, PORTAL, "EApplication", application(at(-7)), T)
    port.clock = datetime(2026, 4, 3, 18, 31, tzinfo=JST)
    assert await sim.release_due(T) == 0
    assert [m for m in port.of_type("EApplication") if m.arrow == 35] == []
    port.clock = datetime(2026, 4, 6, 8, 30, tzinfo=JST)
    assert await sim.release_due(T) == 1
    assert len([m for m in port.of_type("EApplication") if m.arrow == 35]) == 1
    assert sim.snapshot(T)["applications"]["EA-1"]["due"] == "2026-04-06T08:30:00+09:00"
