"""Small helpers of the scenario engine: fixture XML, value coercion, durations (no state, no I/O)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lxml import etree

from conformance import codec
from conformance.checks import CheckContext
from conformance.envelope import new_id
from conformance.model import JDate, Municipality, Resident
from conformance.scenario import Scenario, address_xml, counter_person_xml, jdate_xml

# --------------------------------------------------------------------------------------------- helpers

def _safe(fn: Callable[[CheckContext, Mapping[str, Any]], bool], ctx: CheckContext,
          params: Mapping[str, Any]) -> bool:
    try:
        return fn(ctx, params)
    except (ValueError, KeyError, TypeError, etree.XPathError):
        return False


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _x_jdate(d: JDate, tag: str) -> str:
    return str(jdate_xml(d, tag))


def _counter_person(r: Resident) -> str:
    return str(counter_person_xml(r))


def _address(r: Resident) -> str:
    return str(address_xml(r.address, "NewAddress"))


def _residents_doc(members: Iterable[Resident]) -> str:
    """A <Residents> document (a seed's ``xml``), written by the codec."""
    doc = codec.new_el("Residents")
    for r in members:
        codec.resident_el("Resident", r, doc)
    return etree.tostring(doc, encoding="unicode")


def _card_data(r: Resident) -> dict[str, Any]:
    return {"juminhyo_code": r.juminhyo_code, "card_no": r.card_no, "cert_serial": r.card_serial}


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _bytes(v: Any) -> bytes | None:
    if v is None:
        return None
    return v.encode("utf-8") if isinstance(v, str) else bytes(v)


def _plain(d: Any) -> dict[str, Any]:
    kinds = (str, int, float, bool, list, dict, type(None))
    return {k: v for k, v in dict(d).items() if isinstance(v, kinds)}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*$")


def _seconds(v: Any) -> float:
    """Seconds from a number or '14d', '2h', '30m', '10s'."""
    if isinstance(v, int | float):
        return float(v)
    m = _DURATION.match(str(v))
    if m is None:
        raise ValueError(f"not a duration: {v!r} (use seconds or 14d, 2h, 30m, 10s)")
    return float(m.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}[m.group(2)]


class FixturePerson:
    """A fixture person for templates: the (head) Resident's attributes, and ``members`` of the household."""

    def __init__(self, members: Sequence[Resident], lives: Municipality) -> None:
        self.members = list(members)
        self.resident = self.members[0]
        self.municipality = lives

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["resident"], name)

    def __repr__(self) -> str:
        return f"FixturePerson({self.resident.name.display}, {len(self.members)} member(s))"


def _effective_seed(run_seed: int, scenario: Scenario) -> int:
    """A per-scenario seed; 4 bytes keep it at ≤10 digits, so it can never read as a 12-digit 個人番号."""
    h = hashlib.sha256(f"{run_seed}:{scenario.id}:{scenario.seed}".encode()).digest()
    return int.from_bytes(h[:4], "big")


def _bad_check(value: str) -> str:
    """The same identifier with a wrong last digit (a negative scenario's value)."""
    s = str(value)
    return s[:-1] + str((int(s[-1]) + 1) % 10)


def _uid(prefix: str = "X") -> str:
    return new_id(prefix)
