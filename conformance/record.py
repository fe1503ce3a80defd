"""The trace record: its fields, its JSON form, its hash chain and the check of a chain.

Why a module at the bottom: the gateway writes records (``simulators.trace`` stores them in SQLite), the
judge (``conformance.engine``, ``conformance.checks``) reads them and the reports verify and print them. All
three agree on one definition here, and none of them has to import the others to do so.

Hash: ``hash = sha256(prev_hash + canonical_json(record without hash))`` where canonical JSON has sorted
keys, ``ensure_ascii=False``, separators ``(",", ":")``, and the payload as standard base64 text. The first
record's ``prev_hash`` is 64 zeros (:data:`GENESIS`). A chain alone cannot detect removal of the *last*
records: keep ``last_seq``/``last_hash`` in the evidence bundle as the anchor.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from json.encoder import encode_basestring as _encode_basestring
from typing import Any, Literal, get_args

__all__ = [
    "FIELDS",
    "GENESIS",
    "KINDS",
    "VERDICTS",
    "Kind",
    "TraceRecord",
    "Verdict",
    "VerifyResult",
    "canonical",
    "chain_text",
    "format_record",
    "json_text",
    "record_from_json",
    "record_to_json",
    "verify_records",
]

Kind = Literal["message", "response", "refused", "delivery", "event"]
Verdict = Literal["accepted", "refused", "delivered", "failed", "info"]
KINDS: frozenset[str] = frozenset(get_args(Kind))
VERDICTS: frozenset[str] = frozenset(get_args(Verdict))
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One crossing of the gateway (or a gateway event), as stored and hashed."""

    seq: int
    recorded_at: str  # wall clock, ISO 8601 UTC
    virtual_time: str | None  # the tenant's virtual clock, ISO 8601 with offset
    tenant: str | None
    arrow: int | None
    kind: str  # Kind
    sender_actor: str | None
    sender_lg: str | None
    receiver_actor: str | None
    receiver_lg: str | None
    message_type: str | None
    message_id: str | None
    correlation_id: str | None
    verdict: str  # Verdict
    findings: list[dict[str, Any]]  # {code, message, xpath, line}
    payload: bytes  # the exact XML that crossed
    payload_sha256: str
    note: str | None
    prev_hash: str
    hash: str


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TraceRecord))
_HASHED: tuple[str, ...] = tuple(n for n in _FIELDS if n != "hash")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain check: ``first_bad_seq`` names the first record that does not verify."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason}


# ---------------------------------------------------------------------------------------------- hashing

def _canonical(values: Mapping[str, Any]) -> bytes:
    d = {n: values[n] for n in _HASHED}
    d["payload"] = base64.b64encode(values["payload"]).decode("ascii")
    return json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(values["prev_hash"].encode("ascii") + _canonical(values)).hexdigest()


_jstr = _encode_basestring  # the function json.dumps(ensure_ascii=False) uses for str (C when available)
_EMPTY_FINDINGS = "[]"


def _s(v: Any) -> str:
    """One JSON string or null, exactly as ``json.dumps`` writes it (non-str values take the slow path)."""
    if v is None:
        return "null"
    if type(v) is not str:
        raise _NotFast
    return _jstr(v)


class _NotFast(Exception):
    """A value the fast canonical form does not handle (the generic json.dumps path does)."""


def _chain_text(seq: int, recorded_at: str, virtual_time: str | None, tenant: str | None, arrow: int | None,
                kind: str, sender_actor: str | None, sender_lg: str | None, receiver_actor: str | None,
                receiver_lg: str | None, message_type: str | None, message_id: str | None,
                correlation_id: str | None, verdict: str, findings: list[dict[str, Any]], payload: bytes,
                payload_sha256: str, note: str | None, prev_hash: str) -> bytes:
    """``prev_hash + canonical_json(record)`` as UTF-8: what the record's hash covers.

    Byte for byte what ``_canonical`` produces (keys in sorted order, the same string encoder), written
    field by field instead of through a dict and the generic encoder: this runs once per record.
    """
    try:
        if type(seq) is not int or (arrow is not None and type(arrow) is not int):
            raise _NotFast
        text = "".join((
            prev_hash, '{"arrow":', "null" if arrow is None else str(arrow),
            ',"correlation_id":', _s(correlation_id),
            ',"findings":', _json_text(findings) if findings else _EMPTY_FINDINGS,
            ',"kind":', _s(kind), ',"message_id":', _s(message_id), ',"message_type":', _s(message_type),
            ',"note":', _s(note), ',"payload":"', base64.b64encode(payload).decode("ascii"),
            '","payload_sha256":', _s(payload_sha256), ',"prev_hash":', _s(prev_hash),
            ',"receiver_actor":', _s(receiver_actor), ',"receiver_lg":', _s(receiver_lg),
            ',"recorded_at":', _s(recorded_at), ',"sender_actor":', _s(sender_actor),
            ',"sender_lg":', _s(sender_lg), ',"seq":', str(seq), ',"tenant":', _s(tenant),
            ',"verdict":', _s(verdict), ',"virtual_time":', _s(virtual_time), "}"))
    except _NotFast:
        values = {"seq": seq, "recorded_at": recorded_at, "virtual_time": virtual_time, "tenant": tenant,
                  "arrow": arrow, "kind": kind, "sender_actor": sender_actor, "sender_lg": sender_lg,
                  "receiver_actor": receiver_actor, "receiver_lg": receiver_lg, "message_type": message_type,
                  "message_id": message_id, "correlation_id": correlation_id, "verdict": verdict,
                  "findings": findings, "payload": payload, "payload_sha256": payload_sha256, "note": note,
                  "prev_hash": prev_hash}
        return prev_hash.encode("ascii") + _canonical(values)
    return text.encode("utf-8")


def verify_records(records: Iterable[TraceRecord]) -> VerifyResult:
    """Recompute the chain over ``records`` (seq order): seq 1..n, prev_hash links, payload hash, hash."""
    prev = GENESIS
    count = 0
    for rec in records:
        count += 1
        values = {n: getattr(rec, n) for n in _FIELDS}
        bad: str | None = None
        if rec.seq != count:
            bad = f"seq {rec.seq} found where {count} was expected (a record is missing or out of order)"
        elif rec.prev_hash != prev:
            bad = "prev_hash does not match the hash of the record before"
        elif hashlib.sha256(rec.payload).hexdigest() != rec.payload_sha256:
            bad = "payload_sha256 does not match the payload"
        elif _hash(values) != rec.hash:
            bad = "hash does not match the record's content (a field was changed)"
        if bad is not None:
            return VerifyResult(False, count, rec.seq, bad)
        prev = rec.hash
    return VerifyResult(True, count)


def _json_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------------------------------------- JSON

def record_to_json(rec: TraceRecord) -> dict[str, Any]:
    """The record as JSON: payload as UTF-8 text, or ``payload_base64`` (payload null) if it is not UTF-8."""
    d = {n: getattr(rec, n) for n in _FIELDS}
    try:
        d["payload"] = rec.payload.decode("utf-8")
    except UnicodeDecodeError:
        d["payload"] = None
        d["payload_base64"] = base64.b64encode(rec.payload).decode("ascii")
    return d


def record_from_json(obj: Mapping[str, Any]) -> TraceRecord:
    """Inverse of record_to_json (exact: the result verifies if the original did)."""
    d = {n: obj[n] for n in _FIELDS if n != "payload"}
    b64 = obj.get("payload_base64")
    d["payload"] = base64.b64decode(b64) if b64 is not None else str(obj["payload"]).encode("utf-8")
    return TraceRecord(**d)


def format_record(rec: TraceRecord) -> str:
    """One line for people: seq, time, tenant, arrow, sender->receiver, type, ids, verdict, finding codes."""

    def who(actor: str | None, lg: str | None) -> str:
        return (actor or "?") + (f"[{lg}]" if lg else "")

    when = rec.virtual_time or rec.recorded_at
    arrow = f"#{rec.arrow}" if rec.arrow is not None else "#-"
    ids = f"id={rec.message_id or '-'}"
    if rec.correlation_id:
        ids += f" corr={rec.correlation_id}"
    codes = ",".join(f["code"] for f in rec.findings)
    parts = [f"{rec.seq:>7}", when, rec.tenant or "-", arrow, rec.kind,
             f"{who(rec.sender_actor, rec.sender_lg)}->{who(rec.receiver_actor, rec.receiver_lg)}",
             rec.message_type or "-", ids, rec.verdict]
    if codes:
        parts.append(f"[{codes}]")
    if rec.note:
        parts.append(f"({rec.note})")
    return " ".join(parts)


#: The record's field names in order (the trace file's columns are these).
FIELDS = _FIELDS
canonical = _canonical
chain_text = _chain_text
json_text = _json_text
