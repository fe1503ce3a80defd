"""Named checks: the judge's small rules, each with a stable code (like the OpenID suite's Condition classes).

A scenario's expectation names a check (``check: sequence.order``) and gives its parameters; the engine runs
the check on the tenant's trace records and the results of the scenario's steps and gets an ``Outcome``:
passed or not, a message, and evidence a reviewer can follow (trace seq, message id, XPath, expected, actual).
Some checks apply to EVERY scenario automatically (``auto=True``): no 個人番号 on a yellow or blue arrow, no
duplicate without a RetryReason, no SUT message refused by the gateway, each person's changes in order.

Checks see plain data (``Rec`` views of trace records in their HTTP JSON form, ``StepResult``s), so they are
unit-testable on crafted records without a gateway.
"""

from __future__ import annotations

import itertools
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
    """A trace record (the trace API's JSON form) with its envelope parsed on demand."""

    __slots__ = ("__dict__", "data")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    # plain fields
    @property
    def seq(self) -> int:
        return int(self.data.get("seq") or 0)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def verdict(self) -> str:
        return str(self.data.get("verdict") or "")

    @property
    def arrow(self) -> int | None:
        a = self.data.get("arrow")
        return None if a is None else int(a)

    @property
    def message_type(self) -> str | None:
        return self.data.get("message_type")

    @property
    def message_id(self) -> str | None:
        return self.data.get("message_id")

    @property
    def correlation_id(self) -> str | None:
        return self.data.get("correlation_id")

    @property
    def sender_actor(self) -> str | None:
        return self.data.get("sender_actor")

    @property
    def receiver_actor(self) -> str | None:
        return self.data.get("receiver_actor")

    @property
    def sender_lg(self) -> str | None:
        return self.data.get("sender_lg")

    @property
    def receiver_lg(self) -> str | None:
        return self.data.get("receiver_lg")

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.data.get("findings") or [])

    @property
    def note(self) -> str | None:
        return self.data.get("note")

    @property
    def recorded_at(self) -> datetime | None:
        v = self.data.get("recorded_at")
        try:
            return datetime.fromisoformat(str(v)) if v else None
        except ValueError:
            return None

    @cached_property
    def payload(self) -> bytes:
        p = self.data.get("payload")
        if p is None:
            b64 = self.data.get("payload_base64")
            if b64:
                import base64

                return base64.b64decode(b64)
            return b""
        return p.encode("utf-8") if isinstance(p, str) else bytes(p)

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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.expectation, "check": self.check, "code": self.code, "title": self.title,
                "verdict": "pass" if self.passed else "fail", "message": self.message, "line": self.line,
                "auto": self.auto, "evidence": [e.to_json() for e in self.evidence]}


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

    def in_window(self) -> list[Rec]:
        return [r for r in self.records if r.seq > self.window]

    def arrow_class(self, arrow: int | None) -> str | None:
        if arrow is None:
            return None
        a = self.catalogue.arrows.get(arrow)
        return a.data_class if a is not None else None


CheckFn = Callable[[CheckContext, Mapping[str, Any]], tuple[bool, str, list[Evidence]]]


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: stable ``code``, the ``name`` scenarios use, titles, parameter schema."""

    code: str
    name: str
    title_ja: str
    title_en: str
    fn: CheckFn
    params: dict[str, Any]
    auto: bool = False
    waits: bool = False  # the engine waits (up to ``within``) for its messages before evaluating


CHECKS: dict[str, Check] = {}
#: check name -> "the messages it waits for are all there" (the engine stops waiting even if it fails)
READY: dict[str, Callable[[CheckContext, Mapping[str, Any]], bool]] = {}


def check(code: str, name: str, title_ja: str, title_en: str, params: dict[str, Any], *, auto: bool = False,
          waits: bool = False) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``name`` (scenarios) and ``code`` (reports)."""
    def register(fn: CheckFn) -> CheckFn:
        if name in CHECKS or any(c.code == code for c in CHECKS.values()):
            raise ValueError(f"check {name} / {code} is registered twice")
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {"check": {"const": name}, "id": {"type": "string"},
                                 "title": {"type": "string"}, **params.get("properties", {})},
                  "required": ["check", *params.get("required", [])]}
        CHECKS[name] = Check(code, name, title_ja, title_en, fn, schema, auto, waits)
        return fn
    return register


def run_check(name: str, ctx: CheckContext, params: Mapping[str, Any], *, expectation: str | None = None,
              title: str | None = None, line: int | None = None) -> Outcome:
    """Run one check; an exception inside becomes a failed outcome with its message (never a crash)."""
    c = CHECKS[name]
    try:
        passed, message, evidence = c.fn(ctx, params)
    except HarnessError as e:
        passed, message, evidence = False, f"could not evaluate: {e}", []
    except (etree.XPathError, ValueError, KeyError, TypeError) as e:
        passed, message, evidence = False, f"could not evaluate: {type(e).__name__}: {e}", []
    return Outcome(code=c.code, check=name, passed=passed, message=message, evidence=evidence,
                   expectation=expectation, title=title, line=line, auto=c.auto)


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


# ---------------------------------------------------------------------------------------------- content

def _ready_match(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return len(match_records(ctx, p["match"])) >= int(p.get("count", p.get("min", 1)) or 1)


def _ready_order(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return all(match_records(ctx, m) for m in p["messages"])


READY["content.message"] = _ready_match
READY["sequence.present"] = _ready_match
READY["sequence.order"] = _ready_order

@check("CONT-MESSAGE", "content.message", "メッセージの内容", "content of a message",
       {"properties": {"match": _MATCH, "assert": {"type": "array", "items": _ASSERTION},
                       "count": {"type": "integer", "minimum": 1}, "min": {"type": "integer", "minimum": 1},
                       "mode": {"enum": ["all", "any", "last"]},
                       "capture": _CAPTURE, "within": _NUM},
        "required": ["match"]}, waits=True)
def _content_message(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Messages that fit ``match`` exist (``count`` exactly, if given) and satisfy every assertion.

    mode ``all`` (default): every matching message must satisfy them; ``any``: at least one; ``last``: the
    last one. ``capture`` stores values (XPath) of the message that passed for later expectations.
    """
    recs = match_records(ctx, p["match"])
    what = describe(p["match"], ctx.render)
    if not recs:
        return False, f"no {what} was found", [Evidence(expected=what, actual="nothing")]
    if "count" in p and len(recs) != int(p["count"]):
        return False, f"{len(recs)} × {what}, expected {p['count']}", \
            [Evidence.of(r, note="matching message") for r in recs]
    if "min" in p and len(recs) < int(p["min"]):
        return False, f"{len(recs)} × {what}, expected at least {p['min']}", \
            [Evidence.of(r, note="matching message") for r in recs]
    mode = p.get("mode", "all")
    targets = [recs[-1]] if mode == "last" else recs
    assertions = p.get("assert", [])
    evidence: list[Evidence] = []
    passing: list[Rec] = []
    failing = 0
    for rec in targets:
        if rec.body is None:
            evidence.append(Evidence.of(rec, note="payload is not an XML envelope"))
            failing += 1
            continue
        ok, ev = evaluate_assertions(rec.body, assertions, ctx.render, rec)
        evidence.extend(ev)
        if ok:
            passing.append(rec)
        else:
            failing += 1
    late = _within(ctx, recs, p)
    ok = (failing == 0 if mode in ("all", "last") else bool(passing)) and not late
    if ok and p.get("capture"):
        src = passing[0] if passing else targets[0]
        assert src.body is not None
        for name, expr in p["capture"].items():
            vals = xpath_values(src.body, str(ctx.render(expr)))
            ctx.captured[name] = vals[0] if len(vals) == 1 else (vals or None)
    if late:
        return False, f"{what} arrived too late", late + evidence
    n_assert = len(assertions)
    if ok:
        return True, f"{len(recs)} × {what}; {n_assert} assertion(s) hold", evidence
    return False, f"{what}: {failing} of {len(targets)} message(s) break an assertion", \
        [e for e in evidence if e.note] + [e for e in evidence if not e.note]


@check("CONT-RESULT", "content.result", "窓口操作・応答の内容",
       "content of a step's answer or printed document",
       {"properties": {"step": {"type": "string"}, "status": {"type": "string"}, "code": {"type": "string"},
                       "http": {"type": "integer"}, "assert": {"type": "array", "items": _ASSERTION},
                       "capture": _CAPTURE},
        "required": ["step"]})
def _content_result(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """The answer a step got (CounterResult, a sync response): HTTP status, Result/Status and Code, and
    assertions."""
    sid = str(ctx.render(p["step"]))
    step = ctx.steps.get(sid)
    if step is None:
        return False, f"step {sid} did not run", [Evidence(expected=f"step {sid}", actual="not run")]
    ev: list[Evidence] = []
    ok = True
    if "http" in p and step.status != int(p["http"]):
        ok = False
        ev.append(Evidence(message_id=step.message_id, expected=f"HTTP {p['http']}",
                           actual=f"HTTP {step.status}", note=f"step {sid}"))
    body = step.body
    needs_body = any(k in p for k in ("status", "code", "assert", "capture"))
    if body is None and not needs_body:
        return ok, f"step {sid}: HTTP {step.status}", ev
    if body is None:
        got = (step.response or b"")[:200].decode("utf-8", "replace")
        return False, f"step {sid}: the answer is not an XML document", [
            *ev, Evidence(message_id=step.message_id, expected="an envelope", actual=got,
                          note=f"HTTP {step.status}")]
    checks: list[dict[str, Any]] = []
    if "status" in p:
        checks.append({"xpath": "j:Result/j:Status", "equals": p["status"]})
    if "code" in p:
        checks.append({"xpath": "j:Result/j:Code", "equals": p["code"]})
    good, aev = evaluate_assertions(body, [*checks, *p.get("assert", [])], ctx.render)
    ev.extend(Evidence(message_id=step.message_id, xpath=e.xpath, expected=e.expected, actual=e.actual,
                       note=e.note) for e in aev)
    ok = ok and good
    if ok and p.get("capture"):
        for name, expr in p["capture"].items():
            vals = xpath_values(body, str(ctx.render(expr)))
            ctx.captured[name] = vals[0] if len(vals) == 1 else (vals or None)
    if ok:
        return True, f"step {sid}: the answer holds {len(aev)} assertion(s)", ev
    return False, f"step {sid}: the answer breaks an assertion", [e for e in ev if e.note] + \
        [e for e in ev if not e.note]


# --------------------------------------------------------------------------------------------- sequence

@check("SEQ-PRESENT", "sequence.present", "期待するメッセージが届くこと", "expected messages arrive",
       {"properties": {"match": _MATCH, "count": {"type": "integer", "minimum": 0},
                       "min": {"type": "integer", "minimum": 0}, "within": _NUM}, "required": ["match"]},
       waits=True)
def _present(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """``count`` (exactly) or at least ``min`` (default 1) messages fit ``match``, each within the budget."""
    recs = match_records(ctx, p["match"])
    what = describe(p["match"], ctx.render)
    ev = [Evidence.of(r) for r in recs]
    if "count" in p and len(recs) != int(p["count"]):
        return False, f"{len(recs)} × {what}, expected exactly {p['count']}", ev or [
            Evidence(expected=f"{p['count']} × {what}", actual="nothing")]
    need = int(p.get("min", 1 if "count" not in p else 0))
    if len(recs) < need:
        return False, f"{len(recs)} × {what}, expected at least {need}", ev or [
            Evidence(expected=f"{need} × {what}", actual="nothing")]
    late = _within(ctx, recs, p)
    if late:
        return False, f"{what} arrived later than {p['within']} s", late
    return True, f"{len(recs)} × {what}", ev


@check("SEQ-ABSENT", "sequence.absent", "送ってはならないメッセージがないこと",
       "a message that must not be sent is absent",
       {"properties": {"match": _MATCH, "reason": {"type": "string"}}, "required": ["match"]})
def _absent(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    recs = match_records(ctx, p["match"])
    what = describe(p["match"], ctx.render)
    if recs:
        why = f" ({p['reason']})" if p.get("reason") else ""
        return False, f"{len(recs)} × {what} sent, none expected{why}", \
            [Evidence.of(r, expected="no message", actual="sent") for r in recs]
    return True, f"no {what}", []


@check("SEQ-ORDER", "sequence.order", "メッセージの順序", "messages in the expected order",
       {"properties": {"messages": {"type": "array", "minItems": 2, "items": _MATCH}, "within": _NUM},
        "required": ["messages"]}, waits=True)
def _order(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Each pattern has a message, and there is a choice of one per pattern with increasing trace seq."""
    ev: list[Evidence] = []
    last = ctx.window
    chosen: list[Rec] = []
    for i, m in enumerate(p["messages"]):
        what = describe(m, ctx.render)
        recs = match_records(ctx, m)
        if not recs:
            return False, f"step {i + 1} of the order: no {what}", [
                *ev, Evidence(expected=what, actual="nothing")]
        nxt = next((r for r in recs if r.seq > last), None)
        if nxt is None:
            return False, f"{what} came before the message it must follow", [
                *ev, *(Evidence.of(r, expected=f"after trace #{last}", actual=f"trace #{r.seq}")
                       for r in recs)]
        chosen.append(nxt)
        ev.append(Evidence.of(nxt, note=f"{i + 1}. {what}"))
        last = nxt.seq
    return True, "in order: " + " → ".join(f"{r.message_type}@{r.arrow}" for r in chosen), ev


@check("SEQ-ONLY", "sequence.only", "経路が許さないメッセージがないこと",
       "no message the route does not allow",
       {"properties": {"allow": {"type": "array", "items": _MATCH}, "senders": {"type": "array",
                                                                              "items": {"type": "string"}}},
        "required": ["allow"]})
def _only(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Every message the SUT sent in the window (accepted or refused) fits one of ``allow``."""
    senders = set(p.get("senders") or SUT_ACTORS)
    extra = []
    allow = [{**m, "verdict": m.get("verdict", "any"), "kind": m.get("kind", "any")} for m in p["allow"]]
    for rec in ctx.in_window():
        if rec.kind not in ("message", "refused") or rec.sender_actor not in senders or rec.is_down_refusal:
            continue
        if rec.message_type == "CounterRequest":  # the harness's own counter input
            continue
        if not any(_rec_matches(rec, m, ctx) for m in allow):
            extra.append(Evidence.of(rec, expected="a message the route allows", actual="extra",
                                     note=f"{rec.sender_actor}→{rec.receiver_actor}"))
    if extra:
        return False, f"{len(extra)} message(s) the route does not allow", extra
    return True, "every message of the SUT is one the route allows", []


def _change_seq(rec: Rec) -> tuple[str | None, int | None, str | None]:
    body = rec.body
    if body is None:
        return None, None, None
    code = body.findtext(f"{q('Identity')}/{q('JuminhyoCode')}")
    seq = body.findtext(f"{q('Change')}/{q('Seq')}")
    reason_el = body.find(f"{q('Change')}/{q('Reason')}")
    reason = reason_el.get("code") if reason_el is not None else None
    try:
        return code, int(seq) if seq else None, reason
    except ValueError:
        return code, None, reason


@check("SEQ-CHANGES", "sequence.changes", "異動の順序（CSへの本人確認情報通知）",
       "a person's changes reach CS in the order they happened",
       {"properties": {"person": {"type": "string"},
                       "reasons": {"type": "array", "items": {"type": "string"}},
                       "within": _NUM, "arrow": {"type": "integer"}},
        "required": ["person", "reasons"]}, waits=True)
def _changes(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """The person's accepted IdentityNotices in the window carry ``reasons`` in order, Seq one more each."""
    person = str(ctx.render(p["person"]))
    arrow = int(p.get("arrow", 8))
    want = [str(ctx.render(x)) for x in p["reasons"]]
    recs = [r for r in ctx.in_window() if r.kind == "message" and r.verdict == "accepted" and r.arrow == arrow
            and r.message_type == "IdentityNotice"]
    got: list[tuple[Rec, int | None, str | None]] = []
    for r in recs:
        code, seq, reason = _change_seq(r)
        if code == person or (r.body is not None and r.body.findtext(q("PreviousJuminhyoCode")) == person):
            got.append((r, seq, reason))
    ev = [Evidence.of(r, xpath="j:Change", actual=f"Seq {s} reason {c}") for r, s, c in got]
    reasons = [c for _, _, c in got]
    if reasons != want:
        return False, f"reasons in the order received: {reasons}, expected {want}", ev
    seqs = [s for _, s, _ in got]
    for a, b in itertools.pairwise(seqs):
        if a is None or b is None or b != a + 1:
            return False, f"Change/Seq runs {seqs}: not one more each time", ev
    return True, f"{len(got)} change(s) in order, Seq {seqs}", ev


def _ready_changes(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    person = str(ctx.render(p["person"]))
    arrow = int(p.get("arrow", 8))
    n = sum(1 for r in ctx.in_window() if r.kind == "message" and r.verdict == "accepted" and r.arrow == arrow
            and r.message_type == "IdentityNotice" and _change_seq(r)[0] == person)
    return n >= len(p["reasons"])


READY["sequence.changes"] = _ready_changes


# ----------------------------------------------------------------------------------- automatic checks

@check("CLASS-MYNUMBER", "class.no_my_number", "黄線・青線に個人番号を含まないこと",
       "no 個人番号 on a yellow or blue arrow", {"properties": {}}, auto=True)
def _class_no_my_number(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Every record of the tenant (fixtures included) on a yellow/blue arrow: no valid 個人番号 anywhere."""
    ev = []
    n = 0
    for rec in ctx.records:
        cls = ctx.arrow_class(rec.arrow)
        flagged = [f for f in rec.findings if str(f.get("code")) == "CLASS-MYNUMBER"]
        if cls not in ("yellow", "blue") and not flagged:
            continue
        n += 1
        leaked = find_my_numbers(rec.payload.decode("utf-8", "replace")) if cls in ("yellow", "blue") else []
        for num in leaked:
            ev.append(Evidence.of(rec, expected="no 個人番号", actual="********" + num[8:],
                                  note=f"{cls} arrow carries 特定個人情報"))
        for f in flagged:
            if not leaked:
                ev.append(Evidence.of(rec, xpath=f.get("xpath"), expected="no 個人番号",
                                      actual=mask_my_numbers(str(f.get("message", ""))),
                                      note="CLASS-MYNUMBER"))
    if ev:
        return False, f"{len(ev)} 個人番号 on yellow/blue arrows", ev
    return True, f"{n} record(s) on yellow/blue arrows carry no 個人番号", []


@check("SEQ-DUP", "sequence.no_duplicate", "再送理由のない重複がないこと",
       "no duplicate without a RetryReason",
       {"properties": {}}, auto=True)
def _no_duplicate(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """A SUT message sent again (same MessageId, or the same body on the same arrow) needs a RetryReason."""
    seen_id: dict[tuple[int | None, str], Rec] = {}
    seen_body: dict[tuple[int | None, bytes], Rec] = {}
    ev = []
    for rec in ctx.records:
        if rec.kind not in ("message", "refused") or rec.sender_actor not in SUT_ACTORS:
            continue
        if rec.message_type == "CounterRequest":
            continue
        key_id = (rec.arrow, rec.message_id or "")
        body = rec.body
        key_body = (rec.arrow, etree.tostring(body, method="c14n") if body is not None else rec.payload)
        first = seen_id.get(key_id) if rec.message_id else None
        if first is None:
            first = seen_body.get(key_body)
        if first is not None and rec.retry_reason is None:
            ev.append(Evidence.of(rec, expected="a RetryReason on a resend", actual="none",
                                  note=f"repeats trace #{first.seq}"))
        seen_id.setdefault(key_id, rec)
        seen_body.setdefault(key_body, rec)
    if ev:
        return False, f"{len(ev)} duplicate(s) without a RetryReason", ev
    return True, "no duplicate without a RetryReason", []


@check("SEQ-REFUSED", "sequence.sut_not_refused", "SUTのメッセージが拒否されないこと",
       "the gateway refused no message of the SUT (schema, rules, arrow)", {"properties": {}}, auto=True)
def _sut_not_refused(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """A refusal of a SUT message for anything but downtime: malformed, invalid, wrong arrow or receiver."""
    ev = []
    for rec in ctx.records:
        if rec.sender_actor not in SUT_ACTORS or rec.message_type == "CounterRequest":
            continue
        if (rec.kind == "refused" or rec.verdict == "refused") and not rec.is_down_refusal:
            codes = ", ".join(str(f.get("code")) for f in rec.findings) or "no code"
            first = rec.findings[0] if rec.findings else {}
            ev.append(Evidence.of(rec, xpath=first.get("xpath"), expected="accepted",
                                  actual=f"refused ({codes})",
                                  note=mask_my_numbers(str(first.get("message", "")))[:300] or None))
    if ev:
        return False, f"the gateway refused {len(ev)} message(s) of the SUT", ev
    return True, "every message of the SUT was accepted (or deferred by downtime)", []


@check("SEQ-PERSON", "sequence.person_order", "本人確認情報通知の連番が増えること",
       "each person's IdentityNotice Seq increases", {"properties": {}}, auto=True)
def _person_order(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Accepted IdentityNotices to CS: per 住民票コード, Change/Seq strictly increases as received."""
    last: dict[str, tuple[int, Rec]] = {}
    ev = []
    for rec in ctx.records:
        if not (rec.kind == "message" and rec.verdict == "accepted" and rec.arrow == 8
                and rec.message_type == "IdentityNotice" and rec.sender_actor in SUT_ACTORS):
            continue
        code, seq, _ = _change_seq(rec)
        if code is None or seq is None:
            continue
        prev = last.get(code)
        if prev is not None and seq <= prev[0]:
            ev.append(Evidence.of(rec, xpath="j:Change/j:Seq", expected=f"> {prev[0]}", actual=str(seq),
                                  note=f"after trace #{prev[1].seq}"))
        if prev is None or seq > prev[0]:
            last[code] = (seq, rec)
    if ev:
        return False, "changes reached CS out of order", ev
    return True, f"changes of {len(last)} person(s) in order", []


# ------------------------------------------------------------------------------------------- robustness

@check("ROB-REFUSED", "robust.refused_cleanly", "不正なメッセージを明確に拒否すること",
       "the SUT refuses a bad message cleanly with an ErrorReport",
       {"properties": {"step": {"type": "string"}, "status": {"type": "integer"},
                       "codes": {"type": "array", "items": {"type": "string"}}},
        "required": ["step"]})
def _refused_cleanly(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """The step's answer: HTTP ``status`` (default 400) and an ErrorReport with at least one Finding."""
    sid = str(ctx.render(p["step"]))
    step = ctx.steps.get(sid)
    if step is None:
        return False, f"step {sid} did not run", []
    want = int(p.get("status", 400))
    ev = [Evidence(message_id=step.message_id, expected=f"HTTP {want}", actual=f"HTTP {step.status}")]
    if step.status != want:
        return False, f"step {sid}: HTTP {step.status}, expected {want}", ev
    body = step.body
    if body is None or body.tag != q("ErrorReport"):
        got = "no XML" if body is None else etree.QName(body).localname
        return False, f"step {sid}: the answer is not an ErrorReport", [
            *ev, Evidence(expected="ErrorReport", actual=got)]
    codes = [c.text or "" for c in body.iter(q("Code"))]
    if not codes:
        return False, f"step {sid}: the ErrorReport has no Finding", ev
    prefixes = [str(ctx.render(c)) for c in p.get("codes", [])]
    if prefixes and not any(c.startswith(pre) for c in codes for pre in prefixes):
        return False, f"step {sid}: finding codes {codes}, expected one starting with {prefixes}", [
            *ev, Evidence(xpath="j:Finding/j:Code", expected=prefixes, actual=codes)]
    return True, f"step {sid}: refused with HTTP {want} and ErrorReport {codes}", [
        *ev, Evidence(xpath="j:Finding/j:Code", actual=codes)]


@check("ROB-NOTHING", "robust.nothing_recorded", "拒否したメッセージで何も記録しないこと",
       "nothing follows a refused or duplicate message",
       {"properties": {"after": {"type": "string"}, "allow": {"type": "array", "items": _MATCH}},
        "required": ["after"]})
def _nothing_recorded(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """After step ``after`` (up to the next step that drives the SUT) the SUT sent nothing but ``allow``."""
    sid = str(ctx.render(p["after"]))
    step = ctx.steps.get(sid)
    if step is None:
        return False, f"step {sid} did not run", []
    later = [s.mark for s in ctx.steps.values() if s.mark > step.mark and s.action in
             ("counter", "send", "deliver_raw", "raw")]
    end = min(later) if later else None
    allow = p.get("allow", [])
    ev = []
    for rec in ctx.records:
        if rec.seq <= step.mark or (end is not None and rec.seq > end):
            continue
        if (rec.kind != "message" or rec.sender_actor not in SUT_ACTORS
                or rec.message_type == "CounterRequest"):
            continue
        if any(_rec_matches(rec, {**m, "verdict": "any"}, ctx) for m in allow):
            continue
        ev.append(Evidence.of(rec, expected="nothing", actual="sent", note=f"after step {sid}"))
    if ev:
        return False, f"the SUT acted on what step {sid} sent: {len(ev)} message(s)", ev
    return True, f"the SUT sent nothing after step {sid}", []


@check("ROB-RETRY", "robust.retried_in_order", "停止後に順序どおり再送し失わないこと",
       "after downtime the SUT resends in order, with the same MessageId and a RetryReason, losing nothing",
       {"properties": {"match": _MATCH, "within": _NUM, "min_refused": {"type": "integer", "minimum": 1}},
        "required": ["match"]}, waits=True)
def _retried(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    m = {**p["match"], "kind": "any", "verdict": "any"}
    recs = [r for r in match_records(ctx, m) if r.sender_actor in SUT_ACTORS]
    refused = [r for r in recs if r.is_down_refusal]
    accepted = [r for r in recs if r.kind == "message" and r.verdict == "accepted"]
    ev: list[Evidence] = []
    need = int(p.get("min_refused", 1))
    first_ids: list[str] = []
    for r in refused:
        if r.message_id and r.message_id not in first_ids:
            first_ids.append(r.message_id)
    if len(first_ids) < need:
        return False, f"{len(first_ids)} message(s) deferred by downtime; the scenario needs {need}", [
            Evidence(expected=f"≥ {need} refusal(s) with 503", actual=len(first_ids))]
    acc_by_id: dict[str, Rec] = {}
    for r in accepted:
        if r.message_id:
            acc_by_id.setdefault(r.message_id, r)
    lost = [i for i in first_ids if i not in acc_by_id]
    for i in lost:
        ev.append(Evidence(message_id=i, expected="resent and accepted", actual="lost"))
    no_reason = [acc_by_id[i] for i in first_ids if i in acc_by_id and acc_by_id[i].retry_reason is None]
    for r in no_reason:
        ev.append(Evidence.of(r, xpath="/j:Envelope/j:Header/j:RetryReason", expected="a RetryReason",
                              actual="none"))
    order = [acc_by_id[i].seq for i in first_ids if i in acc_by_id]
    out_of_order = order != sorted(order)
    if out_of_order:
        ev.append(Evidence(expected="resent in the order first sent",
                           actual=" → ".join(acc_by_id[i].message_id or "?" for i in sorted(
                               (i for i in first_ids if i in acc_by_id), key=lambda i: acc_by_id[i].seq))))
    if lost or no_reason or out_of_order:
        return False, f"{len(lost)} lost, {len(no_reason)} resent without RetryReason, " + \
            ("out of order" if out_of_order else "in order"), ev
    return True, f"{len(first_ids)} deferred message(s) resent in order with a RetryReason", [
        Evidence.of(acc_by_id[i], note="resent") for i in first_ids]


def _ready_retried(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    """Every message deferred by downtime has been accepted since (by id, or a body sent again)."""
    m = {**p["match"], "kind": "any", "verdict": "any"}
    recs = [r for r in match_records(ctx, m) if r.sender_actor in SUT_ACTORS]
    refused = [r for r in recs if r.is_down_refusal]
    accepted = [r for r in recs if r.kind == "message" and r.verdict == "accepted"]
    if not refused:
        return False
    ids = {r.message_id for r in accepted}
    bodies = {etree.tostring(r.body, method="c14n") for r in accepted if r.body is not None}
    return all(r.message_id in ids or (r.body is not None and etree.tostring(r.body, method="c14n") in bodies)
               for r in refused)


READY["robust.retried_in_order"] = _ready_retried
