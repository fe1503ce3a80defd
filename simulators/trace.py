"""The trace: every crossing of the gateway, in order, hash-chained, durable before it is acknowledged.

Why: the judge reads the trace and a reviewer must trust it. So (1) no message the gateway acknowledged may
be missing after a crash — ``append`` returns only once the record is committed to SQLite (WAL,
``synchronous=FULL``); (2) nothing in it may change unnoticed — each record's ``hash`` covers every field
and the previous record's hash; (3) it must keep up with the moving-season peak — appends are group-committed
by one writer, so thousands of concurrent callers share one fsync.

API (everything else is private)::

    TraceRecord                   one crossing (frozen dataclass, fields below); do not mutate ``findings``
    TraceStore(path | None)       async context manager (or ``await open()`` / ``await close()``);
                                  None = memory only (unit tests, benchmarks)
      await append(kind=, verdict=, payload=, tenant=, arrow=, sender_actor=, sender_lg=, receiver_actor=,
                   receiver_lg=, message_type=, message_id=, correlation_id=, findings=, note=,
                   virtual_time=) -> TraceRecord          returns once the record is durable
      submit(...same...) -> asyncio.Future[TraceRecord]   seq is fixed now; the future resolves when durable
      query(tenant=, arrow=, message_type=, message_id=, correlation_id=, kind=, since_seq=0, limit=None)
                                  -> list[TraceRecord]    committed records with seq > since_seq, seq order
      await wait_for(predicate=None, *, timeout, since_seq=0, **same filters) -> TraceRecord
                                  first committed match (already there or arriving); TimeoutError otherwise
      subscribe(since_seq=0, **same filters) -> AsyncIterator[TraceRecord]    ends when the store closes
      await verify() -> VerifyResult             recomputes the chain from SQLite (or memory)
      last_seq, last_hash, len(store)
    verify_records(records) -> VerifyResult      the same check over any records (e.g. an evidence bundle)
    read_records(path) -> list[TraceRecord]      offline read of a trace file, no writer
    record_to_json(rec) / record_from_json(obj)  the JSON form used by the HTTP API (exact round trip)
    format_record(rec) -> str                    one human line, for ``juki-harness trace``
    trace_app(store) -> web.Application          mount with ``app.add_subapp("/trace", trace_app(store))``:
      GET /?tenant=&arrow=&type=&message_id=&correlation_id=&kind=&since=&limit=
          -> {"records": [...], "count": n, "last_seq": n, "next_since": seq | null}  (default limit 10000)
      GET /verify -> VerifyResult as JSON
      GET /stream?since=N (+ the same filters) -> application/x-ndjson, one record per line, kept open

Hash: ``hash = sha256(prev_hash + canonical_json(record without hash))`` where canonical JSON has sorted
keys, ``ensure_ascii=False``, separators ``(",", ":")``, and the payload as standard base64 text. The first
record's ``prev_hash`` is 64 zeros. A chain alone cannot detect removal of the *last* records: keep
``last_seq``/``last_hash`` in the evidence bundle as the anchor.

One writer process per trace file: seq is the SQLite primary key, so a second writer fails loudly rather
than forking the chain. All methods must be called from the event loop that opened the store.
Errors are HarnessError with codes GW-TRACE-FIELD (bad argument), GW-TRACE-CLOSED, GW-TRACE-WRITE,
GW-TRACE-QUERY (bad HTTP query parameter).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_basestring
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, get_args

from aiohttp import web

from conformance.errors import Finding, HarnessError, fail

Kind = Literal["message", "response", "refused", "delivery", "event"]
Verdict = Literal["accepted", "refused", "delivered", "failed", "info"]
KINDS: frozenset[str] = frozenset(get_args(Kind))
VERDICTS: frozenset[str] = frozenset(get_args(Verdict))
GENESIS = "0" * 64
DEFAULT_HTTP_LIMIT = 10_000


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
_FILTERS: tuple[str, ...] = ("message_id", "correlation_id", "tenant", "message_type", "arrow", "kind")


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


# ------------------------------------------------------------------------------------------------ sqlite

_COLUMNS = ", ".join(_FIELDS)
_INSERT = f"INSERT INTO trace ({_COLUMNS}) VALUES ({', '.join('?' for _ in _FIELDS)})"
_SELECT = f"SELECT {_COLUMNS} FROM trace ORDER BY seq"
_CREATE = """
CREATE TABLE IF NOT EXISTS trace (
    seq INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, virtual_time TEXT, tenant TEXT, arrow INTEGER,
    kind TEXT NOT NULL, sender_actor TEXT, sender_lg TEXT, receiver_actor TEXT, receiver_lg TEXT,
    message_type TEXT, message_id TEXT, correlation_id TEXT, verdict TEXT NOT NULL, findings TEXT NOT NULL,
    payload BLOB NOT NULL, payload_sha256 TEXT NOT NULL, note TEXT, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""


def _json_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_FINDINGS_AT = _FIELDS.index("findings")
_ROW = attrgetter(*_FIELDS)


def _to_row(rec: TraceRecord) -> tuple[Any, ...]:
    row: tuple[Any, ...] = _ROW(rec)
    f = row[_FINDINGS_AT]
    return (*row[:_FINDINGS_AT], _json_text(f) if f else _EMPTY_FINDINGS, *row[_FINDINGS_AT + 1:])


def _from_row(row: Sequence[Any]) -> TraceRecord:
    d = dict(zip(_FIELDS, row, strict=True))
    d["findings"] = json.loads(d["findings"])
    p = d["payload"]
    d["payload"] = p.encode("utf-8") if isinstance(p, str) else bytes(p)
    return TraceRecord(**d)


FORMAT_VERSION = 1  # PRAGMA user_version of a trace file


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch SQLite to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, FORMAT_VERSION):
            raise sqlite3.DatabaseError(f"trace format {version} is not {FORMAT_VERSION}")
        conn.execute(_CREATE)
        conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def _iter_file(path: Path) -> Iterator[TraceRecord]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        for row in conn.execute(_SELECT):
            yield _from_row(row)
    finally:
        conn.close()


def read_records(path: Path) -> list[TraceRecord]:
    """Read a trace file without opening a writer (CLI, evidence bundle)."""
    return list(_iter_file(path))


# ------------------------------------------------------------------------------------------------- store

def _finding_dict(f: Finding | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(f, Finding):
        code, message, xpath, line = f.code, f.message, f.xpath, f.line
    else:
        code, message, xpath, line = f["code"], f.get("message", ""), f.get("xpath"), f.get("line")
    return {"code": str(code), "message": str(message),
            "xpath": None if xpath is None else str(xpath), "line": None if line is None else int(line)}


Matcher = Callable[[TraceRecord], bool]


def _matcher(filters: Mapping[str, Any], predicate: Matcher | None) -> Matcher:
    items = tuple(filters.items())

    def match(rec: TraceRecord) -> bool:
        return all(getattr(rec, k) == v for k, v in items) and (predicate is None or predicate(rec))

    return match


def _filters(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


@dataclass(slots=True)
class _Waiter:
    since_seq: int
    match: Matcher
    future: asyncio.Future[TraceRecord]
    bucket: tuple[str, Any] | None


@dataclass(slots=True)
class _Index:
    """Committed records, and per-field lists of them (each in seq order) for cheap filtered reads."""

    records: list[TraceRecord] = field(default_factory=list)
    by: dict[str, dict[Any, list[TraceRecord]]] = field(default_factory=lambda: {f: {} for f in _FILTERS})

    def add(self, rec: TraceRecord) -> None:
        self.records.append(rec)
        for f in _FILTERS:
            v = getattr(rec, f)
            if v is not None:
                self.by[f].setdefault(v, []).append(rec)

    def candidates(self, filters: Mapping[str, Any]) -> list[TraceRecord]:
        best = self.records
        for f, v in filters.items():
            lst = self.by[f].get(v, [])
            if len(lst) < len(best):
                best = lst
        return best


def _after(records: list[TraceRecord], since_seq: int) -> int:
    return bisect_right(records, since_seq, key=lambda r: r.seq)


class TraceStore:
    """The trace of one gateway: memory index for reads, one group-committing writer to SQLite."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._index = _Index()
        self._pending: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]] = []
        self._next_seq = 1
        self._last_hash = GENESIS
        self._committed_hash = GENESIS
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._changed = asyncio.Event()
        self._waiters: dict[tuple[str, Any] | None, list[_Waiter]] = {}
        self._failure: HarnessError | None = None
        self._open = False
        self._closing = False

    # -- lifecycle

    async def open(self) -> Self:
        """Reload every record from the file (if any), rebuild the index, start the writer."""
        if self._open or self._closing:
            raise fail("GW-TRACE-CLOSED", "a trace store can be opened once")
        loop = asyncio.get_running_loop()
        if self.path is not None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-writer")
            path = self.path

            def load() -> tuple[sqlite3.Connection, list[TraceRecord]]:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = _connect(path)
                try:
                    return conn, [_from_row(r) for r in conn.execute(_SELECT)]
                except BaseException:
                    conn.close()
                    raise

            try:
                self._conn, records = await loop.run_in_executor(self._executor, load)
            except (sqlite3.Error, OSError, ValueError, TypeError) as exc:
                self._executor.shutdown(wait=False)
                raise fail("GW-TRACE-WRITE", f"{path}: cannot open the trace: {exc}") from exc
            for rec in records:
                self._index.add(rec)
            if records:
                self._next_seq = records[-1].seq + 1
                self._last_hash = self._committed_hash = records[-1].hash
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._open = True
        self._writer = asyncio.create_task(self._write_loop(), name="trace-writer")
        return self

    async def close(self) -> None:
        """Commit everything submitted, stop the writer, fail pending waiters, end subscriptions."""
        if not self._open:
            return
        self._closing = True
        assert self._wake is not None and self._writer is not None
        self._wake.set()
        await self._writer
        self._open = False
        if self._conn is not None and self._executor is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            self._executor.shutdown(wait=True)
            self._conn = None
        closed = fail("GW-TRACE-CLOSED", "the trace store was closed while waiting")
        for ws in self._waiters.values():
            for w in ws:
                if not w.future.done():
                    w.future.set_exception(closed)
        self._waiters.clear()
        self._changed.set()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- writing

    def submit(self, *, kind: Kind, verdict: Verdict, payload: bytes = b"", tenant: str | None = None,
               arrow: int | None = None, sender_actor: str | None = None, sender_lg: str | None = None,
               receiver_actor: str | None = None, receiver_lg: str | None = None,
               message_type: str | None = None, message_id: str | None = None,
               correlation_id: str | None = None, findings: Iterable[Finding | Mapping[str, Any]] = (),
               note: str | None = None, virtual_time: datetime | str | None = None,
               ) -> asyncio.Future[TraceRecord]:
        """Fix the record's seq and hash now; the returned future resolves once it is committed.

        The caller must not change ``payload`` (a bytearray or memoryview is copied; bytes are kept as is).
        """
        if self._failure is not None:
            raise self._failure
        if not self._open or self._closing:
            raise fail("GW-TRACE-CLOSED", "append to a trace store that is not open")
        if kind not in KINDS:
            raise fail("GW-TRACE-FIELD", f"kind {kind!r} is not one of {sorted(KINDS)}")
        if verdict not in VERDICTS:
            raise fail("GW-TRACE-FIELD", f"verdict {verdict!r} is not one of {sorted(VERDICTS)}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise fail("GW-TRACE-FIELD", f"payload must be bytes, not {type(payload).__name__}")
        if isinstance(virtual_time, datetime):
            if virtual_time.tzinfo is None:
                raise fail("GW-TRACE-FIELD", "virtual_time must be timezone-aware")
            virtual_time = virtual_time.isoformat()
        data = payload if type(payload) is bytes else bytes(payload)
        seq, prev = self._next_seq, self._last_hash
        recorded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        arrow_ = None if arrow is None else int(arrow)
        found = [_finding_dict(f) for f in findings] if findings else []
        digest = hashlib.sha256(data).hexdigest()
        h = hashlib.sha256(_chain_text(
            seq, recorded_at, virtual_time, tenant, arrow_, kind, sender_actor, sender_lg, receiver_actor,
            receiver_lg, message_type, message_id, correlation_id, verdict, found, data, digest, note,
            prev)).hexdigest()
        rec = TraceRecord(seq, recorded_at, virtual_time, tenant, arrow_, kind, sender_actor, sender_lg,
                          receiver_actor, receiver_lg, message_type, message_id, correlation_id, verdict, found,
                          data, digest, note, prev, h)
        self._next_seq = seq + 1
        self._last_hash = h
        fut: asyncio.Future[TraceRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((rec, fut))
        assert self._wake is not None
        self._wake.set()
        return fut

    async def append(self, *, kind: Kind, verdict: Verdict, payload: bytes = b"", tenant: str | None = None,
                     arrow: int | None = None, sender_actor: str | None = None, sender_lg: str | None = None,
                     receiver_actor: str | None = None, receiver_lg: str | None = None,
                     message_type: str | None = None, message_id: str | None = None,
                     correlation_id: str | None = None, findings: Iterable[Finding | Mapping[str, Any]] = (),
                     note: str | None = None, virtual_time: datetime | str | None = None) -> TraceRecord:
        """Record one crossing; returns once it is durable (committed), so the caller may acknowledge."""
        return await self.submit(
            kind=kind, verdict=verdict, payload=payload, tenant=tenant, arrow=arrow,
            sender_actor=sender_actor, sender_lg=sender_lg, receiver_actor=receiver_actor,
            receiver_lg=receiver_lg, message_type=message_type, message_id=message_id,
            correlation_id=correlation_id, findings=findings, note=note, virtual_time=virtual_time)

    def _write_batch(self, batch: list[TraceRecord]) -> None:
        """Runs in the writer thread: one transaction, one fsync, for everything queued."""
        assert self._conn is not None
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, [_to_row(r) for r in batch])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def _write_loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._pending = self._pending, []
            try:
                if self._conn is not None:
                    await loop.run_in_executor(self._executor, self._write_batch, [r for r, _ in batch])
            except Exception as exc:  # disk full, I/O error, a second writer on the same file ...
                self._fail([*batch, *self._pending], exc)
                self._pending = []
                continue
            except asyncio.CancelledError:
                self._fail([*batch, *self._pending], RuntimeError("trace writer cancelled"))
                raise
            self._publish(batch)

    def _fail(self, batch: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]], exc: BaseException) -> None:
        self._failure = fail("GW-TRACE-WRITE", f"the trace could not be committed: {exc!r}")
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(self._failure)

    def _publish(self, batch: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]]) -> None:
        """Called on commit: index, resolve appenders, then waiters, then wake subscribers."""
        for rec, fut in batch:
            self._index.add(rec)
            self._committed_hash = rec.hash
            if not fut.done():
                fut.set_result(rec)
        if self._waiters:
            for rec, _ in batch:
                self._wake_waiters(rec)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _wake_waiters(self, rec: TraceRecord) -> None:
        keys: list[tuple[str, Any] | None] = [None]
        keys.extend((f, getattr(rec, f)) for f in _FILTERS)
        for key in keys:
            ws = self._waiters.get(key)
            if not ws:
                continue
            keep: list[_Waiter] = []
            for w in ws:
                if w.future.done():
                    continue
                if rec.seq <= w.since_seq:
                    keep.append(w)
                    continue
                try:
                    hit = w.match(rec)
                except Exception as exc:  # a caller's predicate must not break the writer
                    w.future.set_exception(exc)
                    continue
                if hit:
                    w.future.set_result(rec)
                else:
                    keep.append(w)
            if keep:
                self._waiters[key] = keep
            else:
                del self._waiters[key]

    # -- reading

    @property
    def last_seq(self) -> int:
        """Seq of the last committed record (0 when empty)."""
        recs = self._index.records
        return recs[-1].seq if recs else 0

    @property
    def last_hash(self) -> str:
        """Hash of the last committed record: the anchor to keep outside the trace."""
        return self._committed_hash

    def __len__(self) -> int:
        return len(self._index.records)

    def _iter(self, filters: Mapping[str, Any], since_seq: int, predicate: Matcher | None = None
              ) -> Iterator[TraceRecord]:
        cands = self._index.candidates(filters)
        match = _matcher(filters, predicate)
        i = _after(cands, since_seq)
        while i < len(cands):  # the list may grow while a subscriber is suspended: re-read its length
            rec = cands[i]
            i += 1
            if match(rec):
                yield rec

    def query(self, *, tenant: str | None = None, arrow: int | None = None, message_type: str | None = None,
              message_id: str | None = None, correlation_id: str | None = None, kind: str | None = None,
              since_seq: int = 0, limit: int | None = None) -> list[TraceRecord]:
        """Committed records with seq > since_seq matching every given filter (None = any), in seq order."""
        out: list[TraceRecord] = []
        if limit is not None and limit <= 0:
            return out
        flt = _filters(tenant=tenant, arrow=arrow, message_type=message_type, message_id=message_id,
                       correlation_id=correlation_id, kind=kind)
        for rec in self._iter(flt, since_seq):
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def wait_for(self, predicate: Matcher | None = None, *, timeout: float, since_seq: int = 0,
                       tenant: str | None = None, arrow: int | None = None, message_type: str | None = None,
                       message_id: str | None = None, correlation_id: str | None = None,
                       kind: str | None = None) -> TraceRecord:
        """The first committed record after since_seq matching the filters and predicate.

        Looks at the records already committed first, then waits for new commits; raises TimeoutError
        after ``timeout`` seconds (wall clock) when nothing matched.
        """
        flt = _filters(tenant=tenant, arrow=arrow, message_type=message_type, message_id=message_id,
                       correlation_id=correlation_id, kind=kind)
        for rec in self._iter(flt, since_seq, predicate):
            return rec
        if not self._open or self._closing:
            raise fail("GW-TRACE-CLOSED", "wait_for on a trace store that is not open")
        bucket = next(((f, flt[f]) for f in _FILTERS if f in flt), None)
        fut: asyncio.Future[TraceRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(bucket, []).append(
            _Waiter(max(since_seq, self.last_seq), _matcher(flt, predicate), fut, bucket))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            what = ", ".join(f"{k}={v!r}" for k, v in flt.items()) or "any record"
            extra = " and the predicate" if predicate else ""
            raise TimeoutError(f"no trace record matched {what}{extra} within {timeout}s") from None
        finally:
            ws = self._waiters.get(bucket)
            if ws is not None:
                ws[:] = [w for w in ws if w.future is not fut]
                if not ws:
                    del self._waiters[bucket]

    async def subscribe(self, since_seq: int = 0, *, tenant: str | None = None, arrow: int | None = None,
                        message_type: str | None = None, message_id: str | None = None,
                        correlation_id: str | None = None, kind: str | None = None
                        ) -> AsyncIterator[TraceRecord]:
        """Committed records after since_seq, then each new one as it commits; ends when the store closes."""
        flt = _filters(tenant=tenant, arrow=arrow, message_type=message_type, message_id=message_id,
                       correlation_id=correlation_id, kind=kind)
        last = since_seq
        while True:
            changed = self._changed
            for rec in self._iter(flt, last):
                last = rec.seq
                yield rec
            if not self._open:
                return
            await changed.wait()

    async def verify(self) -> VerifyResult:
        """Recompute every hash from what is on disk (memory-only stores: from memory)."""
        if self.path is None:
            return verify_records(list(self._index.records))
        path = self.path
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: verify_records(_iter_file(path)))


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


# ------------------------------------------------------------------------------------------------- HTTP

STORE_KEY = web.AppKey("trace_store", TraceStore)


def _query_filters(q: Mapping[str, str]) -> dict[str, Any]:
    def num(name: str) -> int | None:
        v = q.get(name)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise fail("GW-TRACE-QUERY", f"query parameter {name}={v!r} is not an integer") from None

    kind = q.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise fail("GW-TRACE-QUERY", f"kind={kind!r} is not one of {sorted(KINDS)}")
    return {"tenant": q.get("tenant") or None, "arrow": num("arrow"), "message_type": q.get("type") or None,
            "message_id": q.get("message_id") or None, "correlation_id": q.get("correlation_id") or None,
            "kind": kind, "since_seq": num("since") or 0, "limit": num("limit")}


def _bad_request(err: HarnessError) -> web.Response:
    return web.json_response({"findings": [f.to_json() for f in err.findings]}, status=400)


async def _list(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    try:
        kw = _query_filters(request.query)
    except HarnessError as err:
        return _bad_request(err)
    limit = kw.pop("limit")
    limit = DEFAULT_HTTP_LIMIT if limit is None else limit
    recs = store.query(**kw, limit=limit + 1)
    next_since = recs[limit - 1].seq if len(recs) > limit and limit > 0 else None
    recs = recs[:limit]
    return web.json_response({"records": [record_to_json(r) for r in recs], "count": len(recs),
                              "last_seq": store.last_seq, "next_since": next_since},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _verify(request: web.Request) -> web.Response:
    return web.json_response((await request.app[STORE_KEY].verify()).to_json())


async def _stream(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    try:
        kw = _query_filters(request.query)
    except HarnessError as err:
        return _bad_request(err)
    kw.pop("limit")
    since = kw.pop("since_seq")
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson; charset=utf-8"})
    await resp.prepare(request)
    try:
        async for rec in store.subscribe(since, **kw):
            await resp.write(json.dumps(record_to_json(rec), ensure_ascii=False).encode("utf-8") + b"\n")
    except ConnectionResetError:  # the follower went away
        return resp
    await resp.write_eof()
    return resp


def trace_app(store: TraceStore) -> web.Application:
    """The read-only trace API; the gateway mounts it with ``add_subapp("/trace", ...)``."""
    app = web.Application()
    app[STORE_KEY] = store
    app.router.add_get("/", _list)
    app.router.add_get("/verify", _verify)
    app.router.add_get("/stream", _stream)
    return app
