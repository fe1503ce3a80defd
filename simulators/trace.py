"""The trace: every crossing of the gateway, in order, hash-chained, durable before it is acknowledged.

Why: the judge reads the trace and a reviewer must trust it. So (1) no message the gateway acknowledged may
be missing after a crash — ``append`` returns only once the record is committed to SQLite (WAL,
``synchronous=FULL``); (2) nothing in it may change unnoticed — each record's ``hash`` covers every field
and the previous record's hash; (3) it must keep up with the moving-season peak — appends are group-committed
by one writer, so thousands of concurrent callers share one fsync.

Where a commit runs ("mixed", when the disk syncs fast: ``tracedb.sync_latency`` ≤ 1 ms, probed at open): a
batch of ``LOOP_COMMIT_BATCH`` records or more on the event loop, a smaller one in a writer thread. A big
batch means a busy loop, and there the thread costs more than it saves: each of its GIL hand-offs (every
compression, every row's SQLite step) waits for the loop to let go, so the loop idled while callers waited
for commits (measured through ``serve`` at full rate: 15–25 % less CPU per message with commits on the loop).
A small batch means a quiet loop, and there an fsync on the loop would make every message that arrives
meanwhile wait for it (measured at half rate: a longer p99 with every commit on the loop). On a slow disk
every commit goes to the thread. SQLite's checkpoint (copying the WAL into the database at 4 MiB) runs inside
whichever commit crosses that size; moved to a thread of its own it ran beside appends, so the WAL could not
begin anew and grew with the trace (measured: 1.8–5.5 KB per record instead of 0.9).

The record itself (fields, JSON form, hash chain, ``verify_records``) is defined in ``conformance.record``,
where the judge and the reports read it; the names below are re-exported from there.

API (everything else is private)::

    TraceRecord                   one crossing (frozen dataclass, see conformance.record); do not mutate ``findings``
    TraceStore(path | None, cache_records=2048, commits="auto")   async context manager (or ``await open()`` /
                                  ``close()``); None = a temporary, unsynced file (unit tests, benchmarks);
                                  commits "mixed" | "loop" | "thread" | "auto" (see above: "mixed" on a disk
                                  that syncs fast, else "thread"; "loop" for a temporary file)
      commit_mode, sync_latency_s  where commits run, and the fsync latency probed at open (None: not probed)
      commits_on_loop, commits_in_thread   how many commits ran where
      await append(kind=, verdict=, payload=, tenant=, arrow=, sender_actor=, sender_lg=, receiver_actor=,
                   receiver_lg=, message_type=, message_id=, correlation_id=, findings=, note=,
                   virtual_time=) -> TraceRecord          returns once the record is durable
      submit(...same...) -> asyncio.Future[TraceRecord]   seq is fixed now; the future resolves when durable
      query(tenant=, arrow=, message_type=, message_id=, correlation_id=, kind=, since_seq=0, limit=None)
                                  -> list[TraceRecord]    committed records with seq > since_seq, seq order
      scan(...same filters, since_seq=0) -> Iterator[TraceRecord]   the same, read a page at a time
      await wait_for(predicate=None, *, timeout, since_seq=0, **same filters) -> TraceRecord
                                  first committed match (already there or arriving); TimeoutError otherwise
      subscribe(since_seq=0, **same filters) -> AsyncIterator[TraceRecord]    ends when the store closes
      await verify() -> VerifyResult             recomputes the chain from the file
      last_seq, last_hash, len(store)
    verify_records(records) -> VerifyResult      the same check over any records (e.g. an evidence bundle)
    read_records(path) -> list[TraceRecord]      offline read of a trace file (format 1 or 2), no writer
    record_to_json(rec) / record_from_json(obj)  the JSON form used by the HTTP API (exact round trip)
    format_record(rec) -> str                    one human line, for ``juki-harness trace``
    STORE_KEY                                    the AppKey under which ``simulators.trace_http.trace_app``
                                                 (the read-only HTTP API) keeps the store

Memory is bounded by design: committed records live in SQLite (``simulators.tracedb``: file format,
migration, compression, indexes); the store keeps in memory the last seq and hash, a bounded cache of the
most recent records, the batch being committed and the waiters. Reads go to SQLite through a read
connection (WAL lets it read beside a commit) and only show records already published as
committed (seq <= ``last_seq``), so ``query``, ``last_seq`` and the waiters always agree.

Hash: ``hash = sha256(prev_hash + canonical_json(record without hash))`` where canonical JSON has sorted
keys, ``ensure_ascii=False``, separators ``(",", ":")``, and the payload as standard base64 text. The first
record's ``prev_hash`` is 64 zeros. A chain alone cannot detect removal of the *last* records: keep
``last_seq``/``last_hash`` in the evidence bundle as the anchor.

One writer process per trace file: seq is the SQLite primary key, so a second writer fails loudly rather
than forking the chain. All methods must be called from the event loop that opened the store.
Errors are HarnessError with codes GW-TRACE-FIELD (bad argument), GW-TRACE-CLOSED, GW-TRACE-WRITE,
GW-TRACE-FILE (a file of a format this version cannot use, or that cannot be read), GW-TRACE-QUERY (bad
HTTP query parameter).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import shutil
import sqlite3
import tempfile
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from conformance.errors import Finding, HarnessError, fail
from conformance.record import FIELDS as _FIELDS
from conformance.record import (
    GENESIS,
    KINDS,
    VERDICTS,
    Kind,
    TraceRecord,
    Verdict,
    VerifyResult,
    format_record,
    record_from_json,
    record_to_json,
    verify_records,
)
from conformance.record import chain_text as _chain_text
from conformance.record import json_text as _json_text
from simulators import tracedb

DEFAULT_HTTP_LIMIT = 10_000
_FILTERS: tuple[str, ...] = ("message_id", "correlation_id", "tenant", "message_type", "arrow", "kind")
_EMPTY_FINDINGS = "[]"
#: The stores API; the record, its JSON form and the chain check are defined in :mod:`conformance.record` and
#: re-exported here for the gateway and older callers.
__all__ = [
    "DEFAULT_HTTP_LIMIT",
    "FORMAT_VERSION",
    "GENESIS",
    "KINDS",
    "STORE_KEY",
    "VERDICTS",
    "Kind",
    "TraceRecord",
    "TraceStore",
    "Verdict",
    "VerifyResult",
    "format_record",
    "read_records",
    "record_from_json",
    "record_to_json",
    "verify_records",
]


# ------------------------------------------------------------------------------------------------ sqlite


_FINDINGS_AT = _FIELDS.index("findings")
_ROW = attrgetter(*_FIELDS)
assert _FIELDS == tracedb.COLUMNS, "the file's columns are the record's fields, in order"
FORMAT_VERSION = tracedb.FORMAT_VERSION  # PRAGMA user_version of a trace file


def _to_row(rec: TraceRecord) -> tuple[Any, ...]:
    row: tuple[Any, ...] = _ROW(rec)
    f = row[_FINDINGS_AT]
    return (*row[:_FINDINGS_AT], _json_text(f) if f else _EMPTY_FINDINGS, *row[_FINDINGS_AT + 1:])


def _from_row(row: list[Any]) -> TraceRecord:
    """A decoded row (``tracedb.Codec.decode_row``) -> the record."""
    f = row[_FINDINGS_AT]
    row[_FINDINGS_AT] = [] if f == _EMPTY_FINDINGS else json.loads(f)
    return TraceRecord(*row)


def _iter_file(path: Path) -> Iterator[TraceRecord]:
    """Every record of a trace file in seq order, read in pages through a read-only connection."""
    conn = tracedb.open_reader(path, read_only=True)
    try:
        prefix = tracedb.select_for(conn, path)
        for row in tracedb.iter_rows(conn, prefix, tracedb.codec_of(conn)):
            yield _from_row(row)
    finally:
        conn.close()


def read_records(path: Path) -> list[TraceRecord]:
    """Read a trace file without opening a writer (CLI, evidence bundle); either file format."""
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


#: a disk that syncs within this many seconds gets "mixed" commits: a busy loop's on the loop (see the module doc)
LOOP_COMMIT_SYNC_S = 0.001
#: in "mixed" mode, a batch of this many records or more is committed on the loop (a busy loop), else in the thread
LOOP_COMMIT_BATCH = 8
CommitMode = Literal["mixed", "loop", "thread"]

DEFAULT_CACHE = 2048  # recent records kept in memory (≈ 10 MB with 2 KB payloads)
_CACHE_SCAN = 512  # a read of at most this many recent records is served from the cache
_PAGE = 1000  # records per SQLite read while scanning (wait_for's predicate, subscribe, scan)


class TraceStore:
    """The trace of one gateway: one group-committing writer to SQLite, indexed reads from SQLite.

    Memory is bounded by design: committed records live in the file; in memory are only the last seq and
    hash, the ``cache_records`` most recent records (what followers and pollers read), the batch being
    committed and the waiters. ``TraceStore(None)`` uses the same code on a temporary file (not fsynced,
    deleted when the store is garbage-collected), so it is bounded the same way.
    """

    def __init__(self, path: Path | None, *, cache_records: int = DEFAULT_CACHE,
                 commits: Literal["auto", "mixed", "loop", "thread"] = "auto") -> None:
        if commits not in ("auto", "mixed", "loop", "thread"):
            raise fail("GW-TRACE-FIELD", f"commits {commits!r} is not one of auto, mixed, loop, thread")
        self.path = path
        self._commits = commits
        self.commit_mode: CommitMode = "loop" if commits == "auto" else commits  # auto: decided at open
        self.commits_on_loop = self.commits_in_thread = 0
        self.sync_latency_s: float | None = None  # the disk's fsync latency, probed at open ("auto", durable)
        self._file: Path | None = None  # the SQLite file (a temporary one when path is None)
        self._recent: deque[TraceRecord] = deque(maxlen=max(1, cache_records))
        self._pending: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]] = []
        self._next_seq = 1
        self._last_hash = GENESIS
        self._committed_seq = 0
        self._committed_hash = GENESIS
        self._conn: sqlite3.Connection | None = None  # the writer's: one batch at a time, loop or thread
        self._codec = tracedb.Codec(None)  # the file's payload compression (its own dictionary)
        self._reader: sqlite3.Connection | None = None  # the event loop's
        self._executor: ThreadPoolExecutor | None = None  # opens and closes the file; commits in "thread" mode
        self._inflight: tuple[list[tuple[TraceRecord, asyncio.Future[TraceRecord]]], asyncio.Future[None]
                              ] | None = None  # the batch being committed
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._changed = asyncio.Event()
        self._waiters: dict[tuple[str, Any] | None, list[_Waiter]] = {}
        self._failure: HarnessError | None = None
        self._open = False
        self._closing = False

    # -- lifecycle

    async def open(self) -> Self:
        """Open (create or migrate) the file, read its last seq and hash, start the writer."""
        if self._open or self._closing:
            raise fail("GW-TRACE-CLOSED", "a trace store can be opened once")
        loop = asyncio.get_running_loop()
        if self.path is None:
            tmp = tempfile.mkdtemp(prefix="juki-trace-")
            weakref.finalize(self, shutil.rmtree, tmp, True)
            file, durable = Path(tmp) / "trace.sqlite", False
        else:
            file, durable = self.path, True
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-writer")

        probe = durable and self._commits == "auto"

        def load() -> tuple[sqlite3.Connection, tuple[int, str] | None, tracedb.Codec, float | None]:
            file.parent.mkdir(parents=True, exist_ok=True)
            conn = tracedb.open_writer(file, durable=durable)
            try:
                sync = tracedb.sync_latency(file.parent) if probe else None
                return conn, tracedb.last_row(conn), tracedb.codec_of(conn), sync
            except BaseException:
                conn.close()
                raise

        try:
            self._conn, last, self._codec, self.sync_latency_s = await loop.run_in_executor(self._executor, load)
            self._reader = tracedb.open_reader(file)
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._executor.shutdown(wait=False)
            if isinstance(exc, sqlite3.Error | OSError | ValueError | TypeError):
                raise fail("GW-TRACE-WRITE", f"{file}: cannot open the trace: {exc}") from exc
            raise
        self._file = file
        if self.sync_latency_s is not None:
            self.commit_mode = "mixed" if self.sync_latency_s <= LOOP_COMMIT_SYNC_S else "thread"
        if last is not None:
            self._next_seq = self._committed_seq = last[0]
            self._next_seq += 1
            self._last_hash = self._committed_hash = last[1]
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


        if self._reader is not None:
            self._reader.close()
            self._reader = None
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


    def _commit(self, batch: list[TraceRecord]) -> None:
        """Encode (compress) the rows, one transaction, one fsync: on the loop or in the writer thread."""
        assert self._conn is not None
        tracedb.commit_rows(self._conn, self._codec, [_to_row(r) for r in batch])

    def _start_batch(self) -> None:
        """Commit everything pending as one group: at once on the loop, or handed to the (idle) writer
        thread (``commit_mode`` and the batch's size, see the module doc).

        Measured and rejected (200 closed-loop appenders): starting a commit early from ``submit`` once
        some records wait (more fsyncs, GIL hand-offs: ~15 % fewer appends/s), and compressing in another
        thread while callers still arrive (GIL contention with the loop: ~10 % fewer). Through ``serve``,
        compressing and inserting on the loop with only COMMIT in the thread still paid the hand-off after
        each fsync (p99 11 ms against 3–4 ms with the whole commit on the loop)."""
        batch, self._pending = self._pending, []
        records = [r for r, _ in batch]
        loop = asyncio.get_running_loop()
        mode = self.commit_mode
        if mode == "thread" or (mode == "mixed" and len(records) < LOOP_COMMIT_BATCH):
            self.commits_in_thread += 1
            job = loop.run_in_executor(self._executor, self._commit, records)
        else:
            self.commits_on_loop += 1
            job = loop.create_future()
            try:
                self._commit(records)
            except Exception as exc:  # failed like a thread's commit: by the future, in _write_loop
                job.set_exception(exc)
            else:
                job.set_result(None)
        self._inflight = (batch, job)

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            if self._inflight is None:
                if not self._pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._start_batch()
            assert self._inflight is not None
            batch, job = self._inflight
            try:
                await job
            except Exception as exc:  # disk full, I/O error, a second writer on the same file ...
                self._inflight = None
                self._fail([*batch, *self._pending], exc)
                self._pending = []
                continue
            except asyncio.CancelledError:
                self._inflight = None
                self._fail([*batch, *self._pending], RuntimeError("trace writer cancelled"))
                raise
            self._inflight = None
            self._publish(batch)

    def _fail(self, batch: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]], exc: BaseException) -> None:
        """Fail ``batch`` and every later append: later records already chain to the lost ones."""
        if self._failure is None:
            self._failure = fail("GW-TRACE-WRITE", f"the trace could not be committed: {exc!r}")
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(self._failure)

    def _publish(self, batch: list[tuple[TraceRecord, asyncio.Future[TraceRecord]]]) -> None:
        """Called on commit: make visible, resolve appenders, then waiters, then wake subscribers."""
        recent = self._recent
        for rec, fut in batch:
            recent.append(rec)
            self._committed_seq = rec.seq
            self._committed_hash = rec.hash
            if not fut.done():
                fut.set_result(rec)
        if self._waiters:
            for rec, _ in batch:
                self._wake_waiters(rec)
        self._nudge()

    def _nudge(self) -> None:
        """Wake every follower (new commits, or a reason to stop following)."""
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
        return self._committed_seq

    @property
    def last_hash(self) -> str:
        """Hash of the last committed record: the anchor to keep outside the trace."""
        return self._committed_hash

    def __len__(self) -> int:
        return self._committed_seq  # seqs run 1..n without gaps

    def _read(self, filters: Mapping[str, Any], since_seq: int, limit: int | None) -> list[TraceRecord]:
        """Committed records (seq <= last_seq) after since_seq matching ``filters``, in seq order.

        Recent records come from the in-memory cache when the read is short and covered by it; anything
        else from SQLite through the read connection (indexed by tenant, ids and type), or through a
        short-lived read-only connection once the store is closed.
        """
        upto = self._committed_seq
        if since_seq >= upto or self._file is None or (limit is not None and limit <= 0):
            return []
        recent = self._recent
        if (recent and since_seq >= recent[0].seq - 1 and upto - since_seq <= _CACHE_SCAN
                and "message_id" not in filters and "correlation_id" not in filters):
            match = _matcher(filters, None)
            out: list[TraceRecord] = []
            for rec in itertools.islice(recent, since_seq - recent[0].seq + 1, None):
                if match(rec):
                    out.append(rec)
                    if limit is not None and len(out) >= limit:
                        break
            return out
        try:
            if self._reader is not None:
                rows = tracedb.select(self._reader, tracedb.SELECT, self._codec, filters, since_seq, upto, limit)
            else:
                conn = tracedb.open_reader(self._file, read_only=True)
                try:
                    prefix = tracedb.select_for(conn, self._file)
                    rows = tracedb.select(conn, prefix, self._codec, filters, since_seq, upto, limit)
                finally:
                    conn.close()
        except sqlite3.Error as exc:
            raise fail("GW-TRACE-FILE", f"{self._file}: cannot read the trace: {exc}") from exc
        return [_from_row(r) for r in rows]

    def _scan(self, filters: Mapping[str, Any], since_seq: int, predicate: Matcher | None = None
              ) -> Iterator[TraceRecord]:
        """Matching committed records after since_seq, read a page at a time (bounded memory)."""
        last = since_seq
        while True:
            page = self._read(filters, last, _PAGE)
            for rec in page:
                if predicate is None or predicate(rec):
                    yield rec
            if len(page) < _PAGE:
                return
            last = page[-1].seq

    def query(self, *, tenant: str | None = None, arrow: int | None = None, message_type: str | None = None,
              message_id: str | None = None, correlation_id: str | None = None, kind: str | None = None,
              since_seq: int = 0, limit: int | None = None) -> list[TraceRecord]:
        """Committed records with seq > since_seq matching every given filter (None = any), in seq order."""
        flt = _filters(tenant=tenant, arrow=arrow, message_type=message_type, message_id=message_id,
                       correlation_id=correlation_id, kind=kind)
        return self._read(flt, since_seq, limit)

    def scan(self, *, tenant: str | None = None, arrow: int | None = None, message_type: str | None = None,
             message_id: str | None = None, correlation_id: str | None = None, kind: str | None = None,
             since_seq: int = 0) -> Iterator[TraceRecord]:
        """Like ``query`` without a limit, but read lazily a page at a time: for a pass over a whole trace
        (replay) without holding it in memory. Records committed while iterating may be included."""
        flt = _filters(tenant=tenant, arrow=arrow, message_type=message_type, message_id=message_id,
                       correlation_id=correlation_id, kind=kind)
        return self._scan(flt, since_seq)

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
        for rec in self._scan(flt, since_seq, predicate):
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
        async for rec in self._follow(flt, since_seq, None):
            yield rec

    async def _follow(self, filters: Mapping[str, Any], since_seq: int, stop: Callable[[], bool] | None,
                      poll: float = 1.0) -> AsyncGenerator[TraceRecord, None]:
        """``subscribe``'s loop, a record at a time (see ``_follow_pages``)."""
        async with contextlib.aclosing(self._follow_pages(filters, since_seq, stop, poll)) as pages:
            async for page in pages:
                for rec in page:
                    yield rec

    async def _follow_pages(self, filters: Mapping[str, Any], since_seq: int, stop: Callable[[], bool] | None,
                            poll: float = 1.0) -> AsyncGenerator[list[TraceRecord], None]:
        """The records committed since ``since_seq`` as they come, in pages (whatever is there at each wake);
        with ``stop``, also ends once ``stop()`` is true (checked on every wake and at least every ``poll``
        seconds), so an HTTP follower whose client left does not linger. Pages let the HTTP stream write
        what it has in one go rather than a write (a system call) per record."""
        last = since_seq
        while True:
            changed = self._changed  # taken before reading: a commit after the read sets this event
            page = self._read(filters, last, _PAGE)
            if page:
                last = page[-1].seq
                yield page
                continue
            if not self._open or (stop is not None and stop()):
                return
            if stop is None:
                await changed.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        await changed.wait()

    async def verify(self) -> VerifyResult:
        """Recompute every hash from what is on disk (a page at a time, in a worker thread)."""
        file = self._file
        if file is None:
            return VerifyResult(True, 0)
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: verify_records(_iter_file(file)))


# ------------------------------------------------------------------------------------------------- HTTP

STORE_KEY = web.AppKey("trace_store", TraceStore)
