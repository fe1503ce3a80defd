"""Sequence checks: which messages, in which order, and the automatic rules every scenario obeys."""

from __future__ import annotations

import itertools
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
    _within,
    check,
    describe,
    mask_my_numbers,
    match_records,
    xpath_values,
)
from conformance.rules import find_my_numbers
from conformance.xmlsafe import q


def _ready_match(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return len(match_records(ctx, p["match"])) >= int(p.get("count", p.get("min", 1)) or 1)



@check("SEQ-PRESENT", "sequence.present", "期待するメッセージが届くこと", "expected messages arrive",
       {"properties": {"match": _MATCH, "count": {"type": "integer", "minimum": 0},
                       "min": {"type": "integer", "minimum": 0}, "within": _NUM}, "required": ["match"]},
       waits=True, ready=_ready_match)
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


def _ready_order(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return all(match_records(ctx, m) for m in p["messages"])


def _first_in_order(ctx: CheckContext, patterns: list[tuple[str, list[Rec]]]) -> tuple[bool, str, list[Evidence]]:
    """Choose one record per pattern with increasing trace seq (the earliest that fits)."""
    ev: list[Evidence] = []
    last = ctx.window
    chosen: list[Rec] = []
    for i, (what, recs) in enumerate(patterns):
        if not recs:
            return False, f"step {i + 1} of the order: no {what}", [*ev, Evidence(expected=what, actual="nothing")]
        nxt = next((r for r in recs if r.seq > last), None)
        if nxt is None:
            return False, f"{what} came before the message it must follow", [
                *ev, *(Evidence.of(r, expected=f"after trace #{last}", actual=f"trace #{r.seq}") for r in recs)]
        chosen.append(nxt)
        ev.append(Evidence.of(nxt, note=f"{i + 1}. {what}"))
        last = nxt.seq
    return True, " → ".join(f"{r.message_type}@{r.arrow}" for r in chosen), ev


def _key(rec: Rec, expr: str) -> str | None:
    if rec.body is None:
        return None
    vals = [v for v in xpath_values(rec.body, expr) if v]
    return vals[0] if vals else None


@check("SEQ-ORDER", "sequence.order", "メッセージの順序", "messages in the expected order",
       {"properties": {"messages": {"type": "array", "minItems": 2, "items": _MATCH}, "within": _NUM,
                       "per": {"type": "string"}},
        "required": ["messages"]}, waits=True, ready=_ready_order)
def _order(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Each pattern has a message, and there is a choice of one per pattern with increasing trace seq.

    With ``per`` (an XPath giving a key, e.g. the person's 住民票コード ``(.//j:JuminhyoCode)[1]``) the order
    must hold for EVERY key found in the first pattern's messages: one message of a person after another
    person's does not satisfy it.
    """
    pats = [(describe(m, ctx.render), match_records(ctx, m)) for m in p["messages"]]
    per = p.get("per")
    if not per:
        ok, msg, ev = _first_in_order(ctx, pats)
        return ok, ("in order: " + msg) if ok else msg, ev
    expr = str(ctx.render(per))
    keys = list(dict.fromkeys(k for r in pats[0][1] if (k := _key(r, expr)) is not None))
    if not keys:
        return False, f"no {pats[0][0]} with a value at {expr}", [Evidence(xpath=expr, expected="a key",
                                                                          actual="nothing")]
    all_ev: list[Evidence] = []
    for k in keys:
        sub = [(f"{what} [{k}]", [r for r in recs if _key(r, expr) == k]) for what, recs in pats]
        ok, msg, ev = _first_in_order(ctx, sub)
        if not ok:
            return False, f"for {expr} = {k}: {msg}", ev
        all_ev.extend(ev)
    return True, f"in order for each of {len(keys)} key(s) at {expr}", all_ev


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


def _ready_changes(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    person = str(ctx.render(p["person"]))
    arrow = int(p.get("arrow", 8))
    n = sum(1 for r in ctx.in_window() if r.kind == "message" and r.verdict == "accepted" and r.arrow == arrow
            and r.message_type == "IdentityNotice" and _change_seq(r)[0] == person)
    return n >= len(p["reasons"])


@check("SEQ-CHANGES", "sequence.changes", "異動の順序（CSへの本人確認情報通知）",
       "a person's changes reach CS in the order they happened",
       {"properties": {"person": {"type": "string"},
                       "reasons": {"type": "array", "items": {"type": "string"}},
                       "within": _NUM, "arrow": {"type": "integer"}},
        "required": ["person", "reasons"]}, waits=True, ready=_ready_changes)
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


@check("SEQ-PERSON", "sequence.person_order", "本人確認情報通知の連番（1から1ずつ）",
       "each person's IdentityNotice Seq runs 1, 2, 3 … (a new record starts at 1; 世帯変更 consumes none)",
       {"properties": {}}, auto=True)
def _person_order(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Accepted IdentityNotices to CS, per 住民票コード (a code change continues its predecessor's run):
    Change/Seq is 1 for the person's first notice and one more each time (contract §4, §5, §6.1)."""
    last: dict[str, tuple[int, Rec]] = {}
    alias: dict[str, str] = {}
    seen_ids: set[str] = set()
    ev = []
    for rec in ctx.records:
        if not (rec.kind == "message" and rec.verdict == "accepted" and rec.arrow == 8
                and rec.message_type == "IdentityNotice" and rec.sender_actor in SUT_ACTORS):
            continue
        if rec.message_id:
            if rec.message_id in seen_ids:
                continue
            seen_ids.add(rec.message_id)
        code, seq, _ = _change_seq(rec)
        if code is None or seq is None:
            continue
        prev_code = rec.body.findtext(f".//{q('PreviousJuminhyoCode')}") if rec.body is not None else None
        if prev_code and prev_code != code:
            alias[code] = alias.get(prev_code, prev_code)
        key = alias.get(code, code)
        prev = last.get(key)
        want = 1 if prev is None else prev[0] + 1
        if seq != want:
            note = "a person's first notice" if prev is None else f"after Seq {prev[0]} (trace #{prev[1].seq})"
            ev.append(Evidence.of(rec, xpath="j:Change/j:Seq", expected=str(want), actual=str(seq), note=note))
        if prev is None or seq > prev[0]:
            last[key] = (seq, rec)
    if ev:
        return False, "Change/Seq does not run 1, 2, 3 … per person", ev
    return True, f"changes of {len(last)} person(s) in order", []


