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


#: an event loop (the gateway process, our SUT child, a Locust process) at this share of one core has no headroom
ONE_CORE_BUSY = 85.0
LOCUST_BUSY = 80.0   # a Locust process this busy starts actions late (gevent: one core)
MACHINE_BUSY = 90.0  # % of all cores: the processes compete for the machine rather than one being the limit


def _sustained(rows: Sequence[dict[str, float]], key: str) -> float | None:
    """The 90th percentile of a CPU series (None when it was not measured): sustained, not one spike."""
    vals = sorted(r[key] for r in rows if r.get(key) is not None)
    return vals[max(0, math.ceil(0.9 * len(vals)) - 1)] if vals else None


def bottleneck(outcome: LoadOutcome) -> str:
    """One sentence: which side ran out — the harness (its Locust load generator or its gateway process), the
    SUT, the machine — or none, with the figures that say so. CPU figures are the 90th percentile of the
    1-s samples (% of one core; the machine's in % of all cores); the SUT's only when it ran as our child."""
    s = outcome.stats
    tot = s.totals()
    n = max(1, tot["actions"])
    behind = (tot["late"] + tot["dropped"] + tot["unsent"]) / n
    rows = s.cpu[1:] or s.cpu
    gw = _sustained(rows, "gateway_cpu") or 0.0
    sut = _sustained(rows, "sut_cpu")
    loc = _sustained(rows, "locust_cpu_max")
    loc = _sustained(rows, "locust_cpu") if loc is None else loc
    loc = loc or 0.0
    machine = _sustained(rows, "machine_cpu")
    lanes = max((r.get("lanes", 0.0) for r in rows), default=0.0)
    p95 = s.percentiles()["p95"]
    figures = ", ".join([f"gateway process {gw:.0f}%",
                         f"SUT process {sut:.0f}%" if sut is not None else "SUT not measured (a vendor's system)",
                         f"Locust {loc:.0f}%"]
                        + ([f"machine {machine:.0f}% of all cores"] if machine is not None else []))
    figures += " — 90th percentile of the 1-s CPU samples, % of one core"
    if behind > 0.01:
        symptom = f"{behind:.1%} of the actions started late or not at all"
    elif p95 is not None and p95 > 1.0:
        symptom = (f"the harness kept to the schedule ({behind:.2%} late or dropped) but cascades queued "
                   f"(p95 {_ms(p95)})")
    else:
        near = [f"{who} at {v:.0f}%" for who, v in (("the gateway process", gw), ("the SUT process", sut))
                if v is not None and v >= ONE_CORE_BUSY]
        kept = (f"the harness kept to the schedule ({behind:.2%} late or dropped) and the cascades took p95 "
                f"{_ms(p95)}")
        if near:  # in time, but with no headroom left: say who will give out first
            return (f"Neither held the run back, but {' and '.join(near)} of one core ran at the ceiling of one "
                    f"event loop: {kept}; a higher rate would saturate it ({figures}).")
        return f"Neither was saturated: {kept}, so these times are the SUT's and the gateway's ({figures})."
    gw_full, sut_full = gw >= ONE_CORE_BUSY, sut is not None and sut >= ONE_CORE_BUSY
    if loc >= LOCUST_BUSY:
        return (f"The harness was the bottleneck (its load generator: a Locust process at {loc:.0f}% CPU): "
                f"{symptom} — add workers (--workers) before judging the SUT ({figures}).")
    if gw_full and sut_full:
        return (f"Both sides were saturated: the gateway process at {gw:.0f}% and the SUT process at {sut:.0f}% "
                f"of one core each while {symptom} ({figures}).")
    if gw_full:
        return (f"The harness was the bottleneck (its gateway process, one event loop, at {gw:.0f}% of one core"
                + (f" while the SUT process used {sut:.0f}%" if sut is not None else "")
                + f"): {symptom} — the SUT was not shown to be the limit; see docs/gateway-scaling.md ({figures}).")
    if sut_full:
        return (f"The SUT side was the bottleneck (the SUT process at {sut:.0f}% of one core, its ceiling, while "
                f"the gateway process used {gw:.0f}%): {symptom} ({figures}).")
    if machine is not None and machine >= MACHINE_BUSY:
        ours = gw + (sut or 0.0) + (_sustained(rows, "locust_cpu") or loc)
        return (f"The machine was the bottleneck: its cores were {machine:.0f}% busy while {symptom}; no single "
                f"process was at one core — the gateway, the SUT and Locust (together {ours:.0f}% of one core) "
                f"and any other work on the machine competed for the same cores ({figures}).")
    if sut is not None:
        return (f"No process was CPU-bound, yet {symptom}: the cascades waited rather than computed — in the "
                f"SUT's own waits (its database, its outbox) or the gateway's delivery lanes (up to {lanes:.0f} "
                f"queued) ({figures}).")
    return (f"The SUT side was the bottleneck: {symptom} while the harness was not saturated ({figures}).")


def capacity_sentence(cap: dict[str, Any], sut: str, scale: str) -> str:
    """What ``Stats.capacity`` found, in one or two sentences (with the steady run that confirms it)."""
    if not cap["windows"]:
        return "No action ran: nothing to say about capacity."
    w, limit = float(cap["window_s"]), f"{float(cap['limit_s']):g} s"

    def win(x: dict[str, Any]) -> str:
        return f"t {x['t']:g}–{x['t'] + w:g} s"

    def cpu(x: dict[str, Any]) -> str:
        parts = [f"{who} process at {x[k]:.0f} %"
                 for who, k in (("the gateway", "gateway_cpu"), ("the SUT", "sut_cpu")) if x.get(k) is not None]
        return f"; {' and '.join(parts)} of one core" if parts else ""

    rule = f"windows of {w:g} s by intended start, each holding when p95 ≤ {limit} and ≤ 1 % of it behind"
    held, failed = cap["held"], cap["first_failed"]
    if held is None:
        return (f"Not even the first window held ({rule}): at {failed['rate']:g} actions/s ({win(failed)}) the "
                f"p95 was {_ms(failed['p95'])} and {failed['behind']} of {failed['actions']} actions were late, "
                f"dropped or failed — try a lower rate.")
    if failed is None:
        return (f"Every window held ({rule}), the busiest at {held['rate']:g} actions/s ({win(held)}, p95 "
                f"{_ms(held['p95'])}{cpu(held)}): the ceiling is above what this run offered (a ramp to a higher "
                f"--rate finds it).")
    confirm = (f"juki-harness load --sut {sut} --scale {scale} --profile steady --rate {math.floor(held['rate']):d} "
               f"--duration 60s")
    return (f"Held up to {held['rate']:g} actions/s ({win(held)}, p95 {_ms(held['p95'])}{cpu(held)}; {rule}). "
            f"The first window that did not hold offered {failed['rate']:g} actions/s ({win(failed)}, p95 "
            f"{_ms(failed['p95'])}, {failed['behind']} of {failed['actions']} behind{cpu(failed)}). Each window "
            f"is short: "
            f"confirm with `{confirm}`.")


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
        cpu: dict[str, Sequence[float | None]] = {"gateway": [r["gateway_cpu"] for r in s.cpu]}
        if any("sut_cpu" in r for r in s.cpu):  # our own SUT, in its own process
            cpu["sut"] = [r.get("sut_cpu") for r in s.cpu]
        cpu["locust"] = [r["locust_cpu"] for r in s.cpu]
        if any("machine_cpu" in r for r in s.cpu):
            cpu["machine"] = [r.get("machine_cpu") for r in s.cpu]
        cpu["lanes"] = [r["lanes"] for r in s.cpu]
        plots.append(("CPU % of one core (gateway process" + ("; SUT process" if "sut" in cpu else "")
                      + "; Locust processes), machine % of all cores, and delivery lane length",
                      svg_lines(ct, cpu)))
    by_fn = s.by_function()
    functions = []
    for fn, c in by_fn.items():
        p = s.percentiles(fn)
        functions.append((fn, {**c, **{k: _ms(p[k]) for k in ("p50", "p95", "p99", "max")}}))
    lag = s.percentiles(lag=True)
    thresholds = [{"text": t.text, "ok": ok, "measured": t.describe(m).split(": ", 1)[1]}
                  for t, ok, m in outcome.thresholds]
    trace = outcome.trace.to_json() if outcome.trace else {"ok": False, "counts": {}, "findings": []}
    numbers = s.to_json()  # percentiles, capacity …: computed once for the page and the JSON
    cap = numbers["capacity"]
    ctx = {
        "profile": opts.profile, "scale": scale.kind, "day": opts.day.isoformat(), "sut": opts.sut,
        "compress": opts.compress, "seed": opts.seed, "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "workers": f"{opts.workers} Locust workers" if opts.workers else "one Locust process",
        "verdict_ok": outcome.exit_code == 0, "bottleneck": bottleneck(outcome), "totals": s.totals(),
        "skipped": s.skipped, "late_ms": opts.late_ms, "max_inflight": opts.max_inflight,
        "lag": " / ".join(_ms(lag[k]) for k in ("p50", "p95", "p99", "max")), "functions": functions,
        "thresholds": thresholds, "trace": trace, "samples": sample_rows(outcome.conformance),
        "samples_ok": outcome.conformance_ok, "plots": plots, "errors": s.errors(), "error": outcome.error,
        "sut_process": outcome.sut_process, "collector": outcome.collector,
        "capacity": capacity_sentence(cap, opts.sut, opts.scale), "windows": cap["windows"],
        "window_s": cap["window_s"],
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("report.html").render(ctx)
    out = opts.out
    (out / "load-report.html").write_text(html, encoding="utf-8")
    doc = {"profile": opts.profile, "scale": scale.kind, "day": opts.day.isoformat(), "sut": opts.sut,
           "compress": opts.compress, "seed": opts.seed, "workers": opts.workers, "exit_code": outcome.exit_code,
           "bottleneck": ctx["bottleneck"], "capacity_sentence": ctx["capacity"], "error": outcome.error,
           "sut_process": outcome.sut_process,
           "collector": outcome.collector,
           **numbers, "thresholds": thresholds,
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
