"""Pre-flight of a vendor's SUT: is ``--sut`` a URL, does ``/health`` answer, what does ``/contract`` list?

Why: without it an unreachable SUT costs a whole suite of time-outs (121 "GW-DOWN" failures and 106 s) and a
typo in ``--sut`` is accepted. The pre-flight stops in seconds with one message and its own exit code, and
the operations the SUT does not list in ``/contract`` make their scenarios "not implemented" (not run, listed)
instead of failures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from conformance.scenario import COUNTER_OPERATIONS, Scenario

__all__ = [
    "EXIT_CODES", "EXIT_CONFORMS", "EXIT_DOES_NOT_CONFORM", "EXIT_PARTIAL", "EXIT_REPORT_EXISTS",
    "EXIT_SUT_NONCONFORMING", "EXIT_SUT_UNREACHABLE", "EXIT_USAGE", "Contract", "PreflightError",
    "check_sut_url", "needed_operations", "preflight", "split_implemented",
]

EXIT_CONFORMS = 0
EXIT_DOES_NOT_CONFORM = 1
EXIT_USAGE = 2
EXIT_SUT_UNREACHABLE = 3
EXIT_SUT_NONCONFORMING = 4
EXIT_PARTIAL = 5
EXIT_REPORT_EXISTS = 6

#: exit code → meaning (printed by ``certify --help`` and documented in docs/vendor-guide.md)
EXIT_CODES: dict[int, str] = {
    EXIT_CONFORMS: "CONFORMS: the whole suite ran and every scenario passed",
    EXIT_DOES_NOT_CONFORM: "DOES NOT CONFORM: at least one scenario failed (whole suite or a selection)",
    EXIT_USAGE: "usage error: a bad option, --sut that is not a URL, a selection naming an unknown id",
    EXIT_SUT_UNREACHABLE: "the SUT cannot be reached (nothing listening, connection refused, time-out)",
    EXIT_SUT_NONCONFORMING: "the SUT answered /health or /contract, but not as docs/sut-contract.md says",
    EXIT_PARTIAL: "PARTIAL: every scenario run passed, but only a selection ran (--routes/--functions/"
                  "--scenarios, or operations the SUT does not implement); --partial-ok makes this 0",
    EXIT_REPORT_EXISTS: "the report directory already holds a run (results.json); use --overwrite",
}

TIMEOUT = 5.0  # seconds for each pre-flight request (connect included)


class PreflightError(Exception):
    """The SUT failed the pre-flight: ``code`` is the exit code, ``message`` the one line a user reads."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Contract:
    """What the SUT's ``GET /contract`` answered."""

    version: str
    operations: tuple[str, ...]
    lg_code: str | None = None
    implementation: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def check_sut_url(sut: str) -> str:
    """``sut`` as a base URL without trailing slash; PreflightError(EXIT_USAGE) when it is not one."""
    parts = urlsplit(sut)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PreflightError(EXIT_USAGE, f"--sut {sut!r} is neither 'reference' nor an http(s) URL "
                                         "(for example http://127.0.0.1:8800)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise PreflightError(EXIT_USAGE, f"--sut {sut!r}: the port is not a number") from None
    if parts.query or parts.fragment:
        raise PreflightError(EXIT_USAGE, f"--sut {sut!r}: give the base URL only (no ?query or #fragment)")
    return sut.rstrip("/")


async def _get_json(session: Any, url: str, what: str) -> tuple[int, Any]:
    import aiohttp

    try:
        async with session.get(url) as resp:
            text = await resp.text(errors="replace")
            status = int(resp.status)
    except aiohttp.ClientConnectorError as exc:
        why = ("connection refused" if isinstance(exc.os_error, ConnectionRefusedError)
               else str(exc.os_error.strerror or exc))
        raise PreflightError(EXIT_SUT_UNREACHABLE,
                             f"cannot reach the SUT at {url}: {why} (is it running, on this host and port?)"
                             ) from None
    except TimeoutError:
        raise PreflightError(EXIT_SUT_UNREACHABLE,
                             f"the SUT did not answer GET {url} within {TIMEOUT:.0f} s") from None
    except aiohttp.ClientError as exc:
        raise PreflightError(EXIT_SUT_UNREACHABLE, f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    try:
        return status, json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        if status != 200:
            return status, None
        raise PreflightError(EXIT_SUT_NONCONFORMING,
                             f"GET {url} answered 200 but not JSON ({what} must be JSON; "
                             f"docs/sut-contract.md §1): {text[:80]!r}") from None


async def preflight(sut: str, *, contract_version: str, timeout: float = TIMEOUT,
                    lg_code: str | None = None) -> Contract:
    """GET {sut}/health (200) and {sut}/contract (the contract's major version, known operation names).

    ``lg_code``: the municipality the harness config expects; a /contract naming another one is refused."""
    import aiohttp

    base = check_sut_url(sut)
    to = aiohttp.ClientTimeout(total=timeout, connect=timeout)
    async with aiohttp.ClientSession(timeout=to) as session:
        status, _ = await _get_json(session, f"{base}/health", "/health")
        if status != 200:
            raise PreflightError(EXIT_SUT_NONCONFORMING,
                                 f"GET {base}/health answered {status}, not 200: the SUT says it is not ready")
        status, doc = await _get_json(session, f"{base}/contract", "/contract")
    if status != 200:
        raise PreflightError(EXIT_SUT_NONCONFORMING, f"GET {base}/contract answered {status}, not 200 with "
                                                     '{"contract": ..., "operations": [...]}')
    if not isinstance(doc, dict) or not isinstance(doc.get("contract"), str) \
            or not isinstance(doc.get("operations"), list) \
            or not all(isinstance(o, str) for o in doc["operations"]):
        raise PreflightError(EXIT_SUT_NONCONFORMING,
                             f"GET {base}/contract must answer {{\"contract\": \"{contract_version}\", "
                             f"\"operations\": [\"MovingNotification\", ...]}}; it answered "
                             f"{json.dumps(doc, ensure_ascii=False)[:120]}")
    theirs = str(doc["contract"])
    if theirs.split(".")[0] != contract_version.split(".")[0]:
        raise PreflightError(EXIT_SUT_NONCONFORMING,
                             f"the SUT implements SUT contract {theirs}; this harness tests contract "
                             f"{contract_version} (the major versions differ)")
    unknown = [o for o in doc["operations"] if o not in COUNTER_OPERATIONS]
    if unknown:
        raise PreflightError(EXIT_SUT_NONCONFORMING,
                             f"GET {base}/contract lists unknown operations {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(COUNTER_OPERATIONS))}")
    theirs_lg = doc.get("lg_code")
    if lg_code is not None and theirs_lg is not None and str(theirs_lg) != lg_code:
        raise PreflightError(EXIT_SUT_NONCONFORMING,
                             f"the SUT serves lgCode {theirs_lg} (its /contract) but the harness config expects "
                             f"{lg_code}: set [sut] lg_code in --config, or configure the SUT")
    return Contract(theirs, tuple(doc["operations"]), theirs_lg, doc.get("implementation"), doc)


def needed_operations(s: Scenario) -> set[str]:
    """The counter operations a scenario drives (its fixtures living in the SUT are loaded by 職権記載)."""
    ops = {str(st.arg) for st in s.steps if st.action == "counter"}
    if any(r.lives == "sut" for r in s.residents):
        ops.add("OfficialCorrection")
    return ops


def split_implemented(scenarios: Iterable[Scenario], operations: Sequence[str]
                      ) -> tuple[list[Scenario], list[dict[str, Any]]]:
    """(scenarios the SUT can run, [{id, route, functions, title, missing}] of the ones it cannot)."""
    have = set(operations)
    run: list[Scenario] = []
    skipped: list[dict[str, Any]] = []
    for s in scenarios:
        missing = sorted(needed_operations(s) - have)
        if missing:
            skipped.append({"id": s.id, "route": s.route, "functions": list(s.functions),
                            "title": {"ja": s.title_ja, "en": s.title_en}, "missing_operations": missing})
        else:
            run.append(s)
    return run, skipped
