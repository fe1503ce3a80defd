"""Virtual clocks, the per-tenant registry and its log, and the operating calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest

from conformance.errors import HarnessError
from simulators.clock import (
    DEFAULT_START,
    JST,
    ClockRegistry,
    OperatingCalendar,
    OperatingHours,
    VirtualClock,
)


class FakeMonotonic:
    """A hand-driven monotonic time source, so 'real speed' is tested without sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def mono() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def cal() -> OperatingCalendar:
    return OperatingCalendar()


def jst(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=JST)


# --------------------------------------------------------------------------------------------- clock

def test_default_start_is_documented_monday_in_jst() -> None:
    assert jst(2026, 3, 30, 10, 0) == DEFAULT_START
    assert DEFAULT_START.weekday() == 0
    clock = VirtualClock()
    assert not clock.frozen
    assert clock.now().tzinfo == JST
    assert timedelta(0) <= clock.now() - DEFAULT_START < timedelta(seconds=5)


def test_running_clock_moves_at_real_speed(mono: FakeMonotonic) -> None:
    clock = VirtualClock(monotonic=mono)
    mono.t += 90
    assert clock.now() == DEFAULT_START + timedelta(seconds=90)


def test_frozen_clock_stands_still_until_unfrozen(mono: FakeMonotonic) -> None:
    clock = VirtualClock(frozen=True, monotonic=mono)
    mono.t += 3600
    assert clock.now() == DEFAULT_START
    clock.unfreeze()
    mono.t += 5
    assert clock.now() == DEFAULT_START + timedelta(seconds=5)
    clock.freeze()
    mono.t += 100
    assert clock.now() == DEFAULT_START + timedelta(seconds=5)


def test_set_and_advance(mono: FakeMonotonic) -> None:
    clock = VirtualClock(monotonic=mono)
    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # 09:00 JST
    assert clock.now() == jst(2026, 4, 1, 9, 0)
    assert clock.now().utcoffset() == timedelta(hours=9)
    mono.t += 10
    clock.advance(timedelta(days=14))
    assert clock.now() == jst(2026, 4, 15, 9, 0, 10)
    assert clock.today() == date(2026, 4, 15)
    clock.set(jst(2026, 3, 1))  # back in time is allowed through set
    assert clock.now() == jst(2026, 3, 1)


@pytest.mark.parametrize("call,code", [
    (lambda c: c.set(datetime(2026, 4, 1, 9, 0)), "GW-CLOCK-NAIVE"),
    (lambda c: c.advance(timedelta(seconds=-1)), "GW-CLOCK-VALUE"),
])
def test_clock_refuses_bad_input(call: Any, code: str) -> None:
    with pytest.raises(HarnessError) as err:
        call(VirtualClock())
    assert err.value.findings[0].code == code


def test_registry_per_tenant_clocks_and_log(mono: FakeMonotonic) -> None:
    reg = ClockRegistry(jst(2026, 3, 30, 10), frozen=True, monotonic=mono)
    g = reg.get()
    assert reg.get(None) is g
    g.set(jst(2026, 4, 1, 9), reason="global start")
    a = reg.get("tA")
    assert reg.get("tA") is a
    assert a.now() == jst(2026, 4, 1, 9) and a.frozen  # inherits the global time and state
    a.advance(timedelta(days=15), reason="special moving-in deadline")
    assert reg.get("tB").now() == jst(2026, 4, 1, 9)  # other tenants are not moved
    assert g.now() == jst(2026, 4, 1, 9)
    a.unfreeze("run")
    log = reg.log
    assert [(c.tenant, c.kind, c.reason) for c in log] == [
        (None, "set", "global start"), ("tA", "advance", "special moving-in deadline"),
        ("tA", "unfreeze", "run")]
    assert (log[1].from_, log[1].to) == (jst(2026, 4, 1, 9), jst(2026, 4, 16, 9))
    assert log[1].to_json()["to"] == "2026-04-16T09:00:00+09:00"
    reg.drop("tA")
    assert reg.get("tA") is not a
    assert len(reg.log) == 3


# ------------------------------------------------------------------------------------------ calendar

@pytest.mark.parametrize("d,expected", [
    (date(2026, 3, 30), True),    # Monday
    (date(2026, 3, 28), False),   # Saturday
    (date(2026, 3, 29), False),   # Sunday
    (date(2026, 3, 20), False),   # 春分の日
    (date(2026, 5, 6), False),    # 振替休日
    (date(2026, 5, 7), True),
    (date(2026, 12, 28), True),
    (date(2026, 12, 29), False),  # year-end closure, a Tuesday
    (date(2027, 1, 1), False),
    (date(2027, 1, 4), True),
])
def test_is_business_day(cal: OperatingCalendar, d: date, expected: bool) -> None:
    assert cal.is_business_day(d) is expected


@pytest.mark.parametrize("dt,juki,counter,kiosk", [
    (jst(2026, 3, 30, 8, 29), False, False, True),
    (jst(2026, 3, 30, 8, 30), False, True, True),
    (jst(2026, 3, 30, 9, 0), True, True, True),
    (jst(2026, 3, 30, 16, 59, 59), True, True, True),
    (jst(2026, 3, 30, 17, 0), False, True, True),
    (jst(2026, 3, 30, 17, 15), False, False, True),
    (jst(2026, 3, 30, 6, 29), False, False, False),
    (jst(2026, 3, 30, 6, 30), False, False, True),
    (jst(2026, 3, 30, 22, 59, 59), False, False, True),
    (jst(2026, 3, 30, 23, 0), False, False, False),
    (jst(2026, 3, 28, 10, 0), False, False, True),    # Saturday: kiosks open
    (jst(2026, 5, 5, 10, 0), False, False, True),     # こどもの日: kiosks open
    (jst(2026, 12, 30, 10, 0), False, False, False),  # year-end closure: everything closed
    (jst(2027, 1, 3, 12, 0), False, False, False),
    (datetime(2026, 3, 30, 0, 0, tzinfo=UTC), True, True, True),  # 09:00 JST
    (datetime(2026, 3, 30, 8, 0, tzinfo=UTC), False, True, True),  # 17:00 JST: counters until 17:15
])
def test_opening_hours(cal: OperatingCalendar, dt: datetime, juki: bool, counter: bool, kiosk: bool) -> None:
    assert (cal.juki_net_open(dt), cal.counter_open(dt), cal.kiosk_open(dt)) == (juki, counter, kiosk)


def test_maintenance_windows_close_only_their_actors(cal: OperatingCalendar) -> None:
    cal.add_maintenance(jst(2026, 3, 30, 12), jst(2026, 3, 30, 13), ["national"])
    cal.add_maintenance_day(date(2026, 4, 5), ["kiosk"])
    assert not cal.juki_net_open(jst(2026, 3, 30, 12, 30))
    assert cal.juki_net_open(jst(2026, 3, 30, 13, 0))  # half-open window
    assert cal.counter_open(jst(2026, 3, 30, 12, 30))
    assert cal.kiosk_open(jst(2026, 3, 30, 12, 30))
    assert cal.in_maintenance(jst(2026, 3, 30, 12), "national")
    assert not cal.in_maintenance(jst(2026, 3, 30, 12), "cs")
    assert not cal.kiosk_open(jst(2026, 4, 5, 10))
    assert cal.kiosk_open(jst(2026, 4, 6, 10))


def test_maintenance_for_all_actors(cal: OperatingCalendar) -> None:
    cal.add_maintenance(jst(2026, 3, 31, 0), jst(2026, 4, 1, 0))
    t = jst(2026, 3, 31, 10)
    assert not (cal.juki_net_open(t) or cal.counter_open(t) or cal.kiosk_open(t))
    assert cal.in_maintenance(t, "immigration")


@pytest.mark.parametrize("start,end", [
    (jst(2026, 3, 30, 13), jst(2026, 3, 30, 12)),
    (datetime(2026, 3, 30, 12), jst(2026, 3, 30, 13)),
])
def test_bad_maintenance_is_refused(cal: OperatingCalendar, start: datetime, end: datetime) -> None:
    with pytest.raises(HarnessError):
        cal.add_maintenance(start, end, ["cs"])
    assert cal.maintenance == []


@pytest.mark.parametrize("d,n,expected", [
    (date(2026, 3, 27), 1, date(2026, 3, 30)),   # Friday -> Monday
    (date(2026, 3, 19), 1, date(2026, 3, 23)),   # over 春分の日 and a weekend
    (date(2026, 5, 1), 1, date(2026, 5, 7)),     # over Golden Week
    (date(2026, 12, 28), 1, date(2027, 1, 4)),   # over the year-end closure
    (date(2026, 3, 30), 5, date(2026, 4, 6)),
    (date(2026, 3, 30), -1, date(2026, 3, 27)),
    (date(2026, 3, 28), 0, date(2026, 3, 28)),
])
def test_add_business_days(cal: OperatingCalendar, d: date, n: int, expected: date) -> None:
    assert cal.add_business_days(d, n) == expected


def test_hours_from_config() -> None:
    hours = OperatingHours.from_config({"juki_net": "08:30-18:00", "year_end_closure": ["12-31", "01-02"]})
    assert hours.juki_net == (dtime(8, 30), dtime(18, 0))
    assert hours.counter == OperatingHours().counter
    cal = OperatingCalendar(hours)
    assert cal.juki_net_open(jst(2026, 3, 30, 17, 30))
    assert cal.is_business_day(date(2026, 12, 29))
    assert not cal.is_business_day(date(2027, 1, 1))  # 元日 is a public holiday anyway
    assert not cal.kiosk_open(jst(2026, 12, 31, 10))


@pytest.mark.parametrize("config", [
    {"juki_net": "17:00-09:00"}, {"counter": "8.30-17"}, {"kiosk": ["06:30"]}, {"lunch": "12:00-13:00"},
    {"year_end_closure": ["13-01", "01-03"]}, {"year_end_closure": ["12-29"]},
])
def test_bad_hours_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(HarnessError) as err:
        OperatingHours.from_config(config)
    assert err.value.findings[0].code == "GW-CLOCK-VALUE"
