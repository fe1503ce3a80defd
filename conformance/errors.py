"""Errors are values: a stable rule code, a location and a message (printed for people and as JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding of a check: what broke (``code``), where (file, line, XPath) and a message."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    xpath: str | None = None
    severity: str = "error"

    def for_people(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        loc = f"{where} " if where else ""
        xp = f" at {self.xpath}" if self.xpath else ""
        return f"{loc}{self.severity} {self.code}{xp}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(slots=True)
class HarnessError(Exception):
    """An error that stops an operation; carries findings so callers can report them precisely."""

    findings: list[Finding] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f.for_people() for f in self.findings)

    def to_json(self) -> str:
        return json.dumps([f.to_json() for f in self.findings], ensure_ascii=False)


def fail(code: str, message: str, **where: Any) -> HarnessError:
    """Build a HarnessError with one finding (``raise fail(...)``)."""
    return HarnessError([Finding(code=code, message=message, **where)])
