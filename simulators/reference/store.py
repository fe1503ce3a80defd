"""The reference SUT's register: one SQLite file (WAL) holding residents, households, koseki, received
certificates, e-applications, 法務省通知 slips, pending requests, seen inbound ids and the outbox.

Why one connection and explicit transactions: a counter operation changes records *and* enqueues the
messages it causes; both commit together, before the answer returns, so a crash never leaves a change
without its notices. Everything runs on the event loop's thread, and no transaction spans an ``await``.
Records are stored as JSON of the domain model (``conformance.model``) plus indexed key columns.
"""

from __future__ import annotations

import json
import sqlite3
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from conformance.model import Address, JDate, Resident

T = TypeVar("T")

# Record statuses (CounterResult DocMemberType/Status)
RESIDENT = "住民"
MOVING_OUT = "転出予定"
DELETED = "消除"


@dataclass(frozen=True, slots=True)
class Change:
    """The last 異動 of a person: reason code, 異動年月日, 届出年月日 and the Seq it was sent with."""

    code: str
    event_date: JDate
    notified: date | None
    seq: int


@dataclass(frozen=True, slots=True)
class PlannedMove:
    """A notified move-out: destination (None = abroad), planned date and address, 届出年月日."""

    to_lg: str | None
    when: JDate
    address: Address | None
    notified: date


@dataclass(frozen=True, slots=True)
class ConfirmedMove:
    """The move-in confirmed by the moving-in municipality's 転入通知 (kept beside the planned one)."""

    when: JDate
    address: Address
    lg_code: str
    notice_no: str


@dataclass(frozen=True, slots=True)
class Person:
    """A resident record: 住民票 data, status, the person's change sequence and move information."""

    rid: int
    r: Resident
    status: str = RESIDENT
    seq: int = 0
    last_change: Change | None = None
    planned: PlannedMove | None = None
    confirmed: ConfirmedMove | None = None
    notes: tuple[str, ...] = ()
    card_valid_until: date | None = None

    @property
    def code(self) -> str:
        return self.r.juminhyo_code

    def with_r(self, **kw: Any) -> Person:
        return replace(self, r=replace(self.r, **kw))


# --- JSON of frozen dataclasses ---------------------------------------------------------------------------


def to_json(v: Any) -> Any:
    """A JSON-able value of a model object (dataclasses, dates, tuples)."""
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: to_json(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [to_json(x) for x in v]
    return v


def from_json(tp: Any, data: Any) -> Any:
    """The inverse of :func:`to_json` for the annotated type ``tp``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if data is None:
            return None
        args = [a for a in get_args(tp) if a is not type(None)]
        return from_json(args[0], data)
    if origin is tuple:
        return tuple(from_json(get_args(tp)[0], x) for x in data)
    if tp is date:
        return date.fromisoformat(data)
    if isinstance(tp, type) and is_dataclass(tp):
        hints = get_type_hints(tp)
        return tp(**{k: from_json(hints[k], v) for k, v in data.items()})
    return data


def birth_key(d: JDate) -> str:
    """A comparable key of a register date: the 西暦 date, else the 不詳 text."""
    return d.western.isoformat() if d.western is not None else (d.uncertain or "")


def address_key(a: Address) -> str:
    return "|".join(
        x or "" for x in (a.lg_code, a.prefecture, a.city, a.town, a.block, a.building, a.overseas)
    )


def dumps(v: Any) -> str:
    return json.dumps(to_json(v), ensure_ascii=False, separators=(",", ":"))


def loads(tp: type[T], text: str) -> T:
    out: T = from_json(tp, json.loads(text))
    return out


_SCHEMA = """
CREATE TABLE IF NOT EXISTS residents (
  rid INTEGER PRIMARY KEY, jcode TEXT NOT NULL UNIQUE, my_number TEXT, idno TEXT UNIQUE, card_no TEXT,
  rescard TEXT, household_no TEXT, status TEXT NOT NULL, birth TEXT, addr TEXT, head INTEGER,
  data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS residents_birth ON residents(birth);
CREATE INDEX IF NOT EXISTS residents_addr ON residents(addr, head);
CREATE INDEX IF NOT EXISTS residents_mn ON residents(my_number);
CREATE INDEX IF NOT EXISTS residents_card ON residents(card_no);
CREATE INDEX IF NOT EXISTS residents_hh ON residents(household_no);
CREATE INDEX IF NOT EXISTS residents_rc ON residents(rescard);
CREATE TABLE IF NOT EXISTS households (no TEXT PRIMARY KEY, head_rid INTEGER, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS koseki (kid INTEGER PRIMARY KEY, jcode TEXT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS moveout_certs (
  cert_no TEXT PRIMARY KEY, from_lg TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, xml TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS eapps (app_id TEXT PRIMARY KEY, state TEXT NOT NULL, xml TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS moj_slips (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, notice_no TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
  printed INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
  request_no TEXT PRIMARY KEY, kind TEXT NOT NULL, rid INTEGER, state TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
  message_id TEXT PRIMARY KEY, message_type TEXT NOT NULL, status INTEGER NOT NULL, response BLOB);
CREATE TABLE IF NOT EXISTS numbers (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  oid INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, message_type TEXT NOT NULL,
  sync INTEGER NOT NULL, header TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, retry_reason TEXT, status INTEGER, response BLOB, note TEXT);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, oid);
"""


class Store:
    """Synchronous data access over one SQLite connection (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (re-entrant: an inner ``tx`` joins the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    # --- sequences ----------------------------------------------------------------------------------------
    def next_number(self, name: str) -> int:
        with self.tx() as c:
            row = c.execute("SELECT value FROM numbers WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            c.execute("INSERT OR REPLACE INTO numbers(name, value) VALUES (?, ?)", (name, value))
        return value

    # --- residents ----------------------------------------------------------------------------------------
    def _row_person(self, row: tuple[Any, ...] | None) -> Person | None:
        if row is None:
            return None
        p = loads(Person, row[1])
        return replace(p, rid=row[0])

    def _one(self, where: str, args: tuple[Any, ...]) -> Person | None:
        row = self.conn.execute(
            f"SELECT rid, data FROM residents WHERE {where} ORDER BY rid DESC LIMIT 1", args
        ).fetchone()
        return self._row_person(row)

    def by_rid(self, rid: int) -> Person | None:
        return self._one("rid=?", (rid,))

    def by_code(self, jcode: str) -> Person | None:
        return self._one("jcode=?", (jcode,))

    def by_my_number(self, my_number: str) -> Person | None:
        return self._one("my_number=?", (my_number,))

    def by_idno(self, idno: str) -> Person | None:
        return self._one("idno=?", (idno,))

    def by_card(self, card_no: str) -> Person | None:
        return self._one("card_no=?", (card_no,))

    def by_residence_card(self, no: str) -> Person | None:
        return self._one("rescard=?", (no,))

    def all_persons(self) -> list[Person]:
        rows = self.conn.execute("SELECT rid, data FROM residents ORDER BY rid").fetchall()
        return [p for p in (self._row_person(r) for r in rows) if p is not None]

    def born_on(self, birth: JDate) -> list[Person]:
        """Persons with this 生年月日 (latest record first): the index for 氏名+生年月日 searches."""
        rows = self.conn.execute(
            "SELECT rid, data FROM residents WHERE birth=? ORDER BY rid DESC", (birth_key(birth),)
        ).fetchall()
        return [p for p in (self._row_person(r) for r in rows) if p is not None]

    def head_at(self, address: Address) -> Person | None:
        """The latest 世帯主 recorded at exactly this address and not deleted."""
        return self._one("addr=? AND head=1 AND status!=?", (address_key(address), DELETED))

    def household(self, no: str) -> list[Person]:
        rows = self.conn.execute(
            "SELECT rid, data FROM residents WHERE household_no=? ORDER BY rid", (no,)
        ).fetchall()
        return [p for p in (self._row_person(r) for r in rows) if p is not None]

    def code_in_use(self, jcode: str) -> bool:
        return self.conn.execute("SELECT 1 FROM residents WHERE jcode=?", (jcode,)).fetchone() is not None

    def save(self, p: Person) -> Person:
        """Insert (rid 0) or update a person; returns it with its rid."""
        r = p.r
        cols = (
            r.juminhyo_code,
            r.my_number,
            r.identification_no,
            r.card_no,
            r.foreign.residence_card_no if r.foreign else None,
            r.household_no,
            p.status,
            birth_key(r.birth_date),
            address_key(r.address),
            int(r.relationship == "世帯主"),
        )
        with self.tx() as c:
            if p.rid == 0:
                cur = c.execute(
                    "INSERT INTO residents(jcode, my_number, idno, card_no, rescard, household_no, status,"
                    " birth, addr, head, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    cols,
                )
                p = replace(p, rid=int(cur.lastrowid or 0))
            c.execute(
                "UPDATE residents SET jcode=?, my_number=?, idno=?, card_no=?, rescard=?, household_no=?,"
                " status=?, birth=?, addr=?, head=?, data=? WHERE rid=?",
                (*cols, dumps(p), p.rid),
            )
        return p

    # --- households ---------------------------------------------------------------------------------------
    def new_household_no(self) -> str:
        return str(self.next_number("household"))

    # --- generic JSON / XML side tables -------------------------------------------------------------------
    def koseki_put(self, jcode: str | None, data: dict[str, Any], kid: int | None = None) -> int:
        with self.tx() as c:
            if kid is None:
                cur = c.execute(
                    "INSERT INTO koseki(jcode, data) VALUES (?, ?)",
                    (jcode, json.dumps(data, ensure_ascii=False)),
                )
                return int(cur.lastrowid or 0)
            c.execute(
                "UPDATE koseki SET jcode=?, data=? WHERE kid=?",
                (jcode, json.dumps(data, ensure_ascii=False), kid),
            )
            return kid

    def koseki_all(self) -> list[tuple[int, str | None, dict[str, Any]]]:
        rows = self.conn.execute("SELECT kid, jcode, data FROM koseki ORDER BY kid").fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def cert_put(self, cert_no: str, from_lg: str, xml: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO moveout_certs(cert_no, from_lg, xml) VALUES (?, ?, ?)",
                (cert_no, from_lg, xml),
            )

    def cert_get(self, cert_no: str) -> tuple[str, bool] | None:
        row = self.conn.execute("SELECT xml, used FROM moveout_certs WHERE cert_no=?", (cert_no,)).fetchone()
        return None if row is None else (row[0], bool(row[1]))

    def certs_unused(self) -> list[tuple[str, str, str]]:
        rows = self.conn.execute(
            "SELECT cert_no, from_lg, xml FROM moveout_certs WHERE used=0 ORDER BY rowid"
        )
        return [(r[0], r[1], r[2]) for r in rows.fetchall()]

    def cert_mark_used(self, cert_no: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE moveout_certs SET used=1 WHERE cert_no=?", (cert_no,))

    def eapp_put(self, app_id: str, xml: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO eapps(app_id, state, xml) VALUES (?, 'received', ?)", (app_id, xml)
            )

    def eapp_get(self, app_id: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT state, xml FROM eapps WHERE app_id=?", (app_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def eapp_set_state(self, app_id: str, state: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE eapps SET state=? WHERE app_id=?", (state, app_id))

    def slip_put(self, notice_no: str, state: str, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO moj_slips(notice_no, state, data) VALUES (?, ?, ?)",
                (notice_no, state, json.dumps(data, ensure_ascii=False)),
            )

    def slips(self, notice_no: str | None) -> list[tuple[str, str, dict[str, Any]]]:
        if notice_no is None:
            rows = self.conn.execute(
                "SELECT notice_no, state, data FROM moj_slips WHERE printed=0 ORDER BY seq"
            )
        else:
            rows = self.conn.execute(
                "SELECT notice_no, state, data FROM moj_slips WHERE notice_no=?", (notice_no,)
            )
        return [(r[0], r[1], json.loads(r[2])) for r in rows.fetchall()]

    def slips_mark_printed(self, notice_nos: list[str]) -> None:
        with self.tx() as c:
            c.executemany("UPDATE moj_slips SET printed=1 WHERE notice_no=?", [(n,) for n in notice_nos])

    def request_put(
        self, request_no: str, kind: str, rid: int | None, data: dict[str, Any], state: str = "waiting"
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO requests(request_no, kind, rid, state, data) VALUES (?, ?, ?, ?, ?)",
                (request_no, kind, rid, state, json.dumps(data, ensure_ascii=False)),
            )

    def request_get(self, request_no: str) -> tuple[str, int | None, str, dict[str, Any]] | None:
        row = self.conn.execute(
            "SELECT kind, rid, state, data FROM requests WHERE request_no=?", (request_no,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], json.loads(row[3]))

    def request_set(self, request_no: str, state: str, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE requests SET state=?, data=? WHERE request_no=?",
                (state, json.dumps(data, ensure_ascii=False), request_no),
            )

    # --- idempotency of inbound messages ------------------------------------------------------------------
    def seen_get(self, message_id: str) -> tuple[int, bytes | None] | None:
        row = self.conn.execute(
            "SELECT status, response FROM seen WHERE message_id=?", (message_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def seen_put(self, message_id: str, message_type: str, status: int, response: bytes | None) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO seen(message_id, message_type, status, response) VALUES (?, ?, ?, ?)",
                (message_id, message_type, status, response),
            )
