"""``juki-harness load``: the moving-season load test (Locust as the engine, an open-model schedule).

Examples::

    juki-harness load --sut reference --profile peak-day --compress 600 --duration 60s
    juki-harness load --scale prefecture:13 --compress 3600 --threshold 'p95<1s' --threshold 'dropped<1%'
    juki-harness load --profile steady --rate 20 --duration 30s --workers 2
    juki-harness load --sut reference --profile ramp --rate 150 --duration 120s   (the highest rate that holds)
    juki-harness load --plan --scale national --compress 100   (totals, rates and what the replay asks for)

Exit 0: the run held every threshold and conformance under load passed; 1: a threshold or conformance failed
(named on the console); 2: the run could not be made (bad option, harness problem).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

from conformance.errors import HarnessError, fail
from load.model import PROFILES, LoadModel, Scale, rate_summary, replay_summary

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from '60', '60s', '2m', '1h', '500ms'."""
    m = _DUR.match(text)
    if m is None:
        raise fail("LOAD-DURATION", f"bad duration {text!r}: use e.g. 60s, 2m, 1h")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]


def add_parser(subparsers: Any) -> None:
    """Register ``load`` with the CLI."""
    p = subparsers.add_parser("load", help="the moving-season load test (Locust, open model, cascades timed "
                                           "end to end, conformance under load)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sut", default="reference", help="reference (default), stub, or the SUT's base URL")
    p.add_argument("--config", help="harness config (TOML)")
    p.add_argument("--profile", choices=PROFILES, default="peak-day")
    p.add_argument("--scale", default="municipality:100000",
                   help="municipality:POP, prefecture:NN or national (default municipality:100000)")
    p.add_argument("--date", default="2026-03-30", help="the day replayed (default 2026-03-30, a peak Monday)")
    p.add_argument("--compress", type=float, default=600.0, help="time compression factor (default 600)")
    p.add_argument("--duration", help="stop sending after this much run time (60s, 2m); default: whole schedule")
    p.add_argument("--rate", type=float, help="steady profile: actions per second; ramp: the rate it rises to")
    p.add_argument("--workers", type=int, default=0, help="Locust master + N workers on loopback")
    p.add_argument("--web", action="store_true", help="Locust's web UI (starts by itself, quits 5 s after the end)")
    p.add_argument("--web-port", type=int, default=8089, help="port of the web UI on 127.0.0.1 (default 8089)")
    p.add_argument("--threshold", action="append", default=[],
                   help="'p95<1s', 'move_in:p99<=800ms', 'max<5s', 'dropped<1%%', 'errors<0.5%%' (repeatable)")
    p.add_argument("--out", default="load-results", help="output folder (default load-results)")
    p.add_argument("--seed", type=int, default=1, help="schedule and residents seed (default 1)")
    p.add_argument("--samples", default=None,
                   help="comma-separated conformance scenario ids run beside the load ('' = none)")
    p.add_argument("--cascade-timeout", type=float, default=30.0, help="seconds a cascade may take (30)")
    p.add_argument("--max-inflight", type=int, default=1000, help="open cascades per process before drops")
    p.add_argument("--plan", action="store_true", help="print the model's totals and rates; start nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from load.report import capacity_sentence
    from load.runner import DEFAULT_SAMPLES, LoadOptions, run_load
    from simulators.runtime import run

    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"load: bad --date {args.date!r} (use YYYY-MM-DD)", file=sys.stderr)
        return 2
    try:
        model = LoadModel.default()
        scale = Scale.parse(args.scale, model.figures)
        if args.plan:
            fns = rate_summary(model, scale, day)
            summary = {"scale": scale.kind, "date": day.isoformat(),
                       "actions": round(sum(f["total"] for f in fns.values())),
                       "replay": replay_summary(model, scale, day, args.compress), "functions": fns}
            print(json.dumps(summary, ensure_ascii=False, indent=2))
            return 0
        if args.sut not in ("reference", "stub") and not args.sut.startswith(("http://", "https://")):
            raise fail("LOAD-SUT", f"--sut {args.sut!r}: use reference, stub or the SUT's base URL (http://…)")
        for t in args.threshold:
            from load.stats import parse_threshold

            parse_threshold(t)
        samples = DEFAULT_SAMPLES if args.samples is None else tuple(
            s.strip() for s in args.samples.split(",") if s.strip())
        opts = LoadOptions(
            sut=args.sut, profile=args.profile, scale=args.scale, day=day, compress=args.compress,
            duration=parse_duration(args.duration) if args.duration else None, rate=args.rate,
            workers=args.workers, web=args.web, web_port=args.web_port, thresholds=tuple(args.threshold),
            out=Path(args.out),
            seed=args.seed, config=args.config, samples=samples, cascade_timeout=args.cascade_timeout,
            max_inflight=args.max_inflight)
        say = (lambda s: print(s, file=sys.stderr)) if args.json else print
        outcome = run(run_load(opts, out=say))  # uvloop where installed, as `serve`
    except HarnessError as e:
        print(f"load: {e}", file=sys.stderr)
        return 2
    s = outcome.stats
    lines = [f"load: {s.totals()}", f"load: cascade time {s.percentiles()}",
             f"load: capacity — {capacity_sentence(s.capacity(), args.sut, args.scale)}"]
    if outcome.error:
        lines.append(f"load: error LOAD-LOCUST: {outcome.error}")
    for t, ok, measured in outcome.thresholds:
        lines.append(f"load: threshold {'ok' if ok else 'FAILED'} — {t.describe(measured)}")
    if outcome.trace is not None:
        lines.append(f"load: trace {'ok' if outcome.trace.ok else 'FAILED'} {outcome.trace.counts}"
                     + "".join(f"\n  {f['code']}: {f['message']}" for f in outcome.trace.findings[:5]))
    bad = [r for r in outcome.conformance if r["verdict"] != "pass"]
    lines.append(f"load: conformance under load {'ok' if not bad else 'FAILED'}: "
                 f"{len(outcome.conformance) - len(bad)}/{len(outcome.conformance)} sampled scenarios passed"
                 + "".join(f"\n  {r['scenario']} {r['verdict']}: {r['error'] or '; '.join(r['failures'])}"
                           for r in bad[:5]))
    if outcome.collector:
        c = outcome.collector
        lines.append(f"load: gateway's collector: {c['young']:.0f} young collections by the clock, "
                     f"{c['full']:.0f} full (longest {c['longest_full_ms']} ms, {c['freed']:.0f} objects freed)")
    lines.append(f"load: report {outcome.files.get('report')} (exit {outcome.exit_code})")
    if args.json:
        print(json.dumps({"exit_code": outcome.exit_code, **s.to_json(), "files": outcome.files,
                          "thresholds": [{"text": t.text, "ok": ok} for t, ok, _ in outcome.thresholds],
                          "trace": outcome.trace.to_json() if outcome.trace else None,
                          "collector": outcome.collector, "conformance": outcome.conformance},
                         ensure_ascii=False, indent=1, default=str))
    else:
        print("\n".join(lines))
    return outcome.exit_code
