"""Virtual time: one clock per tenant, and the operating calendar of Juki-Net, counters and kiosks.

Why: deadlines (14 days after moving in, 30 days after the planned move-out, next business day for
out-of-hours applications), operating hours and maintenance must be testable in seconds, so nothing in the
simulators reads the wall clock; they read the tenant's ``VirtualClock``. Every set/advance is logged with a
reason so the evidence bundle shows how virtual time moved.

API::

    JST, DEFAULT_START          Asia/Tokyo; 2026-03-30 (Monday, moving season) 10:00 JST, running
    VirtualClock(start=DEFAULT_START, *, frozen=False, tenant=None, on_change=None, monotonic=time.monotonic)
      now() -> aware datetime in JST     frozen: stands still; running: moves at real speed from the set point
      today() -> date;  frozen -> bool
      set(dt, reason="");  advance(timedelta, reason="");  freeze(reason="");  unfreeze(reason="")
    ClockChange(tenant, kind, from_, to, reason, recorded_at).to_json()    one log entry
    ClockRegistry(start=DEFAULT_START, *, frozen=False)
      get(tenant=None) -> VirtualClock   None = the global clock; a tenant's clock is created on first use
                                         at the global clock's current time and frozen state
      drop(tenant);  log -> list[ClockChange] (every set/advance/freeze/unfreeze, in order)
    OperatingHours(juki_net=(09:00, 17:00), counter=(08:30, 17:15), kiosk=(06:30, 23:00),
                   year_end=((12, 29), (1, 3)));  OperatingHours.from_config(mapping)
    OperatingCalendar(hours=OperatingHours())
      add_maintenance(start, end, actors=None) / add_maintenance_day(date, actors=None) -> Maintenance
      in_maintenance(dt, actor) -> bool
      is_year_end_closure(d)
      is_business_day(d)  weekday, not a public holiday (jpholiday), not 12/29–1/3
      juki_net_open(dt)   business day, 9:00–17:00 JST, no maintenance on cs / pref / national
      counter_open(dt)    business day, 8:30–17:15 JST, no maintenance on counter / juki
      kiosk_open(dt)      every day but 12/29–1/3, 6:30–23:00 JST,
                          no maintenance on kiosk / centre / certserver
      add_business_days(d, n) -> date   n > 0 forward, n < 0 back, 0 = d itself

Hours are half-open: open <= time < close. Hours and the year-end closure come from DOMAIN.md (public
sources); maintenance windows are data, half-open [start, end), and apply to the listed actor ids of the
catalogue (None = every actor). Datetimes must be timezone-aware (GW-CLOCK-NAIVE otherwise); other bad
input raises HarnessError GW-CLOCK-VALUE.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jpholiday

from conformance.errors import fail

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_START = datetime(2026, 3, 30, 10, 0, tzinfo=JST)

JUKI_NET_ACTORS: frozenset[str] = frozenset({"cs", "pref", "national"})
COUNTER_ACTORS: frozenset[str] = frozenset({"counter", "juki"})
KIOSK_ACTORS: frozenset[str] = frozenset({"kiosk", "centre", "certserver"})

ChangeKind = Literal["set", "advance", "freeze", "unfreeze"]


def _aware(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise fail("GW-CLOCK-VALUE", f"{what} must be a datetime, not {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise fail("GW-CLOCK-NAIVE", f"{what} {dt.isoformat()} has no time zone (use JST or UTC)")
    return dt.astimezone(JST)


@dataclass(frozen=True, slots=True)
class ClockChange:
    """One movement of a virtual clock, for the evidence bundle."""

    tenant: str | None
    kind: ChangeKind
    from_: datetime
    to: datetime
    reason: str
    recorded_at: datetime  # wall clock, UTC

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "kind": self.kind, "from": self.from_.isoformat(),
                "to": self.to.isoformat(), "reason": self.reason, "recorded_at": self.recorded_at.isoformat()}


class VirtualClock:
    """A tenant's clock. State is one tuple replaced atomically, so reading from another thread is safe."""

    def __init__(self, start: datetime = DEFAULT_START, *, frozen: bool = False, tenant: str | None = None,
                 on_change: Callable[[ClockChange], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.tenant = tenant
        self._on_change = on_change
        self._mono = monotonic
        # (virtual time at the anchor, monotonic seconds at the anchor, frozen)
        self._state: tuple[datetime, float, bool] = (_aware(start, "start"), monotonic(), frozen)

    def now(self) -> datetime:
        anchor, mono, frozen = self._state
        if frozen:
            return anchor
        return anchor + timedelta(seconds=self._mono() - mono)

    def today(self) -> date:
        return self.now().date()

    @property
    def frozen(self) -> bool:
        return self._state[2]

    def _move(self, kind: ChangeKind, to: datetime, frozen: bool, reason: str) -> None:
        before = self.now()
        self._state = (to, self._mono(), frozen)
        if self._on_change is not None:
            self._on_change(ClockChange(self.tenant, kind, before, to, reason, datetime.now(UTC)))

    def set(self, dt: datetime, reason: str = "") -> None:
        """Jump to ``dt`` (forward or back); a running clock keeps running from there."""
        self._move("set", _aware(dt, "set"), self.frozen, reason)

    def advance(self, delta: timedelta, reason: str = "") -> None:
        """Move forward by ``delta`` (never back: use ``set`` for that, so the log says so)."""
        if delta < timedelta(0):
            raise fail("GW-CLOCK-VALUE", f"advance by {delta} is negative; use set() to go back in time")
        self._move("advance", self.now() + delta, self.frozen, reason)

    def freeze(self, reason: str = "") -> None:
        """Stop time where it is now."""
        self._move("freeze", self.now(), True, reason)

    def unfreeze(self, reason: str = "") -> None:
        """Let time run at real speed from where it stands."""
        self._move("unfreeze", self.now(), False, reason)


class ClockRegistry:
    """One clock per tenant plus the global one (tenant None), and the log of every change to any of them."""

    def __init__(self, start: datetime = DEFAULT_START, *, frozen: bool = False,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log: list[ClockChange] = []
        self._mono = monotonic
        self._global = VirtualClock(start, frozen=frozen, on_change=self._log.append, monotonic=monotonic)
        self._clocks: dict[str, VirtualClock] = {}

    def get(self, tenant: str | None = None) -> VirtualClock:
        if tenant is None:
            return self._global
        clock = self._clocks.get(tenant)
        if clock is None:
            clock = VirtualClock(self._global.now(), frozen=self._global.frozen, tenant=tenant,
                                 on_change=self._log.append, monotonic=self._mono)
            self._clocks[tenant] = clock
        return clock

    def drop(self, tenant: str) -> None:
        """Forget a finished tenant's clock (its log entries stay)."""
        self._clocks.pop(tenant, None)

    @property
    def log(self) -> list[ClockChange]:
        return list(self._log)


# ------------------------------------------------------------------------------------------- calendar

Hours = tuple[dtime, dtime]
MonthDay = tuple[int, int]


def _parse_hours(value: Any, name: str) -> Hours:
    try:
        if isinstance(value, str):
            a, b = value.split("-")
        else:
            a, b = value
        start, end = (v if isinstance(v, dtime) else dtime.fromisoformat(str(v).strip()) for v in (a, b))
    except (ValueError, TypeError):
        raise fail("GW-CLOCK-VALUE", f"hours.{name} = {value!r}: expected 'HH:MM-HH:MM'") from None
    if not start < end:
        raise fail("GW-CLOCK-VALUE", f"hours.{name} = {value!r}: opening must be before closing")
    return start, end


def _parse_month_day(value: Any) -> MonthDay:
    try:
        m, d = (int(x) for x in (value.split("-") if isinstance(value, str) else value))
        date(2000, m, d)  # a leap year, so 02-29 is allowed
    except (ValueError, TypeError, AttributeError):
        raise fail("GW-CLOCK-VALUE", f"year_end_closure entry {value!r}: expected 'MM-DD'") from None
    return m, d


@dataclass(frozen=True, slots=True)
class OperatingHours:
    """Opening hours (JST, half-open) and the year-end closure; defaults from DOMAIN.md.

    Config (all keys optional)::

        [hours]
        juki_net = "09:00-17:00"     # Juki-Net common window, weekdays
        counter = "08:30-17:15"      # municipal counters, business days
        kiosk = "06:30-23:00"        # convenience-store issuance, every day
        year_end_closure = ["12-29", "01-03"]
    """

    juki_net: Hours = (dtime(9, 0), dtime(17, 0))
    counter: Hours = (dtime(8, 30), dtime(17, 15))
    kiosk: Hours = (dtime(6, 30), dtime(23, 0))
    year_end: tuple[MonthDay, MonthDay] = ((12, 29), (1, 3))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OperatingHours:
        known = {"juki_net", "counter", "kiosk", "year_end_closure"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise fail("GW-CLOCK-VALUE", f"unknown [hours] keys {unknown}; known: {sorted(known)}")
        d = cls()
        ye = config.get("year_end_closure")
        if ye is not None and len(ye) != 2:
            raise fail("GW-CLOCK-VALUE", f"year_end_closure = {ye!r}: expected [first day, last day]")
        return cls(
            juki_net=_parse_hours(config["juki_net"], "juki_net") if "juki_net" in config else d.juki_net,
            counter=_parse_hours(config["counter"], "counter") if "counter" in config else d.counter,
            kiosk=_parse_hours(config["kiosk"], "kiosk") if "kiosk" in config else d.kiosk,
            year_end=(_parse_month_day(ye[0]), _parse_month_day(ye[1])) if ye is not None else d.year_end,
        )


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A maintenance window [start, end) for some actors (None = all)."""

    start: datetime
    end: datetime
    actors: frozenset[str] | None

    def covers(self, dt: datetime, actor: str) -> bool:
        return self.start <= dt < self.end and (self.actors is None or actor in self.actors)


@dataclass(slots=True)
class OperatingCalendar:
    """When Juki-Net, counters and kiosks are open, on a virtual clock's time."""

    hours: OperatingHours = field(default_factory=OperatingHours)
    maintenance: list[Maintenance] = field(default_factory=list)

    def add_maintenance(self, start: datetime, end: datetime, actors: Iterable[str] | None = None
                        ) -> Maintenance:
        s, e = _aware(start, "maintenance start"), _aware(end, "maintenance end")
        if not s < e:
            raise fail("GW-CLOCK-VALUE", f"maintenance window {s.isoformat()}..{e.isoformat()} is empty")
        m = Maintenance(s, e, None if actors is None else frozenset(actors))
        self.maintenance.append(m)
        return m

    def add_maintenance_day(self, day: date, actors: Iterable[str] | None = None) -> Maintenance:
        """A whole JST day (a kiosk's "maintenance day")."""
        start = datetime(day.year, day.month, day.day, tzinfo=JST)
        return self.add_maintenance(start, start + timedelta(days=1), actors)

    def in_maintenance(self, dt: datetime, actor: str) -> bool:
        t = _aware(dt, "time")
        return any(m.covers(t, actor) for m in self.maintenance)

    def _any_maintenance(self, t: datetime, actors: frozenset[str]) -> bool:
        return any(m.covers(t, a) for m in self.maintenance for a in actors)

    def is_year_end_closure(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = _aware(d, "date").date()
        key = (d.month, d.day)
        first, last = self.hours.year_end
        return first <= key <= last if first <= last else (key >= first or key <= last)

    def is_business_day(self, d: date) -> bool:
        """A weekday that is neither a public holiday (jpholiday) nor in the year-end closure."""
        if isinstance(d, datetime):
            d = _aware(d, "date").date()
        return d.weekday() < 5 and not jpholiday.is_holiday(d) and not self.is_year_end_closure(d)

    def _open(self, dt: datetime, hours: Hours, business_only: bool, actors: frozenset[str]) -> bool:
        t = _aware(dt, "time")
        d = t.date()
        day_ok = self.is_business_day(d) if business_only else not self.is_year_end_closure(d)
        return day_ok and hours[0] <= t.time() < hours[1] and not self._any_maintenance(t, actors)

    def juki_net_open(self, dt: datetime) -> bool:
        return self._open(dt, self.hours.juki_net, True, JUKI_NET_ACTORS)

    def counter_open(self, dt: datetime) -> bool:
        return self._open(dt, self.hours.counter, True, COUNTER_ACTORS)

    def kiosk_open(self, dt: datetime) -> bool:
        return self._open(dt, self.hours.kiosk, False, KIOSK_ACTORS)

    def add_business_days(self, d: date, n: int) -> date:
        """The n-th business day after d (n < 0: before); n = 0 returns d even if it is not one."""
        step = timedelta(days=1 if n > 0 else -1)
        left = abs(n)
        while left:
            d = d + step
            if self.is_business_day(d):
                left -= 1
        return d
