"""Our own numbers for a load run: exact-percentile histograms from the intended send time, drops, thresholds.

Why not Locust's statistics: they round percentiles to two significant digits and, in a closed model, measure
from the actual send. Every Locust process writes one line per action (``results-N.jsonl``: index, function,
intended, started, done, status, error — seconds from that process's start — and the messages its route
required); here they are merged into HdrHistograms (3 significant digits, microseconds) per function and per
second of the run.

API::

    Stats.from_results(folder) -> Stats
      totals() / by_function / percentiles(fn=None) / series(width=1.0) / capacity(limit=1.0) / to_json()
    parse_threshold("p95<1s" | "move_in:p99<=500ms" | "dropped<1%" | "errors<0.5%" | "late<5%") -> Threshold
      Threshold.evaluate(stats) -> (passed, measured)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from conformance.errors import fail

STATUSES = ("ok", "late", "error", "dropped", "unsent")
CAPACITY_P95_S = 1.0  # a window of the run "held" when its cascades' p95 stayed within this many seconds
PCTS = (50.0, 95.0, 99.0)


def _rank(ordered: list[float], pct: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(pct / 100.0 * len(ordered)) - 1))]


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 3_600_000_000, 3)  # 1 µs .. 1 h


@dataclass
class Row:
    index: int
    function: str
    intended: float
    started: float | None
    done: float | None
    status: str
    error: str | None
    #: the messages its route required, (arrow, type, key): what the trace check looks for
    require: tuple[tuple[int, str, str], ...] = ()

    @property
    def latency(self) -> float | None:
        """Seconds from the intended start to the cascade's end (None if it never completed)."""
        if self.done is None or self.status not in ("ok", "late"):
            return None
        return max(0.0, self.done - self.intended)

    @property
    def lag(self) -> float | None:
        return None if self.started is None else max(0.0, self.started - self.intended)


@dataclass
class Stats:
    rows: list[Row] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    setup_errors: list[str] = field(default_factory=list)
    locust_rc: int | None = None
    #: wall-clock time of intended t = 0 (the earliest Locust process's), to line CPU samples up with windows
    t0_wall: float | None = None

    @classmethod
    def from_results(cls, folder: Path) -> Stats:
        starts = [float(json.loads(p.read_text(encoding="utf-8"))["t0"]) for p in folder.glob("start-*.json")]
        rows: list[Row] = []
        for path in sorted(folder.glob("results-*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    i, fn, t, s, d, st, err, *req = json.loads(line)
                    require = tuple((int(a), str(m), str(k)) for a, m, k in req[0]) if req else ()
                    rows.append(Row(int(i), str(fn), float(t), s, d, str(st), err, require))
        rows.sort(key=lambda r: r.index)
        return cls(rows=rows, t0_wall=min(starts, default=None))

    # -- totals

    def totals(self) -> dict[str, int]:
        c = Counter(r.status for r in self.rows)
        return {"actions": len(self.rows), **{s: c.get(s, 0) for s in STATUSES}}

    def by_function(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            d = out.setdefault(r.function, {s: 0 for s in STATUSES})
            d[r.status] += 1
        return dict(sorted(out.items()))

    def histogram(self, fn: str | None = None, *, lag: bool = False) -> HdrHistogram:
        h = _hist()
        for r in self.rows:
            if fn is None or r.function == fn:
                v = r.lag if lag else r.latency
                if v is not None:
                    h.record_value(max(1, int(v * 1e6)))
        return h

    def percentiles(self, fn: str | None = None, *, lag: bool = False) -> dict[str, float | None]:
        h = self.histogram(fn, lag=lag)
        if h.get_total_count() == 0:
            return {"p50": None, "p95": None, "p99": None, "max": None, "count": 0}
        out: dict[str, float | None] = {f"p{p:g}": h.get_value_at_percentile(p) / 1e6 for p in PCTS}
        out["max"] = h.get_max_value() / 1e6
        out["count"] = float(h.get_total_count())
        return out

    def series(self, width: float = 1.0) -> dict[str, Any]:
        """Per ``width``-second bucket of intended time: completions, drops/late, errors and percentiles.

        The percentiles of a bucket are exact (nearest rank over its sorted cascade times): a list of
        floats per bucket costs a few bytes a cascade, where a histogram per bucket and function cost
        ≈ 185 KB each — a gigabyte for a national day in 10-s buckets."""
        if not self.rows:
            return {"t": [], "completed": [], "dropped": [], "late": [], "errors": [], "functions": {}}
        n = int(max(r.intended for r in self.rows) // width) + 1
        comp, drop, late, errs = [0] * n, [0] * n, [0] * n, [0] * n
        times: dict[str, list[list[float] | None]] = {}
        for r in self.rows:
            b = int(r.intended // width)
            if r.status in ("ok", "late"):
                comp[b] += 1
            if r.status in ("dropped", "unsent"):
                drop[b] += 1
            if r.status == "late":
                late[b] += 1
            if r.status == "error":
                errs[b] += 1
            v = r.latency
            if v is not None:
                ts = times.setdefault(r.function, [None] * n)
                bucket = ts[b]
                if bucket is None:
                    bucket = ts[b] = []
                bucket.append(v)
        fns: dict[str, dict[str, list[float | None]]] = {}
        for fn, ts in sorted(times.items()):
            fns[fn] = {k: [] for k in ("p50", "p95", "p99", "max")}
            for vals in ts:
                if vals is not None:
                    vals.sort()
                for p in PCTS:
                    fns[fn][f"p{p:g}"].append(None if vals is None else _rank(vals, p))
                fns[fn]["max"].append(None if vals is None else vals[-1])
        return {"t": [i * width for i in range(n)], "completed": comp, "dropped": drop, "late": late,
                "errors": errs, "functions": fns}

    def capacity(self, limit: float = CAPACITY_P95_S, width: float | None = None) -> dict[str, Any]:
        """The highest rate the run held: its actions cut into windows of intended time (``width`` s; by
        default about a 24th of the run, at least 5 s, tiling it exactly so that the last window is not a
        short one read as a low rate). A window holds when the p95 of its cascades, timed from the intended
        start, is at most ``limit`` s and at most 1 % of its actions were late, dropped, unsent or failed.
        ``held_rate`` is the busiest window before the first one that did not hold; once a window fails,
        the backlog it leaves makes later ones fail at lower rates, so they say nothing of capacity.

        On a ramp (``--profile ramp``) this is the capacity search; each window lasts only ``width`` s, so
        the report asks to confirm the figure with a steady run at that rate."""
        if not self.rows:
            return {"limit_s": limit, "window_s": width, "held_rate": None, "held": None, "first_failed": None,
                    "windows": []}
        span = max(r.intended for r in self.rows)
        if width is None:  # whole windows that tile the run (its last second rounded up), none shorter
            end = max(1.0, float(math.ceil(span)))
            w = end / max(1, round(end / max(5.0, end / 24.0)))
        else:
            w = width
        n = max(1, math.ceil(span / w))
        count, behind = [0] * n, [0] * n
        times: list[list[float]] = [[] for _ in range(n)]
        for r in self.rows:
            b = min(int(r.intended // w), n - 1)  # an action at the run's very end belongs to its last window
            count[b] += 1
            v = r.latency
            if v is None or r.status == "late":
                behind[b] += 1
            if v is not None:
                times[b].append(v)
        windows: list[dict[str, Any]] = []
        held: dict[str, Any] | None = None
        failed: dict[str, Any] | None = None
        for b in range(n):
            if not count[b]:
                continue
            vals = sorted(times[b])
            p95 = _rank(vals, 95.0) if vals else None
            ok = p95 is not None and p95 <= limit and behind[b] <= 0.01 * count[b]
            win = {"t": round(b * w, 3), "rate": round(count[b] / w, 2), "actions": count[b],
                   "p95": None if p95 is None else round(p95, 6), "behind": behind[b], "held": ok,
                   **self._cpu_during(b * w, w)}
            windows.append(win)
            if failed is None:
                if not ok:
                    failed = win
                elif held is None or win["rate"] >= held["rate"]:
                    held = win
        return {"limit_s": limit, "window_s": round(w, 3), "held_rate": None if held is None else held["rate"],
                "held": held, "first_failed": failed, "windows": windows}

    def _cpu_during(self, t: float, width: float) -> dict[str, float | None]:
        """The median CPU (% of one core) of the gateway and SUT processes over intended seconds [t, t+width):
        the 1-s samples taken in that span of wall-clock time (each covers the second before it)."""
        out: dict[str, float | None] = {"gateway_cpu": None, "sut_cpu": None}
        if self.t0_wall is None:
            return out
        lo, hi = self.t0_wall + t + 0.5, self.t0_wall + t + width + 0.5
        inside = [c for c in self.cpu if "wall" in c and lo < c["wall"] <= hi]
        for key in out:
            vals = sorted(float(c[key]) for c in inside if key in c)
            out[key] = round(vals[(len(vals) - 1) // 2], 1) if vals else None
        return out

    def errors(self, limit: int = 20) -> list[dict[str, Any]]:
        c = Counter((r.function, r.error) for r in self.rows if r.status == "error")
        return [{"function": fn, "error": e, "count": n} for (fn, e), n in c.most_common(limit)]

    def to_json(self) -> dict[str, Any]:
        return {"totals": self.totals(), "by_function": self.by_function(),
                "latency": {"all": self.percentiles(), **{fn: self.percentiles(fn) for fn in self.by_function()}},
                "send_lag": self.percentiles(lag=True), "capacity": self.capacity(), "errors": self.errors(),
                "skipped": self.skipped,
                "setup_errors": self.setup_errors[:20], "locust_exit": self.locust_rc}


_TH = re.compile(r"^\s*(?:(?P<fn>[a-z_]+):)?(?P<metric>p\d+(?:\.\d+)?|max|dropped|late|errors)\s*"
                 r"(?P<op><=|<)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%)?\s*$")


@dataclass(frozen=True)
class Threshold:
    text: str
    function: str | None
    metric: str
    op: str
    value: float  # seconds for latencies, a fraction for rates

    def evaluate(self, stats: Stats) -> tuple[bool, float]:
        """(passed, measured); a latency threshold with no completed cascade fails (nothing held)."""
        if self.metric in ("dropped", "late", "errors"):
            rows = [r for r in stats.rows if self.function is None or r.function == self.function]
            key = {"dropped": ("dropped", "unsent"), "late": ("late",), "errors": ("error",)}[self.metric]
            measured = sum(r.status in key for r in rows) / len(rows) if rows else 0.0
        else:
            p = stats.percentiles(self.function)
            got = p["max"] if self.metric == "max" else p.get(self.metric)
            if got is None:
                h = stats.histogram(self.function)
                if h.get_total_count() == 0:
                    return False, float("nan")
                got = h.get_value_at_percentile(float(self.metric[1:])) / 1e6
            measured = float(got)
        ok = measured <= self.value if self.op == "<=" else measured < self.value
        return ok, measured

    def describe(self, measured: float) -> str:
        if self.metric in ("dropped", "late", "errors"):
            return f"{self.text}: measured {measured * 100:.2f}%"
        return f"{self.text}: measured {measured * 1000:.1f} ms"


def parse_threshold(text: str) -> Threshold:
    m = _TH.match(text)
    if m is None:
        raise fail("LOAD-THRESHOLD", f"bad threshold {text!r}: use e.g. 'p95<1s', 'move_in:p99<=800ms', "
                                     "'max<5s', 'dropped<1%', 'errors<0.5%'")
    metric, unit, value = m["metric"], m["unit"], float(m["value"])
    if metric in ("dropped", "late", "errors"):
        value = value / 100.0 if unit == "%" else value
    else:
        if unit == "%":
            raise fail("LOAD-THRESHOLD", f"{text!r}: a latency takes ms or s, not %")
        value = value / 1000.0 if unit == "ms" else value
    return Threshold(text.strip(), m["fn"], metric, m["op"], value)
