"""The moving-season load model: a date and a scale → arrival rates per function per minute → a seeded schedule.

Why a model and not a fixed rate: a municipality's peak is shaped (March/April, 20 Mar – 10 Apr, 11:00–14:00
at the counter, 6:30–23:00 at the kiosk), and what breaks a system is that shape. The figures live in
``load/data/volumes.yaml`` with their sources; this module only does arithmetic on them.

API::

    Scale.parse("municipality:68000" | "prefecture:13" | "national") -> Scale
    LoadModel.default() / LoadModel(figures)
      day_totals(scale, day) -> dict[function, float]      expected notifications/requests that day
      rates(scale, day) -> dict[function, list[float]]     1440 per-minute rates; each sums to its day total
      schedule(scale, day, seed, profile="peak-day", rate=None, duration=None) -> list[Action]
    rate_summary(model, scale, day) / replay_summary(model, scale, day, compress)   for ``load --plan``
    Action(t, function, seed, index)                      t = intended seconds from the schedule's start

The schedule is stratified: the count in each minute is the rounded cumulative expectation (so a day's total
is exactly ``round(total)``), and the times inside a minute are drawn from ``random.Random(seed)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import HarnessError, fail

DATA = Path(__file__).parent / "data" / "volumes.yaml"
MINUTES = 1440

#: function → (role, hours) : role is the real-world actor that starts it (a user class in the locustfile)
FUNCTIONS: dict[str, tuple[str, str]] = {
    "move_in": ("counter_staff", "counter"),          # 転入 with a paper 転出証明書
    "special_move_in": ("counter_staff", "counter"),  # 特例転入 with the card
    "move_out": ("counter_staff", "counter"),         # 転出
    "tenkyo": ("counter_staff", "counter"),           # 転居
    "copy": ("counter_staff", "counter"),             # 住民票の写し
    "card_issue": ("cs_terminal", "counter"),         # カード交付 (CS terminal)
    "identity_query": ("cs_terminal", "counter"),     # 本人確認情報照会 (CS terminal)
    "e_application": ("portal", "counter"),           # online 転出届, processed at the counter
    "peer_moveout_cert": ("peer", "counter"),         # 転出証明書情報 request from a peer
    "wide_area_copy": ("peer", "counter"),            # 広域交付住民票 request from a peer
    "kiosk": ("kiosk", "kiosk"),                      # コンビニ交付
}
PROFILES = ("peak-day", "season", "steady", "ramp")


def _err(code: str, message: str) -> HarnessError:
    return fail(code, message, file="load/model.py")


@dataclass(frozen=True, slots=True)
class Scale:
    """How much of the country the SUT serves: a population share."""

    kind: str
    population: int
    share: float

    @classmethod
    def parse(cls, text: str, figures: Mapping[str, Any] | None = None) -> Scale:
        pop = (figures or LoadModel.default().figures)["population"]
        national = int(pop["national"])
        kind, _, arg = text.strip().partition(":")
        try:
            if kind == "national" and not arg:
                return cls("national", national, 1.0)
            if kind == "municipality":
                n = int(arg)
                if n <= 0 or n > national:
                    raise ValueError(arg)
                return cls(f"municipality:{n}", n, n / national)
            if kind == "prefecture":
                n = int(pop["prefectures"][int(arg)])
                return cls(f"prefecture:{int(arg):02d}", n, n / national)
        except (ValueError, KeyError):
            pass
        raise _err("LOAD-SCALE", f"bad scale {text!r}: use municipality:POP, prefecture:NN (01–47) or national")


@dataclass(frozen=True, slots=True)
class Action:
    """One user action (one cascade): when it is meant to start and what it is."""

    t: float          # intended start, seconds from the schedule's start (before compression)
    function: str
    seed: int         # this action's own seed (its residents, its ids)
    index: int        # position in the schedule (stable, used to split it over workers)

    def to_json(self) -> list[Any]:
        return [round(self.t, 6), self.function, self.seed, self.index]


def _hm(text: str) -> int:
    h, m = str(text).split(":")
    return int(h) * 60 + int(m)


class LoadModel:
    """Arithmetic over the figures of ``volumes.yaml``."""

    _default: LoadModel | None = None

    def __init__(self, figures: Mapping[str, Any]) -> None:
        self.figures = figures
        self.curves = {name: self._curve(name) for name in ("counter", "kiosk")}

    @classmethod
    def default(cls) -> LoadModel:
        if cls._default is None:
            cls._default = cls(yaml.safe_load(DATA.read_text(encoding="utf-8")))
        return cls._default

    # -- shape of a day

    def _curve(self, name: str) -> list[float]:
        """Per-minute weights, normalised to sum 1 over the opening hours."""
        hours = self.figures["hours"]
        lo, hi = _hm(hours[name]["open"]), _hm(hours[name]["close"])
        weights = {int(k): float(v) for k, v in hours[f"{name}_curve"].items()}
        w = [weights.get(m // 60, 0.0) if lo <= m < hi else 0.0 for m in range(MINUTES)]
        total = sum(w)
        return [x / total for x in w]

    def opening(self, hours: str) -> tuple[int, int]:
        h = self.figures["hours"][hours]
        return _hm(h["open"]), _hm(h["close"])

    def move_factor(self, day: date) -> float:
        """How many ordinary days' moves this day holds (4–5 at the peak)."""
        p = self.figures["moves"]["peak"]

        def md(s: str) -> date:
            m, d = s.split("-")
            return date(day.year, int(m), int(d))

        start, end = md(p["start"]), md(p["end"])
        top0, top1 = md(p["top"][0]), md(p["top"][1])
        edge, top = float(p["edge_factor"]), float(p["top_factor"])
        if start <= day < top0:
            return edge + (top - edge) * (day - start).days / max(1, (top0 - start).days)
        if top0 <= day <= top1:
            return top
        if top1 < day <= end:
            return top - (top - edge) * (day - top1).days / max(1, (end - top1).days)
        if day.month in (3, 4):
            return 1.5  # assumption: the rest of March/April (docs/load.md)
        return 1.0

    def in_season(self, day: date) -> bool:
        p = self.figures["moves"]["peak"]
        m0, d0 = (int(x) for x in p["start"].split("-"))
        m1, d1 = (int(x) for x in p["end"].split("-"))
        return date(day.year, m0, d0) <= day <= date(day.year, m1, d1)

    # -- totals and rates

    def day_totals(self, scale: Scale, day: date) -> dict[str, float]:
        """Expected count of each function on ``day`` for ``scale`` (counters closed on weekends)."""
        mv, sv = self.figures["moves"], self.figures["services"]
        counter_open = day.weekday() < 5
        ordinary_share = (1.0 - float(mv["march_share"]) - float(mv["april_share"])) / 10.0
        ordinary_day = float(mv["between_per_year"]) * ordinary_share / float(mv["business_days_per_month"])
        moves = ordinary_day * self.move_factor(day) * scale.share / float(mv["persons_per_notification"])
        special = float(mv["special_move_in_share"])
        online = float(mv["online_move_out_share"])
        season = float(sv["season_factor_services"]) if self.in_season(day) else 1.0
        counter_days = 12 * float(mv["business_days_per_month"])
        copies = float(sv["kiosk_per_year"]) * float(sv["copies_per_kiosk"]) / counter_days * scale.share * season
        out = {
            "move_in": moves * (1 - special),
            "special_move_in": moves * special,
            "move_out": moves * (1 - online),
            "e_application": moves * online,
            "tenkyo": moves * float(mv["within_ratio"]),
            "peer_moveout_cert": moves * special,
            "copy": copies,
            "wide_area_copy": copies * float(sv["wide_area_per_copy"]),
            "card_issue": float(sv["card_applications_per_day"]) * float(sv["card_issue_share"]) * scale.share,
            "identity_query": float(sv["identity_queries_per_year"]) * float(sv["identity_query_share"])
            / counter_days * scale.share,
            "kiosk": float(sv["kiosk_per_year"]) / float(sv["kiosk_days_per_year"]) * scale.share * season,
        }
        if not counter_open:
            out = {k: (v if FUNCTIONS[k][1] == "kiosk" else 0.0) for k, v in out.items()}
        return out

    def rates(self, scale: Scale, day: date) -> dict[str, list[float]]:
        """Arrivals per minute (index = minute of the day, JST) for each function."""
        totals = self.day_totals(scale, day)
        return {fn: [tot * w for w in self.curves[FUNCTIONS[fn][1]]] for fn, tot in totals.items()}

    # -- schedules

    def schedule(self, scale: Scale, day: date, seed: int, profile: str = "peak-day",
                 rate: float | None = None, duration: float | None = None) -> list[Action]:
        """The seeded list of actions, sorted by intended time (seconds from the schedule's start).

        peak-day: ``day`` from the earliest opening (06:30). season: every day from the season's start to its end
        (in ``day``'s year), one after the other (86 400 s apart). steady: ``rate`` actions/s for ``duration`` s
        with the mix of ``day``. ramp: the same mix at a rate rising evenly from 0 to ``rate`` actions/s over
        ``duration`` s (a capacity search: the report names the highest rate that still held).
        """
        rng = random.Random(seed)
        raw: list[tuple[float, str]] = []
        if profile == "peak-day":
            raw = self._day_arrivals(scale, day, rng, offset=0.0)
            t0 = min(self.opening(h)[0] for h in ("counter", "kiosk")) * 60.0
            raw = [(t - t0, fn) for t, fn in raw]
        elif profile == "season":
            p = self.figures["moves"]["peak"]
            m0, d0 = (int(x) for x in p["start"].split("-"))
            m1, d1 = (int(x) for x in p["end"].split("-"))
            d, end, i = date(day.year, m0, d0), date(day.year, m1, d1), 0
            t0 = min(self.opening(h)[0] for h in ("counter", "kiosk")) * 60.0
            while d <= end:
                raw += [(t - t0, fn) for t, fn in self._day_arrivals(scale, d, rng, offset=i * 86400.0)]
                d, i = d + timedelta(days=1), i + 1
        elif profile in ("steady", "ramp"):
            if not rate or rate <= 0 or not duration or duration <= 0:
                raise _err("LOAD-STEADY", f"the {profile} profile needs --rate R (> 0, actions/s) and --duration")
            raw = self._steady(scale, day, rng, rate, duration, ramp=profile == "ramp")
        else:
            raise _err("LOAD-PROFILE", f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
        raw.sort(key=lambda x: (x[0], x[1]))
        return [Action(t, fn, rng.getrandbits(31), i) for i, (t, fn) in enumerate(raw)]

    def _day_arrivals(self, scale: Scale, day: date, rng: random.Random, offset: float
                      ) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for fn, per_minute in sorted(self.rates(scale, day).items()):
            out += [(offset + t, fn) for t in _stratified(per_minute, 60.0, rng)]
        return out

    def _steady(self, scale: Scale, day: date, rng: random.Random, rate: float, duration: float,
                ramp: bool = False) -> list[tuple[float, str]]:
        """``rate`` actions/s in ``day``'s mix; with ``ramp``, second i runs at rate × (i + ½) / duration."""
        totals = self.day_totals(scale, day)
        if sum(totals.values()) <= 0:
            totals = self.day_totals(scale, _weekday(day))
        whole = sum(totals.values())
        seconds = math.ceil(duration)
        level = [min(1.0, (i + 0.5) / duration) if ramp else 1.0 for i in range(seconds)]
        out: list[tuple[float, str]] = []
        for fn, tot in sorted(totals.items()):
            per_second = [rate * x * tot / whole for x in level]
            out += [(t, fn) for t in _stratified(per_second, 1.0, rng) if t < duration]
        return out


def _weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _stratified(per_slot: Sequence[float], width: float, rng: random.Random) -> list[float]:
    """Arrival times: slot i holds round(cum[i+1]) − round(cum[i]) arrivals, uniformly placed inside it."""
    out: list[float] = []
    cum, prev = 0.0, 0
    for i, r in enumerate(per_slot):
        cum += r
        n = math.floor(cum + 0.5)
        for _ in range(n - prev):
            out.append((i + rng.random()) * width)
        prev = n
    return out


def rate_summary(model: LoadModel, scale: Scale, day: date) -> dict[str, Any]:
    """Totals and the busiest minute's rate per function (for ``load --plan`` and the report)."""
    rates = model.rates(scale, day)
    return {fn: {"total": round(sum(r), 3), "peak_per_minute": round(max(r), 4),
                 "role": FUNCTIONS[fn][0]} for fn, r in sorted(rates.items())}


def replay_summary(model: LoadModel, scale: Scale, day: date, compress: float) -> dict[str, float]:
    """What replaying ``day`` at ``compress`` asks of the harness and the SUT: how long it takes and the busiest
    minute's rate, to hold against the capacity a ramp finds (``--profile ramp``) before a long run."""
    per_minute = [sum(col) for col in zip(*model.rates(scale, day).values(), strict=True)]
    busy = [m for m, r in enumerate(per_minute) if r > 0]
    minutes = (busy[-1] - busy[0] + 1) if busy else 0
    return {"compress": compress, "minutes_of_the_day": minutes,
            "run_seconds": round(minutes * 60.0 / compress, 1),
            "busiest_minute_actions": round(max(per_minute, default=0.0), 1),
            "busiest_actions_per_s": round(max(per_minute, default=0.0) / 60.0 * compress, 1)}
