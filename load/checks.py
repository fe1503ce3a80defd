"""Conformance of the load itself, judged on the trace after the run.

What no load tool checks: every completed cascade's required messages are in the trace (nothing lost), no
message of the load tenant appears twice unless the resend carries a ``RetryReason`` (nothing duplicated), each
person's IdentityNotice ``Change/Seq`` rises in trace order (changes in order), and the hash chain verifies.

API::

    await check_trace(harness, session, gateway_url, tenant, since, stats) -> TraceVerdict
    TraceVerdict(ok, findings, counts).to_json()

The trace is read a page at a time and only what the checks need is kept (the keys of the messages routes
require, each MessageId once, each person's Seqs), so a national day is judged in bounded memory; what each
completed cascade required comes with its row of the results (``Stats.rows``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from conformance.engine import Harness
from load.plan import REQUIRED
from load.stats import Stats

#: records read per request
PAGE = 20_000
#: the (arrow, type) pairs any route requires: the only keys worth counting
_REQUIRED = frozenset(pair for pairs in REQUIRED.values() for pair in pairs)

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
                      stats: Stats) -> TraceVerdict:
    """Judge the load tenant's records after ``since`` against what the completed cascades required."""
    keys: Counter[tuple[int, str, str]] = Counter()
    retried: Counter[tuple[int, str, str]] = Counter()
    seqs: dict[str, list[tuple[int, int]]] = {}
    ids: set[str] = set()
    findings: list[dict[str, Any]] = []
    n_records = n_msgs = 0
    while True:
        page, _ = await h.records(tenant, since, limit=PAGE)
        for r in page:
            n_records += 1
            if r.get("kind") != "message" or r.get("verdict") != "accepted" or r.get("arrow") is None:
                continue
            n_msgs += 1
            payload = str(r.get("payload") or "")
            arrow, mtype = int(r["arrow"]), str(r.get("message_type"))
            retry = "RetryReason>" in payload
            if (arrow, mtype) in _REQUIRED:
                for code in set(_KEYS.findall(payload)):
                    keys[(arrow, mtype, code)] += 1
                    if retry:
                        retried[(arrow, mtype, code)] += 1
            if arrow == 8 and mtype == "IdentityNotice":
                m, c = _SEQ.search(payload), _JCODE.search(payload)
                if m and c:
                    seqs.setdefault(c.group(1), []).append((int(str(r["seq"])), int(m.group(1))))
            mid = r.get("message_id")  # the same MessageId twice is a resend: it must say why (RetryReason)
            if mid:
                if mid not in ids:
                    ids.add(str(mid))
                elif not retry:
                    findings.append(_finding("LOAD-DUPLICATE", f"MessageId {mid} recorded again, a resend "
                                             "without RetryReason"))
        if len(page) < PAGE:
            break
        since = int(page[-1]["seq"])
    required = 0
    for row in stats.rows:
        if row.status not in ("ok", "late"):
            continue
        for arrow, mtype, code in row.require:
            required += 1
            n = keys.get((arrow, mtype, code), 0)
            if n == 0:
                findings.append(_finding("LOAD-LOST", f"action {row.index} ({row.function}): no {mtype} on arrow "
                                         f"{arrow}", action=row.index))
            elif n - retried.get((arrow, mtype, code), 0) > 1:
                findings.append(_finding("LOAD-DUPLICATE", f"action {row.index} ({row.function}): {mtype} on "
                                         f"arrow {arrow} {n} times without RetryReason", action=row.index))
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
    counts = {"records": n_records, "messages": n_msgs, "required": required,
              "chain_records": int(str(verify.get("count") or 0))}
    return TraceVerdict(ok=not findings, findings=findings, counts=counts)
