"""`juki-harness report RESULTS_DIR` and `juki-harness verify BUNDLE`.

Why separate commands: a reviewer re-renders (another language) or verifies a bundle offline, long after the
run and on another machine, without the SUT or the harness's simulators.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from conformance import catalogue as catalogue_mod
from conformance import verdict as verdict_mod
from conformance.errors import HarnessError, fail
from conformance.masking import mask_text
from reports.evidence import (
    EVIDENCE_NAME,
    build_evidence,
    bundle_path,
    file_digest,
    load_bundle,
    verify_bundle,
    write_evidence,
)
from reports.html import LANGS, REPORT_NAME, write_html
from simulators.trace import read_records

RESULTS_NAME = "results.json"
TRACE_NAME = "trace.sqlite"  # where certify keeps the run's trace


def _load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail("RPT-RESULTS", f"cannot read results: {exc}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise fail("RPT-RESULTS", f"results are not JSON: {exc.msg}", file=str(path),
                   line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise fail("RPT-RESULTS", "results.json must hold an object", file=str(path))
    return data


def _cmd_report(args: argparse.Namespace) -> int:
    d = Path(args.results_dir)
    results = _load_results(d / RESULTS_NAME)
    evidence = d / EVIDENCE_NAME
    trace = d / TRACE_NAME
    if evidence.is_file() or not trace.is_file():
        bundle = load_bundle(evidence)
    else:  # certify kept the trace but wrote no bundle: build it now (no config or clock log to add)
        bundle = build_evidence(results, read_records(trace), config={},
                                seeds={"run": results.get("run_seed")}, clock_log=[], keep_raw=args.keep_raw,
                                catalogue_digest=file_digest(catalogue_mod.default().source))
        write_evidence(bundle, evidence)
        print(mask_text(f"wrote {evidence} from {trace} (without config and clock log)"))
    out = Path(args.out) if args.out else d
    path = write_html(results, bundle, out, lang=args.lang)
    print(mask_text(f"wrote {path}"))
    return 0


def run_verdict_line(bundle: dict[str, Any], results: dict[str, Any] | None) -> str:
    """What the intact bundle says about the run: its verdict in words (never PASS for a failed run)."""
    summary = (results or {}).get("summary") or {}
    word = summary.get("conformance")
    if results is not None and word:
        return f"bundle intact; the run {verdict_mod.headline(summary, results.get('suite') or {}, 'en')}"
    verdicts = [v.get("verdict") for v in bundle.get("verdicts") or [] if isinstance(v, dict)]
    bad = sum(v != "pass" for v in verdicts)
    if bad:
        return f"bundle intact; the run {verdict_mod.DOES_NOT_CONFORM}: {bad} of {len(verdicts)} scenarios failed"
    return (f"bundle intact; all {len(verdicts)} scenario verdicts pass (whether the whole suite ran is in "
            "results.json, not given)")


def _cmd_verify(args: argparse.Namespace) -> int:
    p = Path(args.bundle)
    try:
        bundle = load_bundle(p)
    except HarnessError as err:
        for f in err.findings:
            print(mask_text(f"FAIL: {f.for_people()}"))
        return 1
    results = None
    beside = bundle_path(p).parent / RESULTS_NAME
    if not args.no_results and beside.is_file():
        try:
            results = _load_results(beside)
        except HarnessError as err:
            for f in err.findings:
                print(mask_text(f"FAIL: {f.for_people()}"))
            return 1
    check = verify_bundle(bundle, results)
    for line in check.lines():
        print(line)
    if results is not None and check.ok:
        print(mask_text(f"results.json beside the bundle agrees with its {check.verdicts} verdicts"))
    if check.ok:
        print(mask_text(run_verdict_line(bundle, results)))
    anchor = bundle.get("anchor") or {}
    print(mask_text(f"anchor: last_seq={anchor.get('last_seq')} last_hash={anchor.get('last_hash')} "
                    f"bundle digest={(bundle.get('digests') or {}).get('bundle')}"), file=sys.stderr)
    return 0 if check.ok else 1


def add_parsers(subparsers: Any) -> None:
    """Register `report` and `verify` with the juki-harness CLI."""
    r = subparsers.add_parser("report", help=f"render {REPORT_NAME} again from results.json + evidence.json")
    r.add_argument("results_dir", metavar="RESULTS_DIR", help="the directory certify wrote")
    r.add_argument("--lang", choices=LANGS, default="ja", help="label language (default: ja)")
    r.add_argument("--out", help=f"directory for {REPORT_NAME} (default: RESULTS_DIR)")
    r.add_argument("--keep-raw", action="store_true",
                   help=f"when {EVIDENCE_NAME} is built from {TRACE_NAME}: keep raw payloads "
                        "(個人番号 included)")
    r.set_defaults(func=_cmd_report)
    v = subparsers.add_parser("verify",
                              help="check an evidence bundle offline: hash chain, verdicts, digests")
    v.add_argument("bundle", metavar="BUNDLE", help=f"{EVIDENCE_NAME} or the directory holding it")
    v.add_argument("--no-results", action="store_true",
                   help="do not compare with results.json beside the bundle")
    v.set_defaults(func=_cmd_verify)
