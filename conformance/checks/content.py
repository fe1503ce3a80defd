"""Content checks: what a message or a step's answer says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.checks.base import (
    _ASSERTION,
    _CAPTURE,
    _MATCH,
    _NUM,
    CheckContext,
    Evidence,
    Rec,
    _within,
    check,
    describe,
    evaluate_assertions,
    match_records,
    xpath_values,
)


def _ready_match(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return len(match_records(ctx, p["match"])) >= int(p.get("count", p.get("min", 1)) or 1)



@check("CONT-MESSAGE", "content.message", "メッセージの内容", "content of a message",
       {"properties": {"match": _MATCH, "assert": {"type": "array", "items": _ASSERTION},
                       "count": {"type": "integer", "minimum": 1}, "min": {"type": "integer", "minimum": 1},
                       "mode": {"enum": ["all", "any", "last"]},
                       "capture": _CAPTURE, "within": _NUM},
        "required": ["match"]}, waits=True, ready=_ready_match)
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


