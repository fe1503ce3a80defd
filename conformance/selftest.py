"""`juki-harness selftest`: the judge is judged — every injected defect must be caught by its scenario.

The defect catalogue is ``simulators.reference.defects.DEFECTS`` (name → function, description); the mapping
defect → the scenario that must catch it is data (``conformance/data/defects.yaml``). The suite runs once
against a clean reference SUT (every scenario must pass) and once per defect on a fresh reference SUT with
that defect in its config, running only the scenarios that matter for it (the named one and its ``also``
list). Prints ONE JSON object: clean_failures, defects, detected, detection_rate, ``by_kind`` (detection per class
of defect, every class listed) and per-defect results (defect, function, kind, expected scenario, caught_by).
Exit 0 only with no clean failure, every defect caught by the scenario that names it, and every class
represented.

``--mutate`` measures the suite's power against ANY SUT (``--sut URL``): each traffic mutation of
``conformance.mutations.TRAFFIC`` (a name's 異体字, a dropped IVS, 本籍 as text, a shifted Seq, a wall-clock
SentAt, a duplicate without RetryReason, a generic refusal code …) is hooked into the gateway in front of the
SUT for one run of the suite; a mutation is detected when a scenario that passed clean fails with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

import jsonschema
import yaml

from conformance.errors import Finding, HarnessError
from conformance.mutations import KINDS, by_kind
from conformance.scenario import Scenario, Suite, load_suite

__all__ = ["DefectCase", "add_parser", "load_defects", "selftest"]

DEFECTS_PATH = Path(str(resources.files("conformance") / "data" / "defects.yaml"))

#: Classes of defect: the selftest reports detection per class, and every class must be represented.

_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["version", "defects"],
    "properties": {
        "version": {"type": "string"},
        "defects": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["defect", "function", "kind", "scenario"],
            "properties": {
                "defect": {"type": "string"}, "function": {"type": "string", "pattern": "^F[0-9]{2}$"},
                "kind": {"enum": list(KINDS)},
                "scenario": {"type": "string"}, "also": {"type": "array", "items": {"type": "string"}},
                "note": {"type": "string"}}}}}}


@dataclass(frozen=True, slots=True)
class DefectCase:
    """One row of defects.yaml: the defect, its function and kind, the scenario that must catch it."""

    defect: str
    function: str
    kind: str
    scenario: str
    also: tuple[str, ...] = ()
    description: str = ""
    note: str | None = None

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys([self.scenario, *self.also]))


@dataclass(slots=True)
class DefectResult:
    case: DefectCase
    caught_by: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0

    @property
    def detected(self) -> bool:
        return self.case.scenario in self.caught_by

    def to_json(self) -> dict[str, Any]:
        return {"defect": self.case.defect, "function": self.case.function, "kind": self.case.kind,
                "description": self.case.description, "expected_scenario": self.case.scenario,
                "ran": self.case.scenarios, "caught_by": self.caught_by, "detected": self.detected,
                "errors": self.errors, "note": self.case.note, "duration": round(self.duration, 3)}


def load_defects(suite: Suite, path: Path | None = None) -> list[DefectCase]:
    """Read defects.yaml and check it against the reference SUT's catalogue and the suite."""
    from simulators.reference.defects import DEFECTS

    p = path or DEFECTS_PATH
    raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    problems = [Finding("DEF-SHAPE", f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}",
                        file=str(p)) for e in jsonschema.Draft202012Validator(_SCHEMA).iter_errors(raw)]
    if problems:
        raise HarnessError(problems)
    ids = {s.id for s in suite.scenarios}
    out: list[DefectCase] = []
    seen: set[str] = set()
    for row in raw["defects"]:
        name = row["defect"]
        d = DEFECTS.get(name)
        if d is None:
            problems.append(Finding("DEF-UNKNOWN", f"{name}: not a defect of simulators/reference/defects.py",
                                    file=str(p)))
            continue
        if name in seen:
            problems.append(Finding("DEF-DUP", f"{name} is mapped twice", file=str(p)))
        seen.add(name)
        if d.function != row["function"]:
            problems.append(Finding("DEF-FUNCTION", f"{name}: the catalogue says {d.function}, the mapping "
                                                    f"{row['function']}", file=str(p)))
        for sid in [row["scenario"], *row.get("also", [])]:
            if sid not in ids:
                problems.append(Finding("DEF-SCENARIO", f"{name}: no scenario {sid} in the suite",
                                        file=str(p)))
        out.append(DefectCase(name, row["function"], row["kind"], row["scenario"], tuple(row.get("also", [])),
                              d.description, row.get("note")))
    missing = sorted(set(DEFECTS) - seen)
    if missing:
        problems.append(Finding("DEF-UNMAPPED", f"defects with no scenario: {', '.join(missing)}",
                                file=str(p)))
    if problems:
        raise HarnessError(problems)
    return out


async def _run_defect(case: DefectCase, by_id: dict[str, Scenario], *, concurrency: int, run_seed: int,
                      within: float) -> DefectResult:
    from conformance.certify import run_suite

    t0 = time.monotonic()
    chosen = [by_id[s] for s in case.scenarios]
    res = DefectResult(case)
    try:
        results = await run_suite(chosen, defects=[case.defect], concurrency=concurrency, run_seed=run_seed,
                                  default_within=within)
    except (HarnessError, OSError, RuntimeError) as e:
        res.errors.append(f"the harness failed: {type(e).__name__}: {e}")
        results = []
    res.caught_by = [r.scenario.id for r in results if r.verdict == "fail"]
    res.errors.extend(f"{r.scenario.id}: {r.error}" for r in results if r.verdict == "error")
    res.duration = time.monotonic() - t0
    return res


async def selftest(*, names: Sequence[str] | None = None, parallel: int = 4, concurrency: int = 8,
                   run_seed: int = 1, within: float = 4.0, suite_dir: str | None = None,
                   progress: IO[str] | None = None) -> dict[str, Any]:
    """Clean run plus one run per defect; the JSON report (see the module docstring)."""
    from conformance.certify import run_suite

    t0 = time.monotonic()
    suite = load_suite(suite_dir)
    cases = load_defects(suite)
    if names:
        unknown = sorted(set(names) - {c.defect for c in cases})
        if unknown:
            raise HarnessError([Finding("DEF-UNKNOWN", f"not in defects.yaml: {', '.join(unknown)}")])
        cases = [c for c in cases if c.defect in set(names)]
    by_id = {s.id: s for s in suite.scenarios}

    def say(msg: str) -> None:
        if progress is not None:
            progress.write(msg + "\n")
            progress.flush()

    say(f"selftest: clean run of {len(suite.scenarios)} scenarios")
    clean = await run_suite(list(suite.scenarios), concurrency=concurrency, run_seed=run_seed)
    clean_failures = [{"scenario": r.scenario.id, "verdict": r.verdict,
                       "why": (r.error or "; ".join(o.message for o in r.failures()))[:500]}
                      for r in clean if not r.passed]
    say(f"selftest: clean run {len(clean) - len(clean_failures)}/{len(clean)} passed; "
        f"{len(cases)} defects, {parallel} at a time")
    sem = asyncio.Semaphore(max(1, parallel))
    done = 0

    async def one(case: DefectCase) -> DefectResult:
        nonlocal done
        async with sem:
            r = await _run_defect(case, by_id, concurrency=concurrency, run_seed=run_seed, within=within)
        done += 1
        say(f"  [{done}/{len(cases)}] {case.defect}: {'caught' if r.detected else 'MISSED'} by "
            f"{', '.join(r.caught_by) or 'nothing'} ({r.duration:.1f} s)")
        return r

    results = await asyncio.gather(*(one(c) for c in cases))
    detected = sum(r.detected for r in results)
    from conformance.certify import harness_version

    return {
        "suite": {"version": suite.version, "digest": suite.digest, "scenarios": len(suite.scenarios)},
        "harness": harness_version(),
        "clean_failures": clean_failures,
        "defects": len(results), "detected": detected,
        "detection_rate": round(detected / len(results), 4) if results else 1.0,
        "undetected": [r.case.defect for r in results if not r.detected],
        "by_kind": by_kind([(r.case.kind, r.detected) for r in results]),
        "kinds_missing": [] if names else sorted(set(KINDS) - {r.case.kind for r in results}),
        "results": [r.to_json() for r in results],
        "duration": round(time.monotonic() - t0, 3),
    }


def _cmd(args: argparse.Namespace) -> int:
    if args.mutate:
        from conformance.mutation_run import mutation_selftest

        muts = [x.strip() for x in args.mutations.split(",") if x.strip()] if args.mutations else None
        scen = [x.strip() for x in args.scenarios.split(",") if x.strip()] if args.scenarios else None
        report = asyncio.run(mutation_selftest(
            sut=args.sut, config=args.config, gateway_port=args.gateway_port, mutations=muts, scenarios=scen,
            parallel=args.parallel, concurrency=args.concurrency, run_seed=args.seed, within=args.within,
            suite_dir=args.suite, progress=None if args.quiet else sys.stderr))
        print(json.dumps(report, ensure_ascii=False))
        return 0 if report["detected"] == report["mutations"] else 1
    names = [x.strip() for x in args.defects.split(",") if x.strip()] if args.defects else None
    report = asyncio.run(selftest(names=names, parallel=args.parallel, concurrency=args.concurrency,
                                  run_seed=args.seed, within=args.within, suite_dir=args.suite,
                                  progress=None if args.quiet else sys.stderr))
    print(json.dumps(report, ensure_ascii=False))
    ok = not report["clean_failures"] and report["detected"] == report["defects"] and not report["kinds_missing"]
    return 0 if ok else 1


def add_parser(subparsers: Any) -> None:
    """Register ``selftest`` with the CLI."""
    p = subparsers.add_parser("selftest", help="run the suite against the reference SUT clean and with each "
                                               "injected defect; print one JSON report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--defects", help="comma-separated defect names (default: all of defects.yaml)")
    p.add_argument("--parallel", type=int, default=4, help="defects run at once, each on its own harness (4)")
    p.add_argument("--concurrency", type=int, default=8, help="scenarios run at once per harness (8)")
    p.add_argument("--seed", type=int, default=1, help="run seed of the fixtures (1)")
    p.add_argument("--within", type=float, default=4.0,
                   help="seconds a check waits for a message in the defect runs (4)")
    p.add_argument("--suite", default=None, help="a scenario folder instead of the shipped suite")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    m = p.add_argument_group("mutation mode (any SUT): defects injected into the traffic between SUT and gateway")
    m.add_argument("--mutate", action="store_true",
                   help="instead of the reference SUT's defects, rewrite what the SUT sends or answers "
                        "(conformance/mutations.py TRAFFIC) and report which scenarios notice")
    m.add_argument("--sut", default="reference", help="'reference' or the SUT's base URL (with --mutate)")
    m.add_argument("--config", default=None, help="harness config (TOML) for a vendor SUT's gateway")
    m.add_argument("--gateway-port", type=int, default=None, help="the gateway port a vendor SUT sends to")
    m.add_argument("--mutations", default=None, help="comma-separated mutation names (default: all)")
    m.add_argument("--scenarios", default=None, help="comma-separated scenario ids (default: the suite)")
    p.set_defaults(func=_cmd)
