"""Named checks: the judge's small rules, each with a stable code (like the OpenID suite's Condition classes).

A scenario's expectation names a check (``check: sequence.order``) and gives its parameters; the engine runs
the check on the tenant's trace records and the results of the scenario's steps and gets an ``Outcome``:
passed or not, a message, and evidence a reviewer can follow (trace seq, message id, XPath, expected, actual).
Some checks apply to EVERY scenario automatically (``auto=True``): no 個人番号 on a yellow or blue arrow, no
duplicate without a RetryReason, no SUT message refused by the gateway, each person's changes in order.

Checks see plain data (``Rec`` views of trace records — :mod:`conformance.record` — and ``StepResult``s), so they are
unit-testable on crafted records without a gateway.
"""

from __future__ import annotations

import base64
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from lxml import etree

from conformance.catalogue import Catalogue
from conformance.errors import HarnessError
from conformance.identifiers import is_valid_juminhyo_code, is_valid_lg_code, is_valid_my_number
from conformance.masking import mask_text
from conformance.record import TraceRecord, record_to_json
from conformance.rules import find_my_numbers
from conformance.xmlsafe import NSMAP, parse, q

__all__ = [
    "ASSERTION_OPS",
    "CHECKS",
    "SUT_ACTORS",
    "Check",
    "CheckContext",
    "Evidence",
    "Outcome",
    "Rec",
    "StepResult",
    "evaluate_assertions",
    "mask_my_numbers",
    "match_records",
    "run_check",
]

#: Actors the SUT plays: a message sent by one of them is the SUT's doing.
SUT_ACTORS: frozenset[str] = frozenset({"juki", "counter"})
#: Finding codes (substrings) that mean "the receiver is down" (503): a reason to retry, not a defect.
DOWN_MARKERS: tuple[str, ...] = ("DOWN", "UNAVAILABLE", "FAULT", "HOURS", "MAINT", "CLOSED", "503", "OFFLINE")

#: Masks every valid 個人番号 (any written form) to its last four digits: one implementation for everything.
mask_my_numbers = mask_text


# ------------------------------------------------------------------------------------------------ records

class Rec:
    """A view over one trace record (:class:`conformance.record.TraceRecord`) with its envelope parsed on demand.

    Built from the record itself or from its JSON form (the trace API's); a crafted JSON record may leave
    fields out (unit tests of a check): they read as empty.
    """

    __slots__ = ("__dict__", "record")

    def __init__(self, data: TraceRecord | Mapping[str, Any]) -> None:
        self.record = data if isinstance(data, TraceRecord) else _record_of(data)

    @cached_property
    def data(self) -> dict[str, Any]:
        """The record's JSON form (what the trace API serves)."""
        return record_to_json(self.record)

    # plain fields
    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def verdict(self) -> str:
        return self.record.verdict

    @property
    def arrow(self) -> int | None:
        return self.record.arrow

    @property
    def message_type(self) -> str | None:
        return self.record.message_type

    @property
    def message_id(self) -> str | None:
        return self.record.message_id

    @property
    def correlation_id(self) -> str | None:
        return self.record.correlation_id

    @property
    def sender_actor(self) -> str | None:
        return self.record.sender_actor

    @property
    def receiver_actor(self) -> str | None:
        return self.record.receiver_actor

    @property
    def sender_lg(self) -> str | None:
        return self.record.sender_lg

    @property
    def receiver_lg(self) -> str | None:
        return self.record.receiver_lg

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.record.findings)

    @property
    def note(self) -> str | None:
        return self.record.note

    @property
    def virtual_time(self) -> str | None:
        return self.record.virtual_time

    @property
    def recorded_at(self) -> datetime | None:
        v = self.record.recorded_at
        try:
            return datetime.fromisoformat(v) if v else None
        except ValueError:
            return None

    @property
    def payload(self) -> bytes:
        return self.record.payload

    @cached_property
    def root(self) -> etree._Element | None:
        """The parsed document (hardened parser), or None when the payload is not XML."""
        if not self.payload.strip():
            return None
        try:
            return parse(self.payload)
        except HarnessError:
            return None

    @cached_property
    def body(self) -> etree._Element | None:
        """The body element of an envelope; the root itself for a bare document."""
        root = self.root
        if root is None:
            return None
        if root.tag == q("Envelope"):
            b = root.find(q("Body"))
            if b is None or len(b) == 0:
                return None
            el: etree._Element = b[0]
            return el
        return root

    @cached_property
    def retry_reason(self) -> str | None:
        root = self.root
        if root is None or root.tag != q("Envelope"):
            return None
        el = root.find(f"{q('Header')}/{q('RetryReason')}")
        return el.text if el is not None else None

    @property
    def is_down_refusal(self) -> bool:
        """A refusal because the receiver was down (503): the sender should retry, it did nothing wrong."""
        if self.kind != "refused" and self.verdict != "refused":
            return False
        codes = [str(f.get("code", "")).upper() for f in self.findings]
        note = (self.note or "").upper()
        return any(m in c for c in codes for m in DOWN_MARKERS) or "503" in note

    def label(self) -> str:
        return (f"#{self.seq} {self.kind}/{self.verdict} arrow {self.arrow} {self.message_type} "
                f"{self.sender_actor}→{self.receiver_actor} id {self.message_id}")


def _record_of(d: Mapping[str, Any]) -> TraceRecord:
    """A record from its JSON form, fields that are absent read as empty (seq 0, no payload)."""
    p = d.get("payload")
    if p is None:
        b64 = d.get("payload_base64")
        payload = base64.b64decode(b64) if b64 else b""
    else:
        payload = p.encode("utf-8") if isinstance(p, str) else bytes(p)
    arrow = d.get("arrow")

    def opt(name: str) -> str | None:
        v = d.get(name)
        return None if v is None else str(v)

    return TraceRecord(
        seq=int(d.get("seq") or 0), recorded_at=str(d.get("recorded_at") or ""), virtual_time=opt("virtual_time"),
        tenant=opt("tenant"), arrow=None if arrow is None else int(arrow), kind=str(d.get("kind") or ""),
        sender_actor=opt("sender_actor"), sender_lg=opt("sender_lg"), receiver_actor=opt("receiver_actor"),
        receiver_lg=opt("receiver_lg"), message_type=opt("message_type"), message_id=opt("message_id"),
        correlation_id=opt("correlation_id"), verdict=str(d.get("verdict") or ""),
        findings=list(d.get("findings") or []), payload=payload, payload_sha256=str(d.get("payload_sha256") or ""),
        note=opt("note"), prev_hash=str(d.get("prev_hash") or ""), hash=str(d.get("hash") or ""))


@dataclass
class StepResult:
    """What a step produced: HTTP status, the message id it sent, the answer (an envelope or document)."""

    step_id: str
    action: str
    status: int | None = None
    message_id: str | None = None
    response: bytes | None = None
    mark: int = 0  # the trace's last seq when the step started
    started: datetime | None = None
    ended: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def root(self) -> etree._Element | None:
        if not self.response or not self.response.strip():
            return None
        try:
            return parse(self.response)
        except HarnessError:
            return None

    @cached_property
    def body(self) -> etree._Element | None:
        root = self.root
        if root is None:
            return None
        if root.tag == q("Envelope"):
            b = root.find(q("Body"))
            if b is None or len(b) == 0:
                return None
            el: etree._Element = b[0]
            return el
        return root


# ------------------------------------------------------------------------------------------ evidence, outcome

@dataclass(frozen=True, slots=True)
class Evidence:
    """Evidence: where (trace seq, message id, arrow, type, XPath) and what (expected, actual)."""

    seq: int | None = None
    message_id: str | None = None
    arrow: int | None = None
    message_type: str | None = None
    xpath: str | None = None
    expected: Any = None
    actual: Any = None
    note: str | None = None

    @classmethod
    def of(cls, rec: Rec, **kw: Any) -> Evidence:
        return cls(seq=rec.seq, message_id=rec.message_id, arrow=rec.arrow, message_type=rec.message_type,
                   **kw)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    def for_people(self) -> str:
        parts = []
        if self.seq is not None:
            parts.append(f"trace #{self.seq}")
        if self.message_type or self.arrow is not None:
            parts.append(f"{self.message_type or '?'} on arrow {self.arrow}")
        if self.message_id:
            parts.append(f"id {self.message_id}")
        if self.xpath:
            parts.append(f"at {self.xpath}")
        if self.expected is not None:
            parts.append(f"expected {self.expected!r}")
        if self.actual is not None:
            parts.append(f"actual {self.actual!r}")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)


@dataclass(slots=True)
class Outcome:
    """The verdict on one expectation."""

    code: str
    check: str
    passed: bool
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    expectation: str | None = None
    title: str | None = None
    line: int | None = None
    auto: bool = False
    because: str | None = None  # the rule (contract section, article) that requires the expectation

    def to_json(self) -> dict[str, Any]:
        return {"id": self.expectation, "check": self.check, "code": self.code, "title": self.title,
                "verdict": "pass" if self.passed else "fail", "message": self.message, "line": self.line,
                "auto": self.auto, "because": self.because, "evidence": [e.to_json() for e in self.evidence]}


# ------------------------------------------------------------------------------------------------ context

Render = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@dataclass(slots=True)
class CheckContext:
    """What a check sees: the tenant's records (seq order), the window start, step results, captures."""

    records: list[Rec]
    catalogue: Catalogue
    window: int = 0
    steps: dict[str, StepResult] = field(default_factory=dict)
    captured: dict[str, Any] = field(default_factory=dict)
    render: Render = _identity
    sut_lg: str | None = None
    #: registered persons by 住民票コード: what the harness recorded or gave the SUT (fixtures)
    people: dict[str, Any] = field(default_factory=dict)
    #: the tenant's virtual "now" (ISO 8601 with offset) when the scenario started, if known
    virtual_start: str | None = None

    def in_window(self) -> list[Rec]:
        return [r for r in self.records if r.seq > self.window]

    def arrow_class(self, arrow: int | None) -> str | None:
        if arrow is None:
            return None
        a = self.catalogue.arrows.get(arrow)
        return a.data_class if a is not None else None


CheckFn = Callable[[CheckContext, Mapping[str, Any]], tuple[bool, str, list[Evidence]]]
ReadyFn = Callable[[CheckContext, Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: stable ``code``, the ``name`` scenarios use, titles, parameter schema, readiness."""

    code: str
    name: str
    title_ja: str
    title_en: str
    fn: CheckFn
    params: dict[str, Any]
    auto: bool = False
    waits: bool = False  # the engine waits (up to ``within``) for its messages before evaluating
    ready: ReadyFn | None = None  # "the messages it waits for are all there" (stop waiting even if it fails)


CHECKS: dict[str, Check] = {}


def check(code: str, name: str, title_ja: str, title_en: str, params: dict[str, Any], *, auto: bool = False,
          waits: bool = False, ready: ReadyFn | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``name`` (scenarios) and ``code`` (reports), with its parameters and readiness.

    Every expectation may say ``because:`` (the contract section or article that requires it): it is shown
    with a failure, so a vendor can tell a rule from a preference.
    """
    def register(fn: CheckFn) -> CheckFn:
        if name in CHECKS or any(c.code == code for c in CHECKS.values()):
            raise ValueError(f"check {name} / {code} is registered twice")
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {"check": {"const": name}, "id": {"type": "string"},
                                 "title": {"type": "string"}, "because": {"type": "string"},
                                 **params.get("properties", {})},
                  "required": ["check", *params.get("required", [])]}
        CHECKS[name] = Check(code, name, title_ja, title_en, fn, schema, auto, waits, ready)
        return fn
    return register


def run_check(name: str, ctx: CheckContext, params: Mapping[str, Any], *, expectation: str | None = None,
              title: str | None = None, line: int | None = None) -> Outcome:
    """Run one check; an exception inside becomes a failed outcome with its message (never a crash)."""
    c = CHECKS[name]
    p = {k: v for k, v in params.items() if k != "because"}
    try:
        passed, message, evidence = c.fn(ctx, p)
    except HarnessError as e:
        passed, message, evidence = False, f"could not evaluate: {e}", []
    except (etree.XPathError, ValueError, KeyError, TypeError) as e:
        passed, message, evidence = False, f"could not evaluate: {type(e).__name__}: {e}", []
    because = params.get("because")
    return Outcome(code=c.code, check=name, passed=passed, message=message, evidence=evidence,
                   expectation=expectation, title=title, line=line, auto=c.auto,
                   because=str(because) if because else None)


# ------------------------------------------------------------------------------------------- XPath, filters

_XPATH_CACHE: dict[str, etree.XPath] = {}


def _xpath(expr: str) -> etree.XPath:
    x = _XPATH_CACHE.get(expr)
    if x is None:
        x = _XPATH_CACHE[expr] = etree.XPath(expr, namespaces=NSMAP)
    return x


def _strings(result: Any) -> list[str]:
    """XPath result as a list of strings (elements give their text content)."""
    if isinstance(result, list):
        out: list[str] = []
        for v in result:
            if isinstance(v, etree._Element):
                out.append("".join(str(t) for t in v.itertext()).strip())
            else:
                out.append(str(v))
        return out
    if isinstance(result, bool):
        return ["true" if result else "false"]
    if isinstance(result, float):
        return [str(int(result)) if result.is_integer() else str(result)]
    return [str(result)]


def xpath_values(target: etree._Element, expr: str) -> list[str]:
    """Evaluate ``expr``: absolute paths against the whole document, relative ones against ``target``."""
    ctx = target.getroottree().getroot() if expr.startswith("/") else target
    if expr.startswith("/"):
        return _strings(_xpath(expr)(ctx.getroottree()))
    return _strings(_xpath(expr)(ctx))


_OPS = ("equals", "not_equals", "contains", "not_contains", "one_of", "matches", "exists", "count", "le",
        "ge", "lt", "gt", "same_set", "valid", "masked")
ASSERTION_OPS = _OPS

_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "my_number": is_valid_my_number, "juminhyo_code": is_valid_juminhyo_code, "lg_code": is_valid_lg_code,
}


def _norm(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).strip()


def _one_assertion(values: list[str], a: Mapping[str, Any], render: Render) -> tuple[bool, Any, Any]:
    """Apply one assertion's operator to ``values``; returns (ok, expected, actual)."""
    actual: Any = values[0] if len(values) == 1 else values
    for op in _OPS:
        if op not in a:
            continue
        exp = render(a[op])
        if op == "equals":
            return bool(values) and all(v == _norm(exp) for v in values), _norm(exp), actual
        if op == "not_equals":
            return all(v != _norm(exp) for v in values), f"not {_norm(exp)}", actual
        if op == "contains":
            return _norm(exp) in values, f"contains {_norm(exp)}", actual
        if op == "not_contains":
            return _norm(exp) not in values, f"does not contain {_norm(exp)}", actual
        if op == "one_of":
            allowed = [_norm(x) for x in exp]
            return bool(values) and all(v in allowed for v in values), allowed, actual
        if op == "matches":
            rx = re.compile(str(exp))
            return bool(values) and all(rx.fullmatch(v) for v in values), f"matches {exp}", actual
        if op == "exists":
            want = bool(exp) if not isinstance(exp, str) else exp.lower() == "true"
            present = any(v != "" for v in values)
            return present == want, "present" if want else "absent", "present" if present else "absent"
        if op == "count":
            return len(values) == int(exp), int(exp), len(values)
        if op in ("le", "ge", "lt", "gt"):
            e = _norm(exp)
            cmp: Callable[[str, str], bool] = {"le": operator.le, "ge": operator.ge, "lt": operator.lt,
                                               "gt": operator.gt}[op]
            return bool(values) and all(cmp(v, e) for v in values), f"{op} {e}", actual
        if op == "same_set":
            want_set = sorted(_norm(x) for x in exp)
            return sorted(values) == want_set, want_set, sorted(values)
        if op == "valid":
            fn = _VALIDATORS[str(exp)]
            return bool(values) and all(fn(v) for v in values), f"valid {exp}", actual
        if op == "masked":  # a printed 個人番号 must be masked: no valid 個人番号 in the values
            leaked = [n for v in values for n in find_my_numbers(v)]
            return not leaked, "no 個人番号", [mask_my_numbers(x) for x in leaked] or "none"
    raise ValueError(f"assertion {dict(a)!r} names no operator (one of {', '.join(_OPS)})")


def evaluate_assertions(target: etree._Element, assertions: Iterable[Mapping[str, Any]], render: Render,
                        rec: Rec | None = None) -> tuple[bool, list[Evidence]]:
    """Evaluate XPath assertions on ``target``; one piece of evidence per assertion."""
    ok = True
    ev: list[Evidence] = []
    for a in assertions:
        expr = str(render(a["xpath"]))
        values = xpath_values(target, expr)
        good, expected, actual = _one_assertion(values, a, render)
        note = None if good else (str(a["because"]) if a.get("because") else "assertion failed")
        if rec is not None:
            ev.append(Evidence.of(rec, xpath=expr, expected=expected, actual=actual, note=note))
        else:
            ev.append(Evidence(xpath=expr, expected=expected, actual=actual, note=note))
        ok = ok and good
    return ok, ev


def _as_set(v: Any) -> set[Any] | None:
    if v is None:
        return None
    if isinstance(v, list | tuple | set):
        return {str(x) for x in v}
    return {str(v)}


_MATCH_KEYS = ("arrow", "type", "kind", "verdict", "sender", "receiver", "sender_lg", "receiver_lg",
               "correlation_id", "message_id", "where", "after", "before", "retry")


def _rec_matches(rec: Rec, m: Mapping[str, Any], ctx: CheckContext) -> bool:
    r = ctx.render
    kinds = _as_set(r(m.get("kind", ["message", "response"])))
    if kinds is not None and "any" not in kinds and rec.kind not in kinds:
        return False
    verdicts = _as_set(r(m.get("verdict", "accepted")))
    if verdicts is not None and "any" not in verdicts and rec.verdict not in verdicts:
        return False
    checks = (("arrow", rec.arrow), ("type", rec.message_type), ("sender", rec.sender_actor),
              ("receiver", rec.receiver_actor), ("sender_lg", rec.sender_lg),
              ("receiver_lg", rec.receiver_lg),
              ("correlation_id", rec.correlation_id), ("message_id", rec.message_id))
    for key, value in checks:
        want = _as_set(r(m.get(key)))
        if want is not None and str(value) not in want:
            return False
    if "after" in m:
        step = ctx.steps.get(str(r(m["after"])))
        if step is not None and rec.seq <= step.mark:
            return False
    if "before" in m:
        step = ctx.steps.get(str(r(m["before"])))
        if step is not None and rec.seq > step.mark:
            return False
    if "retry" in m and bool(r(m["retry"])) != (rec.retry_reason is not None):
        return False
    where = m.get("where")
    if where:
        if rec.body is None:
            return False
        ok, _ = evaluate_assertions(rec.body, where, r)
        if not ok:
            return False
    return True


def match_records(ctx: CheckContext, m: Mapping[str, Any], *, window: bool = True) -> list[Rec]:
    """Records (in the window unless ``window`` is False) that fit a scenario's message filter."""
    pool = ctx.in_window() if window else ctx.records
    return [rec for rec in pool if _rec_matches(rec, m, ctx)]


def describe(m: Mapping[str, Any], render: Render = _identity) -> str:
    """A short human description of a message filter."""
    parts = []
    if "type" in m:
        parts.append(str(render(m["type"])))
    if "arrow" in m:
        parts.append(f"on arrow {render(m['arrow'])}")
    if "sender" in m:
        parts.append(f"from {render(m['sender'])}")
    if "receiver" in m:
        parts.append(f"to {render(m['receiver'])}")
    if "receiver_lg" in m:
        parts.append(f"[{render(m['receiver_lg'])}]")
    if m.get("where"):
        parts.append("where " + " and ".join(str(render(w.get("xpath"))) for w in m["where"]))
    return " ".join(parts) or "any message"


def _within(ctx: CheckContext, recs: Sequence[Rec], p: Mapping[str, Any]) -> list[Evidence]:
    """Evidence of records that arrived later than ``within`` seconds after the step named by ``after``."""
    within = p.get("within")
    after = p.get("match", {}).get("after") if isinstance(p.get("match"), Mapping) else None
    if within is None or after is None:
        return []
    step = ctx.steps.get(str(ctx.render(after)))
    if step is None or step.ended is None:
        return []
    late = []
    for rec in recs:
        at = rec.recorded_at
        if at is not None and (at - step.ended).total_seconds() > float(within):
            late.append(Evidence.of(rec, expected=f"within {within} s of step {after}",
                                    actual=f"{(at - step.ended).total_seconds():.2f} s"))
    return late


# ----------------------------------------------------------------------------------------- JSON sub-schemas

_ASSERTION = {"type": "object", "required": ["xpath"], "additionalProperties": False,
              "properties": {"xpath": {"type": "string"}, "because": {"type": "string"},
                             **{op: {} for op in _OPS}},
              "minProperties": 2}
_MATCH = {"type": "object", "additionalProperties": False,
          "properties": {"arrow": {"type": ["integer", "string", "array"]},
                         "type": {"type": ["string", "array"]},
                         "kind": {"type": ["string", "array"]}, "verdict": {"type": ["string", "array"]},
                         "sender": {"type": ["string", "array"]}, "receiver": {"type": ["string", "array"]},
                         "sender_lg": {"type": ["string", "array"]},
                         "receiver_lg": {"type": ["string", "array"]},
                         "correlation_id": {"type": "string"}, "message_id": {"type": "string"},
                         "where": {"type": "array", "items": _ASSERTION}, "after": {"type": "string"},
                         "before": {"type": "string"}, "retry": {"type": "boolean"}}}
_CAPTURE = {"type": "object", "additionalProperties": {"type": "string"}}
_NUM = {"type": ["number", "string"]}

SCHEMA_DEFS: dict[str, Any] = {"assertion": _ASSERTION, "match": _MATCH, "capture": _CAPTURE}
