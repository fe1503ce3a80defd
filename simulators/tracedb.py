"""The trace's SQLite file: schema, format versions and migration, row encoding, indexed reads.

Why a module of its own: ``simulators.trace`` owns the record, the hash chain and the store's concurrency;
this module owns how records sit on disk, so the file layout can change (and old files be migrated) without
touching the chain. It knows nothing about ``TraceRecord``: rows are tuples in column order.

File format (``PRAGMA user_version``):

- **1** — one table ``trace`` with the record's fields as columns, the payload raw.
- **2** — the same table plus ``pz`` (payload codec: 0 raw, 1 zlib, 2 zlib with the file's preset
  dictionary), appended as the last column; a table ``trace_zdict`` holding that dictionary (a skeleton of
  typical envelopes: tags, header, common values), so a file always decodes with its own dictionary even
  if the code's changes; indexes on ``tenant``, ``message_id`` and ``correlation_id`` (each also ordered
  by seq, the rowid). Payloads are compressed when that saves at least an eighth; the
  hash chain still covers the raw payload, so compression is invisible to ``verify``. A version-1 file is
  migrated in place on open (add the column, default 0 = raw, the dictionary, the indexes): its records and
  hashes are untouched.

Why a preset dictionary: an envelope is mostly tags and header that every message repeats. Measured with
zlib level 1 (about 12 µs either way): the bench's 1.8 KB IdentityNotice 789 -> 372 bytes; sample
envelopes of four other shapes (0.9-2.0 KB) 600-1030 -> 250-510 bytes.

Errors: HarnessError with code GW-TRACE-FILE for a file this code cannot use (a newer
format, a ``trace`` table without the expected columns); plain ``sqlite3`` errors propagate for the rest.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.errors import HarnessError, fail

FORMAT_VERSION = 2
PAGE_SIZE = 4096  # compressed rows are ~0.3-1 KB, so several share a page (a raw 2 KB row needed a page alone)
RAW, ZLIB, ZDICT = 0, 1, 2
ZLIB_LEVEL = 1  # level 6 saves ~4 % more for three times the CPU
_MIN_GAIN = 8  # compress only when the result is at least 1/8 smaller
_MIN_SIZE = 128  # below this zlib's header and Adler checksum eat the gain

# the record's fields in hash/column order (TraceRecord's order), then the codec column
COLUMNS: tuple[str, ...] = (
    "seq", "recorded_at", "virtual_time", "tenant", "arrow", "kind", "sender_actor", "sender_lg",
    "receiver_actor", "receiver_lg", "message_type", "message_id", "correlation_id", "verdict", "findings",
    "payload", "payload_sha256", "note", "prev_hash", "hash")
PAYLOAD_AT = COLUMNS.index("payload")
# message_type is not indexed: the common types are most of the trace, so an index would not narrow a read
# and would cost every insert; reads by type are narrowed by tenant or since_seq instead
INDEXED: tuple[str, ...] = ("tenant", "message_id", "correlation_id")
FILTERS: frozenset[str] = frozenset({"tenant", "arrow", "message_type", "message_id", "correlation_id", "kind"})

_CREATE_V1 = """
CREATE TABLE IF NOT EXISTS trace (
    seq INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, virtual_time TEXT, tenant TEXT, arrow INTEGER,
    kind TEXT NOT NULL, sender_actor TEXT, sender_lg TEXT, receiver_actor TEXT, receiver_lg TEXT,
    message_type TEXT, message_id TEXT, correlation_id TEXT, verdict TEXT NOT NULL, findings TEXT NOT NULL,
    payload BLOB NOT NULL, payload_sha256 TEXT NOT NULL, note TEXT, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""
_ADD_PZ = "ALTER TABLE trace ADD COLUMN pz INTEGER NOT NULL DEFAULT 0"
_INDEXES = tuple(f"CREATE INDEX IF NOT EXISTS trace_{c} ON trace({c})" for c in INDEXED)
_CREATE_ZDICT = "CREATE TABLE IF NOT EXISTS trace_zdict (id INTEGER PRIMARY KEY, data BLOB NOT NULL)"
INSERT = f"INSERT INTO trace ({', '.join(COLUMNS)}, pz) VALUES ({', '.join('?' for _ in COLUMNS)}, ?)"
SELECT = f"SELECT {', '.join(COLUMNS)}, pz FROM trace"
_SELECT_V1 = f"SELECT {', '.join(COLUMNS)}, 0 FROM trace"


def _file_error(path: Path | str, message: str) -> HarnessError:
    return fail("GW-TRACE-FILE", f"{path}: {message}")


# ------------------------------------------------------------------------------------------ payloads

# The preset dictionary written into new files: envelope skeletons with placeholder values (no resident's
# data; zlib matches the end of a dictionary most cheaply, so the commonest text comes last).
PRESET_DICT = (
    "<ResidentTransfer><TransferNo>TN-</TransferNo><Target>介護保険</Target><Resident><HouseholdNo></HouseholdNo>"
    "<HeadName></HeadName><Relationship>世帯主</Relationship></Household><ResidentSince><AddressSince>"
    "<PreviousAddress></PreviousAddress><Honseki><Place></Place><HeadOfFamily></HeadOfFamily></Honseki>"
    "<IndividualEntry><Kind>選挙人名簿</Kind><From></From></IndividualEntry></Resident>"
    "<MoveInNotice><NoticeNo>NN-</NoticeNo><CertificateNo>CN-</CertificateNo><MoveOutLgCode></MoveOutLgCode>"
    "<MoveInLgCode></MoveInLgCode><MoveInDate><NewAddress><Person></Person></MoveInNotice>"
    "<?xml version='1.0' encoding='UTF-8'?>\n<Envelope xmlns=\"urn:juki-harness:1\" version=\"1\">\n"
    "    <Header>\n        <MessageId>M-</MessageId>\n        <MessageType>IdentityNotice</MessageType>\n"
    "        <Sender actor=\"juki\" lgCode=\"131016\"/>\n        <Receiver actor=\"cs\" lgCode=\"131016\"/>\n"
    "        <SentAt>2026-03-30T10:00:00+09:00</SentAt>\n        <BusinessDate>2026-03-30</BusinessDate>\n"
    "    </Header>\n    <Body>\n        <IdentityNotice>\n            <Identity>\n"
    "                <JuminhyoCode></JuminhyoCode>\n                <MyNumber></MyNumber>\n"
    "                <Name>\n                    <Kanji>　</Kanji>\n                    <Kana>　</Kana>\n"
    "                </Name>\n                <BirthDate>\n                    <Western>19</Western>\n"
    "                    <Wareki>平成年月日</Wareki>\n                </BirthDate>\n                <Sex>1</Sex>\n"
    "                <Address>\n                    <LgCode>131016</LgCode>\n"
    "                    <PostalCode>101-</PostalCode>\n                    <Prefecture>東京都</Prefecture>\n"
    "                    <City>千代田区</City>\n                    <Town></Town>\n"
    "                    <Block>丁目番号</Block>\n                    <Building>シティ号室</Building>\n"
    "                </Address>\n            </Identity>\n            <Change>\n"
    "                <Reason code=\"\"></Reason>\n                <EventDate>\n"
    "                    <Western>2026-03-</Western>\n                    <Wareki>令和8年3月日</Wareki>\n"
    "                </EventDate>\n                <NotifiedDate>2026-03-30</NotifiedDate>\n"
    "                <Seq>1</Seq>\n            </Change>\n        </IdentityNotice>\n    </Body>\n"
    "</Envelope>\n"
    "<?xml version='1.0' encoding='UTF-8'?>\n<Envelope xmlns=\"urn:juki-harness:1\" version=\"1\"><Header>"
    "<MessageId>M-</MessageId><MessageType>IdentityNotice</MessageType><Sender actor=\"juki\" lgCode=\"131016\"/>"
    "<Receiver actor=\"cs\" lgCode=\"131016\"/><SentAt>2026-03-30T10:00:00+09:00</SentAt>"
    "<BusinessDate>2026-03-30</BusinessDate></Header><Body><IdentityNotice><Identity><JuminhyoCode></JuminhyoCode>"
    "<MyNumber></MyNumber><Name><Kanji>　</Kanji><Kana>　</Kana></Name><BirthDate><Western>19</Western>"
    "<Wareki>平成年月日</Wareki></BirthDate><Sex>1</Sex><Household><Address><LgCode>131016</LgCode>"
    "<PostalCode>101-</PostalCode><Prefecture>東京都</Prefecture><City>千代田区</City><Town></Town>"
    "<Block>丁目番号</Block><Building>シティ号室</Building></Address></Identity><Change><Reason code=\"\">"
    "</Reason><EventDate><Western>2026-03-</Western><Wareki>令和8年3月日</Wareki></EventDate><Seq>1</Seq>"
    "</Change></IdentityNotice></Body></Envelope>"
).encode()


class Codec:
    """Payload compression for one file: zlib primed with the file's dictionary (or plain zlib)."""

    __slots__ = ("zdict",)

    def __init__(self, zdict: bytes | None) -> None:
        self.zdict = zdict

    def encode(self, data: bytes) -> tuple[int, bytes]:
        """(codec, stored bytes): compressed when that saves at least an eighth, else the payload as is."""
        if len(data) >= _MIN_SIZE:
            if self.zdict:
                c = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, self.zdict)
                packed, codec = c.compress(data) + c.flush(), ZDICT
            else:
                packed, codec = zlib.compress(data, ZLIB_LEVEL), ZLIB
            if len(packed) <= len(data) - len(data) // _MIN_GAIN:
                return codec, packed
        return RAW, data

    def decode(self, codec: int, stored: Any) -> bytes:
        """The raw payload; a stored blob that does not decode is returned as stored, so that ``verify``
        reports a payload that does not match its sha256 instead of failing to read the trace."""
        data = stored.encode("utf-8") if isinstance(stored, str) else bytes(stored)
        try:
            if codec == ZLIB:
                return zlib.decompress(data)
            if codec == ZDICT and self.zdict:
                d = zlib.decompressobj(zdict=self.zdict)
                out = d.decompress(data)
                return out if d.eof and not d.unused_data else data
        except zlib.error:
            return data
        return data

    def encode_row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A record's column values (findings already JSON text) -> the values INSERT binds."""
        codec, stored = self.encode(row[PAYLOAD_AT])
        return (*row[:PAYLOAD_AT], stored, *row[PAYLOAD_AT + 1:], codec)

    def decode_row(self, row: Sequence[Any]) -> list[Any]:
        """A SELECTed row -> the record's column values (payload raw, findings still JSON text)."""
        out = list(row[:-1])
        out[PAYLOAD_AT] = self.decode(row[-1], out[PAYLOAD_AT])
        return out


def commit_rows(conn: sqlite3.Connection, codec: Codec, rows: Sequence[Sequence[Any]]) -> None:
    """Encode (compress) the rows and insert them in one transaction: one fsync when the file is durable."""
    encoded = [codec.encode_row(r) for r in rows]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(INSERT, encoded)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def codec_of(conn: sqlite3.Connection) -> Codec:
    """The codec of an open file (its own dictionary; plain zlib for a version-1 file read offline)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='trace_zdict'").fetchone()
    row = conn.execute("SELECT data FROM trace_zdict WHERE id = 1").fetchone() if has else None
    return Codec(bytes(row[0]) if row is not None else None)


# -------------------------------------------------------------------------------------- connections

def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("PRAGMA table_info(trace)")]


def _check_table(path: Path | str, cols: list[str], version: int) -> None:
    want = [*COLUMNS, "pz"] if version >= 2 else list(COLUMNS)
    if cols != want:
        raise _file_error(path, f"the trace table of a format-{version} file has columns {cols}, "
                                f"expected {want}: not a trace file this version can use")


def sync_latency(directory: Path, rounds: int = 5) -> float:
    """Median seconds one small write + fsync takes in ``directory``: what a durable commit waits for.

    A scratch file, removed at once; the trace itself is not touched."""
    block = b"\0" * PAGE_SIZE
    times: list[float] = []
    with tempfile.TemporaryFile(dir=directory) as f:
        fd = f.fileno()
        for _ in range(max(1, rounds)):
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def open_writer(path: Path, *, durable: bool = True) -> sqlite3.Connection:
    """The writer's connection: WAL, ``synchronous=FULL`` (OFF when not ``durable``), current format.

    Creates the file, or migrates a version-1 file in one transaction; refuses a newer or foreign format
    with GW-TRACE-FILE. Usable from any one thread at a time.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new file
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch SQLite to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB: the indexes' hot pages stay in memory
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            cols = _columns(conn)
            if version > FORMAT_VERSION:
                raise _file_error(path, f"trace format {version} is newer than this harness's "
                                        f"{FORMAT_VERSION}: use a newer juki-harness to read it")
            if version == 0 and cols and "pz" not in cols:
                version = 1  # a version-1 file written before user_version was set
            if not cols:
                conn.execute(_CREATE_V1)
                conn.execute(_ADD_PZ)
            elif version < 2:
                _check_table(path, cols, 1)
                conn.execute(_ADD_PZ)  # old rows keep their raw payload (pz = 0)
            else:
                _check_table(path, cols, version)
            for ddl in _INDEXES:
                conn.execute(ddl)
            conn.execute(_CREATE_ZDICT)
            conn.execute("INSERT OR IGNORE INTO trace_zdict (id, data) VALUES (1, ?)", (PRESET_DICT,))
            conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection for reads beside the writer (WAL lets it read committed data while a batch is written).

    ``read_only`` opens the file with ``mode=ro`` (offline reads: the CLI, evidence bundles).
    """
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA query_only=1")
    conn.execute("PRAGMA cache_size=-8192")
    return conn


def select_for(conn: sqlite3.Connection, path: Path | str) -> str:
    """The SELECT prefix for this file's format (a version-1 file read offline has no ``pz``)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    cols = _columns(conn)
    if version > FORMAT_VERSION:
        raise _file_error(path, f"trace format {version} is newer than this harness's {FORMAT_VERSION}")
    if "pz" in cols:
        _check_table(path, cols, 2)
        return SELECT
    _check_table(path, cols, 1)
    return _SELECT_V1


def last_row(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """(seq, hash) of the last record, or None for an empty trace."""
    row = conn.execute("SELECT seq, hash FROM trace ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def where(filters: Mapping[str, Any], since_seq: int, upto_seq: int) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of a filtered read of seqs in (since_seq, upto_seq]."""
    parts = ["seq > ?", "seq <= ?"]
    args: list[Any] = [since_seq, upto_seq]
    for name, value in filters.items():
        if name not in FILTERS:
            raise ValueError(f"unknown trace filter {name!r}")
        parts.append(f"{name} = ?")
        args.append(value)
    return " AND ".join(parts), args


def select(conn: sqlite3.Connection, prefix: str, codec: Codec, filters: Mapping[str, Any], since_seq: int,
           upto_seq: int, limit: int | None) -> list[list[Any]]:
    """Decoded rows matching ``filters`` with since_seq < seq <= upto_seq, in seq order (fully read, so no
    read transaction stays open to hold back WAL checkpoints)."""
    clause, args = where(filters, since_seq, upto_seq)
    sql = f"{prefix} WHERE {clause} ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [codec.decode_row(r) for r in conn.execute(sql, args).fetchall()]


def iter_rows(conn: sqlite3.Connection, prefix: str, codec: Codec, batch: int = 2000) -> Iterator[list[Any]]:
    """Every row in seq order, read in pages (bounded memory for ``verify`` over a large file)."""
    last = 0
    while True:
        rows = conn.execute(f"{prefix} WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)).fetchall()
        if not rows:
            return
        for r in rows:
            yield codec.decode_row(r)
        last = int(rows[-1][0])
