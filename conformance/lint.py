"""`juki-harness lint FILE... [--json]`: check message files the way the gateway would, for people or CI.

Each file is parsed by the hardened parser, validated against the envelope schema, fitted to the catalogue
and run through every rule. A file may hold an envelope or a bare body root (a sample body). "-" reads
standard input. Exit status: 0 when every file passes, 1 otherwise. No more than the size limit plus one
byte is ever read from a file or from standard input: a larger input is refused with XML-SIZE unread.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from conformance.errors import Finding
from conformance.validate import Validator
from conformance.xmlsafe import MAX_BYTES

__all__ = ["add_lint_parser", "add_parser", "lint_paths", "run_lint"]

STDIN_NAME = "<stdin>"


def _read(path: str, limit: int = MAX_BYTES) -> tuple[str, bytes | None, Finding | None]:
    """(name, at most ``limit`` bytes, None) or (name, None, the finding): XML-SIZE beyond ``limit``."""
    try:
        if path == "-":
            name, data = STDIN_NAME, sys.stdin.buffer.read(limit + 1)
        else:
            name = path
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
    except OSError as e:
        return path, None, Finding("LINT-READ", f"cannot read the file: {e.strerror or e}", file=path)
    if len(data) > limit:
        return name, None, Finding("XML-SIZE", f"the document is more than {limit} bytes; the limit is {limit} "
                                   "bytes", file=name)
    return name, data, None


def lint_paths(paths: list[str], validator: Validator | None = None) -> list[tuple[str, list[Finding]]]:
    """(name, findings) for each path, in order; "-" is standard input (named "<stdin>")."""
    v = validator if validator is not None else Validator()
    out: list[tuple[str, list[Finding]]] = []
    for path in paths:
        name, data, problem = _read(path)
        if data is None:
            out.append((name, [problem] if problem is not None else []))
            continue
        out.append((name, v.check(data, file=name, allow_bare_body=True).findings))
    return out


def _passes(findings: list[Finding]) -> bool:
    return not any(f.severity == "error" for f in findings)


def _as_json(results: list[tuple[str, list[Finding]]]) -> list[dict[str, Any]]:
    return [
        {
            "file": name,
            "ok": _passes(findings),
            "findings": [
                {"code": f.code, "message": f.message, "line": f.line, "xpath": f.xpath,
                 "severity": f.severity}
                for f in findings
            ],
        }
        for name, findings in results
    ]


def run_lint(args: argparse.Namespace) -> int:
    """Lint ``args.files``; print findings (``--json``: one JSON list); 0 if every file passes, else 1."""
    results = lint_paths(list(args.files))
    if getattr(args, "json", False):
        print(json.dumps(_as_json(results), ensure_ascii=False, indent=2))
    else:
        for _name, findings in results:
            for f in findings:
                print(f.for_people())
        failed = sum(not _passes(f) for _n, f in results)
        print(f"{len(results)} file(s) checked, {failed} failed", file=sys.stderr)
    return 0 if all(_passes(f) for _n, f in results) else 1


def add_lint_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `lint` on the CLI's subparsers (``func`` is run_lint)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "lint", help="check message files: schema, catalogue fit, identifiers, dates, data class, characters",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help='message files ("-" for standard input)')
    p.add_argument("--json", action="store_true", help="print a JSON list of {file, ok, findings}")
    p.set_defaults(func=run_lint)
    return p


add_parser = add_lint_parser  # the name conformance.cli looks for
