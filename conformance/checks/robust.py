"""Robustness checks: clean refusals, nothing recorded, retries after downtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from conformance.checks.base import (
    _MATCH,
    _NUM,
    SUT_ACTORS,
    CheckContext,
    Evidence,
    Rec,
    _rec_matches,
    check,
    match_records,
)
from conformance.xmlsafe import q

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


@check("ROB-RETRY", "robust.retried_in_order", "停止後に順序どおり再送し失わないこと",
       "after downtime the SUT resends in order, with the same MessageId and a RetryReason, losing nothing",
       {"properties": {"match": _MATCH, "within": _NUM, "min_refused": {"type": "integer", "minimum": 1}},
        "required": ["match"]}, waits=True, ready=_ready_retried)
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
    body_of = {r.message_id: etree.tostring(r.body, method="c14n") for r in refused if r.body is not None}
    for i in lost:  # a body accepted again under another id was resent, but as a new message: say so
        again = next((r for r in accepted if r.body is not None and body_of.get(i) is not None
                      and etree.tostring(r.body, method="c14n") == body_of[i]), None)
        ev.append(Evidence(message_id=i, expected=f"resent with the same MessageId {i}",
                           actual=f"resent under a new MessageId {again.message_id}" if again else "lost"))
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
        renamed = sum(1 for e in ev if str(e.actual).startswith("resent under a new MessageId"))
        head = (f"{len(lost) - renamed} lost, {renamed} resent under a new MessageId (must keep it)"
                if renamed else f"{len(lost)} lost")
        return False, f"{head}, {len(no_reason)} resent without RetryReason, " + \
            ("out of order" if out_of_order else "in order"), ev
    return True, f"{len(first_ids)} deferred message(s) resent in order with a RetryReason", [
        Evidence.of(acc_by_id[i], note="resent") for i in first_ids]


