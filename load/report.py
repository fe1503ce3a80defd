"""The load report: one self-contained HTML file (inline SVG plots, no scripts) plus ``load-report.json``.

Why hand-drawn SVG: the report must open anywhere, offline, years later, with no JavaScript or CDN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from load.model import Scale

if TYPE_CHECKING:
    from load.runner import LoadOptions, LoadOutcome

TEMPLATES = Path(__file__).with_name("templates")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def svg_lines(xs: Sequence[float], series: dict[str, Sequence[float | None]], *, unit: str = "",
              width: int = 900, height: int = 180) -> str:
    """A line plot of named series over ``xs`` (None = gap) with axes, a y scale and a legend."""
    pad_l, pad_b, pad_t = 60, 22, 10
    vals = [v for s in series.values() for v in s if v is not None]
    peak = max(vals) if vals else 1.0
    top = peak * 1.1 if peak > 0 else 1.1
    x_max = max(xs) if xs and max(xs) > 0 else 1.0
    w, h = width - pad_l - 10, height - pad_b - pad_t

    def px(x: float) -> float:
        return pad_l + w * x / x_max

    def py(y: float) -> float:
        return pad_t + h * (1 - y / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" '
           f'font-size="11" font-family="sans-serif">',
           f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#888"/>',
           f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" stroke="#888"/>']
    for frac in (0.0, 0.5, 1.0):
        y = top / 1.1 * frac
        out.append(f'<text x="{pad_l - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}{escape(unit)}</text>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{px(x_max * frac):.1f}" y="{pad_t + h + 14}" text-anchor="middle">'
                   f'{x_max * frac:.0f}s</text>')
    for k, (name, ys) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        path, pen, dots = [], "M", []
        points = [(x, yv) for x, yv in zip(xs, ys, strict=False)]
        for j, (x, yv) in enumerate(points):
            if yv is None:
                pen = "M"
                continue
            path.append(f"{pen}{px(x):.1f},{py(yv):.1f}")
            alone = (j == 0 or points[j - 1][1] is None) and (j + 1 == len(points) or points[j + 1][1] is None)
            if alone:  # a bucket between gaps would draw no line: show it as a dot
                dots.append(f'<circle cx="{px(x):.1f}" cy="{py(yv):.1f}" r="2" fill="{colour}"/>')
            pen = "L"
        if path:
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out += dots
        out.append(f'<text x="{pad_l + 8 + 110 * k}" y="{height + 12}" fill="{colour}">■ {escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.1f} ms"


def bottleneck(outcome: LoadOutcome) -> str:
    """One sentence: was the harness (the senders) or the SUT side the bottleneck?"""
    s = outcome.stats
    tot = s.totals()
    n = max(1, tot["actions"])
    behind = (tot["late"] + tot["dropped"] + tot["unsent"]) / n
    cpu = s.cpu[1:] or s.cpu
    loc = max((r["locust_cpu"] for r in cpu), default=0.0)
    gw = max((r["gateway_cpu"] for r in cpu), default=0.0)
    p95 = s.percentiles()["p95"]
    if behind > 0.01 and loc >= 80.0:
        return (f"The harness was the bottleneck: {behind:.1%} of the actions started late or not at all while "
                f"the Locust processes used up to {loc:.0f}% CPU — add workers (--workers) before judging the SUT.")
    if behind > 0.01:
        return (f"The SUT side was the bottleneck: {behind:.1%} of the actions could not start on time because "
                f"earlier cascades were still open, while Locust used at most {loc:.0f}% CPU (the gateway process "
                f"— gateway, simulators and an in-process SUT — up to {gw:.0f}%).")
    if p95 is not None and p95 > 1.0:
        return (f"The SUT side was the bottleneck: the harness kept to the schedule ({behind:.2%} late or dropped; "
                f"Locust at most {loc:.0f}% CPU) but cascades queued (p95 {_ms(p95)}); the harness process — "
                f"gateway, simulators and an in-process SUT — used up to {gw:.0f}% CPU.")
    return (f"Neither was saturated: the harness kept to the schedule ({behind:.2%} late or dropped; Locust at most "
            f"{loc:.0f}% CPU), so the cascade times (p95 {_ms(p95)}) are the SUT's and the gateway's "
            f"(gateway process up to {gw:.0f}% CPU).")


def sample_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per sampled scenario over all its rounds."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(r["scenario"], {"scenario": r["scenario"], "runs": 0, "passed": 0, "times": [],
                                              "why": ""})
        row["runs"] += 1
        row["passed"] += r["verdict"] == "pass"
        row["times"].append(float(r["duration"]))
        if r["verdict"] != "pass" and not row["why"]:
            row["why"] = f"round {r['round']}: {r['error'] or '; '.join(r['failures'])}"
    for row in rows.values():
        t = row.pop("times")
        row["mean"], row["max"] = f"{sum(t) / len(t):.3f}", f"{max(t):.3f}"
    return list(rows.values())


def write_report(outcome: LoadOutcome, opts: LoadOptions, scale: Scale) -> dict[str, str]:
    """load-report.html and load-report.json into ``opts.out``; returns their paths (and Locust's)."""
    s = outcome.stats
    series = s.series(1.0 if (max((r.intended for r in s.rows), default=0) < 600) else 10.0)
    xs = series["t"]
    plots: list[tuple[str, str]] = [
        ("Throughput (completed cascades per bucket)", svg_lines(xs, {"completed": series["completed"]})),
        ("Dropped / late sends", svg_lines(xs, {"dropped+unsent": series["dropped"], "late": series["late"]})),
        ("Errors", svg_lines(xs, {"errors": series["errors"]})),
    ]
    for fn, p in series["functions"].items():
        ms: dict[str, Sequence[float | None]] = {
            k: [None if v is None else v * 1000 for v in vs] for k, vs in p.items()}
        plots.append((f"{fn}: p50 / p95 / p99 / max cascade time", svg_lines(xs, ms, unit=" ms")))
    if s.cpu:
        ct = [r["t"] for r in s.cpu]
        plots.append(("CPU % (gateway process; Locust processes) and delivery lane length",
                      svg_lines(ct, {"gateway": [r["gateway_cpu"] for r in s.cpu],
                                     "locust": [r["locust_cpu"] for r in s.cpu],
                                     "lanes": [r["lanes"] for r in s.cpu]})))
    by_fn = s.by_function()
    functions = []
    for fn, c in by_fn.items():
        p = s.percentiles(fn)
        functions.append((fn, {**c, **{k: _ms(p[k]) for k in ("p50", "p95", "p99", "max")}}))
    lag = s.percentiles(lag=True)
    thresholds = [{"text": t.text, "ok": ok, "measured": t.describe(m).split(": ", 1)[1]}
                  for t, ok, m in outcome.thresholds]
    trace = outcome.trace.to_json() if outcome.trace else {"ok": False, "counts": {}, "findings": []}
    ctx = {
        "profile": opts.profile, "scale": scale.kind, "day": opts.day.isoformat(), "sut": opts.sut,
        "compress": opts.compress, "seed": opts.seed, "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "workers": f"{opts.workers} Locust workers" if opts.workers else "one Locust process",
        "verdict_ok": outcome.exit_code == 0, "bottleneck": bottleneck(outcome), "totals": s.totals(),
        "skipped": s.skipped, "late_ms": opts.late_ms, "max_inflight": opts.max_inflight,
        "lag": " / ".join(_ms(lag[k]) for k in ("p50", "p95", "p99", "max")), "functions": functions,
        "thresholds": thresholds, "trace": trace, "samples": sample_rows(outcome.conformance),
        "samples_ok": outcome.conformance_ok, "plots": plots, "errors": s.errors(), "error": outcome.error,
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("report.html").render(ctx)
    out = opts.out
    (out / "load-report.html").write_text(html, encoding="utf-8")
    doc = {"profile": opts.profile, "scale": scale.kind, "day": opts.day.isoformat(), "sut": opts.sut,
           "compress": opts.compress, "seed": opts.seed, "workers": opts.workers, "exit_code": outcome.exit_code,
           "bottleneck": ctx["bottleneck"], "error": outcome.error, **s.to_json(), "thresholds": thresholds,
           "trace": trace,
           "conformance": outcome.conformance, "cpu": s.cpu}
    (out / "load-report.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1,
                                                     default=_json_default), encoding="utf-8")
    files = {"report": str(out / "load-report.html"), "json": str(out / "load-report.json")}
    for name in ("locust.html", "locust_stats.csv", "locust_failures.csv", "locust_stats_history.csv",
                 "locust.log"):
        if (out / name).exists():
            files[name] = str(out / name)
    return files


def _json_default(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)
