"""`juki-harness selftest --mutate`: the suite's power against ANY SUT, by defects injected into its traffic.

Why: the reference SUT's own defects say what the suite catches in the reference SUT; a vendor wants to know
what it catches in *its* system. Here the SUT is left alone: for each traffic mutation
(``conformance.mutations.TRAFFIC``) the gateway gets a hook that rewrites what the SUT sends (or answers at the
counter) before the gateway validates and records it — exactly as if the SUT had the defect. A clean run
comes first; a mutation is *detected* when a scenario that passed clean fails under it. Reported per
mutation and per class of defect (``by_kind``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import IO, Any

from conformance.engine import ScenarioResult
from conformance.errors import Finding, HarnessError
from conformance.mutations import TRAFFIC, by_kind, install_traffic_mutation
from conformance.scenario import Scenario, load_suite
from simulators.gateway import Outcome

__all__ = ["mutation_selftest", "run_mutated"]


async def run_mutated(scenarios: Sequence[Scenario], mutation: str | None, *, sut: str = "reference",
                      config: str | None = None, gateway_port: int | None = None, concurrency: int = 8,
                      run_seed: int = 1, within: float = 4.0) -> list[ScenarioResult]:
    """One harness, the mutation hooked into its gateway (None = clean), the scenarios run once."""
    import aiohttp

    from conformance.certify import harnessed
    from conformance.engine import Engine, Harness

    async with harnessed(sut, config, gateway_port=gateway_port) as h:
        if h.runtime is None:
            raise HarnessError([Finding("MUT-GATEWAY", "the harness runs no in-process gateway to hook")])
        remove = install_traffic_mutation(h.runtime.gateway, mutation, Outcome) if mutation else None
        try:
            connector = aiohttp.TCPConnector(limit=max(16, concurrency * 4))
            async with aiohttp.ClientSession(connector=connector) as session:
                engine = Engine(Harness(session, h.gateway_url, h.control_token), concurrency=concurrency,
                                run_seed=run_seed, default_within=within)
                return await engine.run_many(scenarios)
        finally:
            if remove is not None:
                remove()


async def mutation_selftest(*, sut: str = "reference", config: str | None = None,
                            gateway_port: int | None = None, mutations: Sequence[str] | None = None,
                            scenarios: Sequence[str] | None = None, parallel: int = 2, concurrency: int = 8,
                            run_seed: int = 1, within: float = 4.0, suite_dir: str | None = None,
                            progress: IO[str] | None = None) -> dict[str, Any]:
    """Clean run, then one run per mutation; the JSON report (see the module docstring)."""
    t0 = time.monotonic()
    suite = load_suite(suite_dir)
    chosen = list(suite.scenarios)
    if scenarios:
        unknown = sorted(set(scenarios) - {s.id for s in chosen})
        if unknown:
            raise HarnessError([Finding("MUT-SCENARIO", f"no such scenario: {', '.join(unknown)}")])
        chosen = [s for s in chosen if s.id in set(scenarios)]
    names = list(mutations) if mutations else list(TRAFFIC)
    unknown = sorted(set(names) - set(TRAFFIC))
    if unknown:
        raise HarnessError([Finding("MUT-UNKNOWN", f"unknown mutation(s) {', '.join(unknown)}; known: "
                                                   f"{', '.join(TRAFFIC)}")])
    if sut != "reference":
        parallel = 1  # a vendor SUT sends to one gateway port: one harness at a time

    def say(msg: str) -> None:
        if progress is not None:
            progress.write(msg + "\n")
            progress.flush()

    kw: dict[str, Any] = {"sut": sut, "config": config, "gateway_port": gateway_port,
                          "concurrency": concurrency, "run_seed": run_seed, "within": within}
    say(f"selftest --mutate: clean run of {len(chosen)} scenarios against {sut}")
    clean = await run_mutated(chosen, None, **kw)
    passing = [r.scenario for r in clean if r.passed]
    say(f"selftest --mutate: {len(passing)}/{len(clean)} pass clean; {len(names)} mutations, {parallel} at a time")
    sem = asyncio.Semaphore(max(1, parallel))

    async def one(name: str) -> dict[str, Any]:
        async with sem:
            t = time.monotonic()
            try:
                res = await run_mutated(passing, name, **kw)
                errors = [f"{r.scenario.id}: {r.error}" for r in res if r.verdict == "error"]
                caught = [r.scenario.id for r in res if r.verdict == "fail"]
            except (HarnessError, OSError, RuntimeError) as e:
                caught, errors = [], [f"the harness failed: {type(e).__name__}: {e}"]
        m = TRAFFIC[name]
        say(f"  {name}: {'caught by ' + ', '.join(caught[:6]) if caught else 'MISSED'} ({time.monotonic() - t:.1f} s)")
        return {"mutation": name, "kind": m.kind, "where": m.where, "description": m.description,
                "types": sorted(m.types) if m.types else None, "caught_by": caught, "detected": bool(caught),
                "errors": errors, "duration": round(time.monotonic() - t, 3)}

    rows = await asyncio.gather(*(one(n) for n in names))
    detected = sum(1 for r in rows if r["detected"])
    return {
        "sut": sut, "scenarios": len(chosen), "clean_passed": len(passing),
        "clean_failures": [r.scenario.id for r in clean if not r.passed],
        "mutations": len(rows), "detected": detected,
        "detection_rate": round(detected / len(rows), 4) if rows else 1.0,
        "undetected": [r["mutation"] for r in rows if not r["detected"]],
        "by_kind": {k: v for k, v in by_kind([(r["kind"], r["detected"]) for r in rows]).items() if v["defects"]},
        "results": rows, "duration": round(time.monotonic() - t0, 3),
    }
