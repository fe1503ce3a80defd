"""Conformance of the load itself, judged on the trace after the run.

What no load tool checks: every completed cascade's required messages are in the trace (nothing lost), no
message of the load tenant appears twice unless the resend carries a ``RetryReason`` (nothing duplicated), each
person's IdentityNotice ``Change/Seq`` rises in trace order (changes in order), and the hash chain verifies.

API::

    await check_trace(harness, session, gateway_url, tenant, since, plan, stats) -> TraceVerdict
    TraceVerdict(ok, findings, counts).to_json()
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from conformance.engine import Harness
from load.plan import Plan
from load.stats import Stats

_KEYS = re.compile(r"<(?:\w+:)?(?:JuminhyoCode|KioskId|RequestNo)>([^<]{1,60})</")
_JCODE = re.compile(r"<(?:\w+:)?JuminhyoCode>(\d{11})</")
_SEQ = re.compile(r"<(?:\w+:)?Change>.*?<(?:\w+:)?Seq>(\d+)</", re.S)


@dataclass
class TraceVerdict:
    ok: bool
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": self.findings[:50], "finding_count": len(self.findings),
                "counts": self.counts}


def _finding(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "location": "trace", **extra}


async def check_trace(h: Harness, session: aiohttp.ClientSession, gateway_url: str, tenant: str, since: int,
                      plan: Plan, stats: Stats) -> TraceVerdict:
    """Judge the load tenant's records after ``since`` against what the completed cascades required."""
    records, _ = await h.records(tenant, since)
    msgs = [r for r in records if r.get("kind") == "message" and r.get("verdict") == "accepted"
            and r.get("arrow") is not None]
    keys: Counter[tuple[int, str, str]] = Counter()
    retried: Counter[tuple[int, str, str]] = Counter()
    seqs: dict[str, list[tuple[int, int]]] = {}
    for r in msgs:
        payload = str(r.get("payload") or "")
        arrow, mtype = int(r["arrow"]), str(r.get("message_type"))
        for code in set(_KEYS.findall(payload)):
            keys[(arrow, mtype, code)] += 1
            if "RetryReason>" in payload:
                retried[(arrow, mtype, code)] += 1
        if arrow == 8 and mtype == "IdentityNotice":
            m, c = _SEQ.search(payload), _JCODE.search(payload)
            if m and c:
                seqs.setdefault(c.group(1), []).append((int(str(r["seq"])), int(m.group(1))))
    findings: list[dict[str, Any]] = []
    status = {row.index: row.status for row in stats.rows}
    required = 0
    for a in plan.actions:
        if status.get(a["i"]) not in ("ok", "late"):
            continue
        for arrow, mtype, code in a["require"]:
            required += 1
            n = keys.get((arrow, mtype, code), 0)
            if n == 0:
                findings.append(_finding("LOAD-LOST", f"action {a['i']} ({a['fn']}): no {mtype} on arrow {arrow}",
                                         action=a["i"]))
            elif n - retried.get((arrow, mtype, code), 0) > 1:
                findings.append(_finding("LOAD-DUPLICATE", f"action {a['i']} ({a['fn']}): {mtype} on arrow {arrow} "
                                         f"{n} times without RetryReason", action=a["i"]))
    by_id: dict[str, list[bool]] = {}
    for r in msgs:  # the same MessageId twice is a resend: it must say why (RetryReason)
        if r.get("message_id"):
            by_id.setdefault(str(r["message_id"]), []).append("RetryReason>" in str(r.get("payload") or ""))
    for mid, retry in by_id.items():
        if len(retry) > 1 and not all(retry[1:]):
            findings.append(_finding("LOAD-DUPLICATE", f"MessageId {mid} recorded {len(retry)} times, a resend "
                                     "without RetryReason"))
    for pairs in seqs.values():
        values = [s for _, s in sorted(pairs)]
        if values != sorted(values) or len(set(values)) != len(values):
            findings.append(_finding("LOAD-ORDER", f"a person's IdentityNotice Change/Seq out of order: {values}"))
    auth = {"Authorization": f"Bearer {h.token}"}
    async with session.get(f"{gateway_url}/trace/verify", headers=auth) as resp:
        verify = await resp.json() if resp.status == 200 else {"ok": False, "reason": f"HTTP {resp.status}"}
    if not verify.get("ok"):
        findings.append(_finding("LOAD-CHAIN", f"the trace chain does not verify: {verify.get('reason')} "
                                 f"(first bad seq {verify.get('first_bad_seq')})"))
    counts = {"records": len(records), "messages": len(msgs), "required": required,
              "chain_records": int(str(verify.get("count") or 0))}
    return TraceVerdict(ok=not findings, findings=findings, counts=counts)
