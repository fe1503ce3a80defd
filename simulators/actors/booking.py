"""交付予約システム: books the date, time and place a resident collects the My Number card (15, sync).

Slots: those seeded (kind ``slots``: ``slots`` = ISO datetimes or {"slot", "place"?, "capacity"?}), else the
default — business days (weekdays that are not public holidays nor 12/29–1/3), 9:00 to 16:00 on the hour
(the counter closes at 17:00), one booking per slot and place. "Now" is the request's SentAt (the tenant's
virtual clock when the gateway sent it), so the decision is a pure function of the state and the message and
replays exactly. Refused: another municipality (``BOOK-LG``), a slot in the past (``BOOK-PAST``), no such
slot (``BOOK-NO-SLOT``), a taken slot (``BOOK-TAKEN``). The same BookingRequestNo again gets the same answer;
a new booking for the same ApplicationNo moves the booking (the old slot is freed).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jpholiday
from lxml import etree

from simulators.base import Message
from simulators.toolbox import (
    E,
    SimBase,
    child,
    jdate_key,
    kana_key,
    result_el,
    seed_fields,
    stable_token,
    txt,
)

JST = ZoneInfo("Asia/Tokyo")
ANY_PLACE = "*"


def business_day(d: date) -> bool:
    if d.weekday() >= 5 or jpholiday.is_holiday(d):
        return False
    return not ((d.month == 12 and d.day >= 29) or (d.month == 1 and d.day <= 3))


def default_slot(dt: datetime) -> bool:
    local = dt.astimezone(JST)
    return (business_day(local.date()) and 9 <= local.hour < 17 and local.minute == 0
            and local.second == 0 and local.microsecond == 0)


def _aware(s: str) -> datetime:
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=JST)


def _key(dt: datetime) -> str:
    return dt.astimezone(JST).isoformat()


class BookingSimulator(SimBase, actor="booking"):
    """Card hand-over booking."""

    def new_state(self) -> dict[str, Any]:
        return {
            "slots": None,  # None = default rule; else {place: {slot (JST ISO): capacity}}
            "bookings": {},  # BookingId -> {"slot", "place", "application_no", "name_kana", "birth", ...}
            "taken": {},  # "place|slot" -> [BookingId] (active)
            "by_request": {},  # BookingRequestNo -> {"status", "code", "booking_id", "slot", "place"}
            "by_application": {},  # ApplicationNo -> BookingId (active)
        }

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        fields = seed_fields(data)
        st = self.state(tenant)
        slots = st["slots"] if st["slots"] is not None else {}
        cap = int(fields.get("capacity", 1))
        for s in fields.get("slots", []):
            if isinstance(s, dict):
                place, when, c = str(s.get("place") or ANY_PLACE), str(s["slot"]), int(s.get("capacity", cap))
            else:
                place, when, c = str(fields.get("place") or ANY_PLACE), str(s), cap
            slots.setdefault(place, {})[_key(_aware(when))] = c
        st["slots"] = slots

    def _capacity(self, st: dict[str, Any], place: str, slot: datetime) -> int:
        if st["slots"] is None:
            return 1 if default_slot(slot) else 0
        k = _key(slot)
        for p in (place, ANY_PLACE):
            c = st["slots"].get(p, {}).get(k)
            if c is not None:
                return int(c)
        return 0

    def _book(self, tenant: str | None, msg: Message) -> dict[str, Any]:
        st = self.state(tenant)
        body = msg.body
        req_no = txt(body, "BookingRequestNo") or msg.header.message_id
        done = st["by_request"].get(req_no)
        if done is not None:
            return done  # type: ignore[no-any-return]
        place = txt(body, "Place") or ""
        app = txt(body, "ApplicationNo") or ""
        try:
            slot = _aware(txt(body, "PreferredSlot") or "")
        except ValueError:
            slot = None
        now = msg.header.sent_at if msg.header.sent_at.tzinfo else msg.header.sent_at.replace(tzinfo=JST)
        current = st["by_application"].get(app)
        problem: tuple[str, str] | None = None
        if txt(body, "LgCode") != self.port.sut_lg:
            problem = ("BOOK-LG", f"この予約システムは {self.port.sut_lg} の交付のみ予約できます")
        elif slot is None:
            problem = ("BOOK-NO-SLOT", "希望日時が読めません")
        elif slot <= now:
            problem = ("BOOK-PAST", f"希望日時 {_key(slot)} は過ぎています")
        elif self._capacity(st, place, slot) <= 0:
            problem = ("BOOK-NO-SLOT", f"{_key(slot)} {place} は予約できる枠ではありません")
        else:
            taken = [b for b in st["taken"].get(f"{place}|{_key(slot)}", []) if b != current]
            if len(taken) >= self._capacity(st, place, slot):
                problem = ("BOOK-TAKEN", f"{_key(slot)} {place} は予約済みです")
        if problem is not None:
            done = {"status": "refused", "code": problem[0], "detail": problem[1], "booking_id": None,
                    "slot": None, "place": None}
            st["by_request"][req_no] = done
            return done
        assert slot is not None
        if current is not None:  # 予約変更: free the previous slot
            old = st["bookings"][current]
            old["active"] = False
            st["taken"][f"{old['place']}|{old['slot']}"] = [
                b for b in st["taken"].get(f"{old['place']}|{old['slot']}", []) if b != current]
        booking_id = "BK-" + stable_token("booking", tenant or "", req_no, n=12)
        st["bookings"][booking_id] = {"slot": _key(slot), "place": place, "application_no": app,
                                      "name_kana": kana_key(txt(body, "NameKana")),
                                      "birth": jdate_key(child(body, "BirthDate")), "active": True,
                                      "request_no": req_no}
        st["taken"].setdefault(f"{place}|{_key(slot)}", []).append(booking_id)
        st["by_application"][app] = booking_id
        done = {"status": "accepted", "code": None, "detail": None, "booking_id": booking_id,
                "slot": _key(slot), "place": place}
        st["by_request"][req_no] = done
        return done

    def apply(self, msg: Message, direction: str) -> None:
        if direction == "in" and msg.header.message_type == "CardPickupBooking":
            self._book(msg.tenant, msg)

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "CardPickupBooking":
            return None
        done = self._book(msg.tenant, msg)
        out = E.BookingConfirmation(E.BookingRequestNo(txt(msg.body, "BookingRequestNo") or "B"),
                                    result_el(done["status"], done["code"], done["detail"]))
        if done["booking_id"]:
            out.append(E.BookingId(done["booking_id"]))
            out.append(E.Slot(done["slot"]))
            out.append(E.Place(done["place"]))
            self.register(msg.tenant, done["booking_id"])
        return out
