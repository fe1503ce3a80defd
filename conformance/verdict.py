"""The run's verdict in words and its failures grouped by first cause.

Why: "122 pass 92 fail" tells a vendor nothing about conformance. The verdict says CONFORMS / DOES NOT CONFORM
for suite X version Y, or PARTIAL when only a selection ran (``--routes``, ``--functions``, ``--scenarios``,
or operations the SUT does not implement), so a subset that passes is never mistaken for conformance. One
missing consequence turns many scenarios red; grouping by the first failing expectation's cause shows it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CONFORMS", "DOES_NOT_CONFORM", "PARTIAL", "exit_code", "group_failures", "headline", "verdict"]

CONFORMS = "CONFORMS"
DOES_NOT_CONFORM = "DOES NOT CONFORM"
PARTIAL = "PARTIAL"

WORDS: dict[str, dict[str, str]] = {
    "ja": {CONFORMS: "適合", DOES_NOT_CONFORM: "不適合", PARTIAL: "部分実施（適合は判定されません）"},
    "en": {CONFORMS: CONFORMS, DOES_NOT_CONFORM: DOES_NOT_CONFORM, PARTIAL: PARTIAL},
}

_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\*{8}\d{4}|\d+",
                       re.IGNORECASE)


def verdict(*, total: int, passed: int, partial: bool) -> str:
    """CONFORMS only for the whole suite, all passed; any failure DOES NOT CONFORM; else PARTIAL."""
    if passed < total:
        return DOES_NOT_CONFORM
    if partial or total == 0:
        return PARTIAL
    return CONFORMS


def exit_code(word: str, *, partial_ok: bool = False) -> int:
    from conformance.preflight import EXIT_CONFORMS, EXIT_DOES_NOT_CONFORM, EXIT_PARTIAL

    if word == CONFORMS:
        return EXIT_CONFORMS
    if word == PARTIAL:
        return EXIT_CONFORMS if partial_ok else EXIT_PARTIAL
    return EXIT_DOES_NOT_CONFORM


_MISSING = (re.compile(r"\bno (\w+) on arrow (\d+)\b.*\bwas found"),
            re.compile(r"^0 × (\w+) on arrow (\d+)\b"),
            re.compile(r"waited [\d.]+ s for \d+ × (\w+) on arrow (\d+); found 0"))


def _missing_message(message: str) -> tuple[str, str] | None:
    """(message type, arrow) when a cause says that message never crossed that arrow."""
    for rx in _MISSING:
        m = rx.search(message)
        if m:
            return m.group(1), m.group(2)
    return None


def _cause(sc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(code, check, message) of a failed scenario's first cause: its error, else its first failed expectation."""
    if sc.get("error"):
        return "ERROR", "scenario", str(sc["error"])
    for e in sc.get("expectations") or []:
        if e.get("verdict") != "pass":
            return str(e.get("code") or ""), str(e.get("check") or ""), str(e.get("message") or "")
    return str(sc.get("verdict") or "fail").upper(), "scenario", "failed without a failed expectation"


def group_failures(scenarios: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Failed scenarios (results.json dicts) grouped by first cause, the largest group first.

    Numbers and message ids are volatile parts of a message; two causes differing only there are one group.
    """
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for sc in scenarios:
        if sc.get("verdict") == "pass":
            continue
        code, check, message = _cause(sc)
        gone = _missing_message(message)
        if gone is not None:  # whichever check noticed it first: the same message was never sent
            key = ("MISSING", gone[0], gone[1])
            code, check, message = "MISSING", "", f"{gone[0]} on arrow {gone[1]} was never sent"
        else:
            key = (code, check, _VOLATILE.sub("#", message))
        g = groups.setdefault(key, {"code": code, "check": check, "message": message, "scenarios": [],
                                    "functions": []})
        g["scenarios"].append(str(sc.get("id")))
        for f in sc.get("functions") or []:
            if f not in g["functions"]:
                g["functions"].append(f)
    out = sorted(groups.values(), key=lambda g: (-len(g["scenarios"]), g["scenarios"][0]))
    for g in out:
        g["count"] = len(g["scenarios"])
        g["functions"].sort()
    return out


def headline(summary: Mapping[str, Any], suite: Mapping[str, Any], lang: str = "en") -> str:
    """One line: the verdict in words, for which suite, and what ran."""
    word = str(summary.get("conformance") or DOES_NOT_CONFORM)
    words = WORDS.get(lang, WORDS["en"])
    total, passed = int(summary.get("total") or 0), int(summary.get("passed") or 0)
    in_suite = int(suite.get("scenarios_in_suite") or total)
    version = suite.get("version")
    digest = str(suite.get("digest") or "")
    version = f"{version} ({digest[:19]}…)" if digest else version
    not_impl = summary.get("not_implemented") or []
    sel = summary.get("selection") or {}
    chosen = ", ".join(f"{k} {','.join(v)}" for k, v in sel.items() if v)
    if lang == "ja":
        line = f"{words[word]}（{word}）— スイート版 {version}：{passed}/{total} シナリオ合格"
        if summary.get("partial"):
            line += f"（スイート全体 {in_suite} のうち {total} を実施"
            line += f"；選択 {chosen}" if chosen else ""
            line += f"；未実装の操作 {', '.join(not_impl)}" if not_impl else ""
            line += "）"
        return line
    line = f"{word} — suite {version}: {passed}/{total} scenarios passed"
    if summary.get("partial"):
        line += f" ({total} of the suite's {in_suite} ran"
        line += f"; selection {chosen}" if chosen else ""
        line += f"; operations not implemented: {', '.join(not_impl)}" if not_impl else ""
        line += ")"
    return line
