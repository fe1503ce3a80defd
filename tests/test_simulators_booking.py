"""交付予約システム (15): default and seeded slots, conflicts, the past, rebooking."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort

from conformance.codec import jdate_el
from conformance.model import JDate
from simulators.actors.booking import BookingSimulator
from simulators.toolbox import E, txt

T = "T1"
RESIDENT = ("resident", SUT)
BOOKING = ("booking", SUT)
PLACE = "千代田区役所 1階 交付窓口"


@pytest.fixture
def port() -> FakePort:
    p = FakePort()  # virtual now: Monday 2026-03-30 10:00 JST
    p.add(BookingSimulator)
    return p


def booking(slot: str, req: str, app: str = "APP-1", lg: str = SUT, place: str = PLACE) -> etree._Element:
    return E.CardPickupBooking(E.BookingRequestNo(req), E.ApplicationNo(app), E.NameKana("ヤマダ タロウ"),
                               jdate_el("BirthDate", JDate.of(datetime(1990, 1, 2).date())), E.LgCode(lg),
                               E.PreferredSlot(slot), E.Place(place))


async def book(port: FakePort, slot: str, req: str, **kw: str) -> etree._Element:
    res = await port.inject(RESIDENT, BOOKING, "CardPickupBooking", booking(slot, req, **kw), T)
    assert res.response is not None and port.last("CardPickupBooking").arrow == 15
    return res.response.body


@pytest.mark.parametrize(("slot", "code"), [
    ("2026-03-31T10:00:00+09:00", None),
    ("2026-03-31T16:00:00+09:00", None),
    ("2026-03-31T17:00:00+09:00", "BOOK-NO-SLOT"),  # the counter closes at 17:00
    ("2026-03-31T10:30:00+09:00", "BOOK-NO-SLOT"),  # on the hour only
    ("2026-04-04T10:00:00+09:00", "BOOK-NO-SLOT"),  # Saturday
    ("2026-04-29T10:00:00+09:00", "BOOK-NO-SLOT"),  # 昭和の日
    ("2026-03-30T09:00:00+09:00", "BOOK-PAST"),
    ("2026-03-31T01:00:00Z", None),  # 10:00 JST written in UTC
])
async def test_default_slots(port: FakePort, slot: str, code: str | None) -> None:
    got = await book(port, slot, "B-1")
    assert txt(got, "Result/Code") == code
    assert txt(got, "Result/Status") == ("accepted" if code is None else "refused")
    if code is None:
        assert txt(got, "BookingId") in port.registered[T]
        assert datetime.fromisoformat(txt(got, "Slot") or "") == datetime.fromisoformat(slot)


async def test_taken_slot_same_request_and_rebooking(port: FakePort) -> None:
    slot = "2026-04-01T11:00:00+09:00"
    first = await book(port, slot, "B-1", app="APP-1")
    assert txt(await book(port, slot, "B-2", app="APP-2"), "Result/Code") == "BOOK-TAKEN"
    assert txt(await book(port, slot, "B-1", app="APP-1"), "BookingId") == txt(first, "BookingId")
    assert txt(await book(port, slot, "B-3", app="APP-2", place="別の会場"), "Result/Status") == "accepted"
    moved = await book(port, "2026-04-01T13:00:00+09:00", "B-4", app="APP-1")  # 予約変更 frees 11:00
    assert txt(moved, "Result/Status") == "accepted" and txt(moved, "BookingId") != txt(first, "BookingId")
    assert txt(await book(port, slot, "B-5", app="APP-3"), "Result/Status") == "accepted"


async def test_seeded_slots_with_capacity_and_another_municipality(port: FakePort) -> None:
    sat = "2026-04-04T10:30:00+09:00"  # not a default slot: only seeded ones count now
    port.sims["booking"].seed(T, "slots", {"slots": [sat], "capacity": 2})
    outcomes = [await book(port, sat, "B-1", app="A1"), await book(port, sat, "B-2", app="A2"),
                await book(port, sat, "B-3", app="A3"), await book(port, "2026-03-31T10:00:00+09:00", "B-4"),
                await book(port, sat, "B-5", lg="325236")]
    assert [txt(o, "Result/Code") for o in outcomes] == [None, None, "BOOK-TAKEN", "BOOK-NO-SLOT", "BOOK-LG"]


async def test_replay_restores_bookings(port: FakePort) -> None:
    await book(port, "2026-04-01T11:00:00+09:00", "B-1")
    fresh = BookingSimulator(FakePort())
    for m in port.log:
        if m.header.receiver_actor == "booking":
            fresh.apply(m, "in")
    assert fresh.snapshot(T) == port.sims["booking"].snapshot(T)
