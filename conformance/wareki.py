"""和暦 ↔ 西暦 with the era table in ``conformance/data/eras.yaml`` (a parameter, not code).

Boundary days are inclusive: where an era changed during the day (明治→大正, 大正→昭和) the day exists in both
eras and ``to_wareki`` names it in the new era; where the change was at midnight (昭和→平成, 平成→令和) the
last day of the old era and the first day of the new one are distinct, so 昭和64年1月8日 does not exist.
Dates before 明治6年 were lunar-calendar dates in the registers; they are converted as if Gregorian.
"""

from __future__ import annotations

import calendar
import itertools
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from conformance.errors import fail

__all__ = [
    "Era",
    "UncertainDate",
    "era_by_name",
    "eras",
    "from_wareki",
    "load_eras",
    "parse_uncertain",
    "to_wareki",
]

ERAS_PATH = Path(str(resources.files("conformance") / "data" / "eras.yaml"))


@dataclass(frozen=True, slots=True)
class Era:
    """One 元号: its name and its inclusive Gregorian span (``end`` None for the current era)."""

    name: str
    romaji: str
    start: date
    end: date | None

    def contains(self, d: date) -> bool:
        return self.start <= d and (self.end is None or d <= self.end)

    @property
    def last_year(self) -> int | None:
        """The last era year (平成 → 31), or None for the current era."""
        return None if self.end is None else self.end.year - self.start.year + 1


def load_eras(path: str | Path | None = None) -> tuple[Era, ...]:
    """Read an era table (oldest first) and check that it is ordered and leaves no gap."""
    p = Path(path) if path is not None else ERAS_PATH
    raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    out = tuple(
        Era(str(e["name"]), str(e.get("romaji", "")), e["start"], e.get("end")) for e in raw["eras"]
    )
    for prev, nxt in itertools.pairwise(out):
        if prev.end is None or (nxt.start - prev.end).days not in (0, 1):
            raise fail("DATE-ERAS", f"{p}: era {nxt.name} does not follow {prev.name} without gap or overlap")
    return out


@cache
def eras() -> tuple[Era, ...]:
    """The embedded era table, loaded once."""
    return load_eras()


@cache
def era_by_name() -> dict[str, Era]:
    return {e.name: e for e in eras()}


def _era_year(y: int) -> str:
    return "元" if y == 1 else str(y)


def to_wareki(d: date) -> str:
    """``date(1980, 1, 2)`` → "昭和55年1月2日" (year 1 as 元; a shared boundary day goes to the new era)."""
    for era in reversed(eras()):
        if era.start <= d:
            if era.end is not None and d > era.end:
                break
            return f"{era.name}{_era_year(d.year - era.start.year + 1)}年{d.month}月{d.day}日"
    first = eras()[0]
    raise fail("DATE-WAREKI", f"{d.isoformat()} is before {first.name} began on {first.start.isoformat()}")


_NAMES = "|".join(re.escape(e.name) for e in eras())
_WAREKI = re.compile(rf"({_NAMES})(元|[0-9]+)年([0-9]+)月([0-9]+)日")
_UNCERTAIN = re.compile(rf"({_NAMES})(元|[0-9]+)年(?:(頃|月日不詳)|([0-9]+)月(上旬|中旬|下旬|日不詳|頃))")


def _year(era: Era, ytext: str, text: str, code: str) -> int:
    """The era year of ``ytext``, checked against the era's span."""
    y = 1 if ytext == "元" else int(ytext)
    if y < 1:
        raise fail(code, f"{text}: there is no year 0 of {era.name}; the first year is 元年")
    last = era.last_year
    if last is not None and y > last:
        raise fail(code, f"{text}: {era.name} ended in {era.name}{last}年 "
                         f"(on {era.end.isoformat() if era.end else ''}); {era.name}{y}年 does not exist")
    if era.start.year + y - 1 > 9999:
        raise fail(code, f"{text}: year {y} of {era.name} is beyond the year 9999")
    return y


def from_wareki(text: str) -> date:
    """"昭和55年1月2日" → ``date(1980, 1, 2)``; a day that does not exist raises HarnessError DATE-WAREKI."""
    m = _WAREKI.fullmatch(text)
    if m is None:
        raise fail("DATE-WAREKI", f"{text!r} is not a 和暦 date like 昭和55年1月2日 (元号・年・月・日)")
    era = era_by_name()[m.group(1)]
    y = _year(era, m.group(2), text, "DATE-WAREKI")
    month, day = int(m.group(3)), int(m.group(4))
    gy = era.start.year + y - 1
    if not 1 <= month <= 12:
        raise fail("DATE-WAREKI", f"{text}: there is no month {month}")
    days = calendar.monthrange(gy, month)[1]
    if not 1 <= day <= days:
        raise fail("DATE-WAREKI", f"{text}: {gy}-{month:02d} has {days} days, so day {day} does not exist")
    d = date(gy, month, day)
    if d < era.start:
        raise fail("DATE-WAREKI", f"{text} ({d.isoformat()}) is before {era.name} began on "
                                  f"{era.start.isoformat()}; that day is {to_wareki(d)}")
    if era.end is not None and d > era.end:
        raise fail("DATE-WAREKI", f"{text} ({d.isoformat()}) is after {era.name} ended on "
                                  f"{era.end.isoformat()}; that day is {to_wareki(d)}")
    return d


_PART_DAYS = {"上旬": (1, 10), "中旬": (11, 20), "下旬": (21, 31)}


@dataclass(frozen=True, slots=True)
class UncertainDate:
    """A 不詳 date of common.xsd UncertainDateText.

    ``part`` is what is unknown or approximate: "年月日不詳", "頃" (year or month), "月日不詳", "日不詳",
    "上旬", "中旬" or "下旬". ``era``/``year`` are None only for 年月日不詳.
    """

    text: str
    era: str | None
    year: int | None
    month: int | None
    part: str

    def span(self) -> tuple[date, date] | None:
        """Earliest and latest day the text can denote (None for 年月日不詳), clipped to the era."""
        if self.era is None or self.year is None:
            return None
        era = era_by_name()[self.era]
        gy = era.start.year + self.year - 1
        if self.month is None:
            lo, hi = date(gy, 1, 1), date(gy, 12, 31)
        else:
            last = calendar.monthrange(gy, self.month)[1]
            first_day, last_day = _PART_DAYS.get(self.part, (1, last))
            lo, hi = date(gy, self.month, first_day), date(gy, self.month, min(last_day, last))
        lo = max(lo, era.start)
        if era.end is not None:
            hi = min(hi, era.end)
        return (lo, hi) if lo <= hi else None


def parse_uncertain(text: str) -> UncertainDate:
    """Parse a 不詳 date and check that its era year (month, 旬) exists, else HarnessError DATE-UNCERTAIN."""
    if text == "年月日不詳":
        return UncertainDate(text, None, None, None, "年月日不詳")
    m = _UNCERTAIN.fullmatch(text)
    if m is None:
        raise fail("DATE-UNCERTAIN", f"{text!r} is not a 不詳 date (年月日不詳, 令和2年頃, 昭和50年月日不詳, "
                                     "平成3年5月上旬|中旬|下旬|日不詳|頃)")
    era = era_by_name()[m.group(1)]
    y = _year(era, m.group(2), text, "DATE-UNCERTAIN")
    if m.group(3) is not None:
        return UncertainDate(text, era.name, y, None, m.group(3))
    month = int(m.group(4))
    if not 1 <= month <= 12:
        raise fail("DATE-UNCERTAIN", f"{text}: there is no month {month}")
    u = UncertainDate(text, era.name, y, month, m.group(5))
    if u.span() is None:
        raise fail("DATE-UNCERTAIN", f"{text}: no day of {era.name}{_era_year(y)}年{month}月"
                                     f"{'' if u.part in ('日不詳', '頃') else u.part} lies within {era.name} "
                                     f"({era.start.isoformat()} – {era.end.isoformat() if era.end else ''})")
    return u
