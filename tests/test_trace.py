"""The trace: chain, durability across restart, tamper detection, reads, waits, concurrency, HTTP API."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import simulators.trace as trace_mod
from conformance.errors import Finding, HarnessError
from simulators.trace import (
    GENESIS,
    TraceRecord,
    TraceStore,
    format_record,
    read_records,
    record_from_json,
    record_to_json,
    verify_records,
)
from simulators.trace_http import trace_app

REPO = Path(__file__).resolve().parents[1]


def msg(i: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "message", "verdict": "accepted", "tenant": "t1", "arrow": 8, "sender_actor": "juki",
        "sender_lg": "131016", "receiver_actor": "cs", "receiver_lg": "131016",
        "message_type": "TennyuTsuchi", "message_id": f"m{i}", "correlation_id": f"c{i % 3}",
        "payload": f"<j:Envelope xmlns:j='urn:juki-harness:1'>住民{i}</j:Envelope>".encode(),
        "virtual_time": "2026-03-30T10:00:00+09:00",
    }
    base.update(kw)
    return base


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "trace.sqlite"


@pytest.fixture(params=["mixed", "loop", "thread"])
def commits(request: pytest.FixtureRequest) -> str:
    """Where commits run (on the event loop, in the writer thread, or by batch size): every durable test runs
    with each."""
    return str(request.param)


@pytest.fixture
async def store(db: Path, commits: Any) -> AsyncIterator[TraceStore]:
    async with TraceStore(db, commits=commits) as s:
        assert s.commit_mode == commits
        yield s


@pytest.fixture
async def mem() -> AsyncIterator[TraceStore]:
    async with TraceStore(None) as s:
        yield s


async def fill(store: TraceStore, n: int, **kw: Any) -> list[TraceRecord]:
    return [await store.append(**msg(i, **kw)) for i in range(n)]


# ------------------------------------------------------------------------------------------------ chain

async def test_chain_links_every_record(store: TraceStore) -> None:
    recs = await fill(store, 5)
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(recs))
    assert len({r.hash for r in recs}) == 5
    assert (await store.verify()).ok
    assert (await store.verify()).count == 5
    assert store.last_hash == recs[-1].hash


async def test_record_keeps_exact_payload_and_findings(store: TraceStore) -> None:
    payload = b"<?xml version='1.0' encoding='UTF-8'?>\r\n<a>\xe9\x80\x9a\xe7\x9f\xa5</a>  "
    rec = await store.append(**msg(1, payload=payload, verdict="refused", kind="refused",
                                   findings=[Finding("XSD-001", "bad", line=3, xpath="/j:A"),
                                             {"code": "ID-002", "message": "check digit"}]))
    [back] = read_records(store.path)  # type: ignore[arg-type]
    assert back.payload == payload
    assert back.findings == [{"code": "XSD-001", "message": "bad", "xpath": "/j:A", "line": 3},
                             {"code": "ID-002", "message": "check digit", "xpath": None, "line": None}]
    assert back == rec


@pytest.mark.parametrize("field,value", [("kind", "gossip"), ("verdict", "maybe"), ("payload", "text")])
async def test_bad_fields_are_refused(mem: TraceStore, field: str, value: Any) -> None:
    with pytest.raises(HarnessError) as err:
        await mem.append(**msg(1, **{field: value}))
    assert err.value.findings[0].code == "GW-TRACE-FIELD"
    assert len(mem) == 0


async def test_append_after_close_is_refused(db: Path) -> None:
    s = TraceStore(db)
    async with s:
        await fill(s, 1)
    with pytest.raises(HarnessError) as err:
        await s.append(**msg(2))
    assert err.value.findings[0].code == "GW-TRACE-CLOSED"


# -------------------------------------------------------------------------------------------- tampering

def tamper(db: Path, sql: str, *args: Any) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, args)
    conn.close()


def flip_payload_byte(db: Path, seq: int) -> None:
    conn = sqlite3.connect(db)
    (payload,) = conn.execute("SELECT payload FROM trace WHERE seq=?", (seq,)).fetchone()
    changed = bytearray(payload)
    changed[5] ^= 0x01
    with conn:
        conn.execute("UPDATE trace SET payload=? WHERE seq=?", (bytes(changed), seq))
    conn.close()


@pytest.mark.parametrize("change,bad_seq", [
    (lambda db: flip_payload_byte(db, 4), 4),
    (lambda db: tamper(db, "UPDATE trace SET verdict='refused' WHERE seq=4"), 4),
    (lambda db: tamper(db, "UPDATE trace SET arrow=9 WHERE seq=4"), 4),
    (lambda db: tamper(db, "UPDATE trace SET tenant=NULL WHERE seq=4"), 4),
    (lambda db: tamper(db, "UPDATE trace SET findings='[]' WHERE seq=4"), 4),
    (lambda db: tamper(db, "UPDATE trace SET recorded_at='2020-01-01T00:00:00+00:00' WHERE seq=4"), 4),
    (lambda db: tamper(db, "UPDATE trace SET hash=? WHERE seq=4", "0" * 64), 4),
    (lambda db: tamper(db, "DELETE FROM trace WHERE seq=4"), 5),  # seq 5 found where 4 was expected
], ids=["payload-byte", "verdict", "arrow", "tenant", "findings", "recorded_at", "hash", "deleted"])
async def test_tampering_names_the_seq(store: TraceStore, db: Path, change: Any, bad_seq: int) -> None:
    await fill(store, 6, findings=[{"code": "XSD-001", "message": "x"}])
    assert (await store.verify()).ok
    change(db)
    result = await store.verify()
    assert (result.ok, result.first_bad_seq) == (False, bad_seq)
    assert result.reason


async def test_tampered_payload_with_recomputed_sha_still_fails(store: TraceStore, db: Path) -> None:
    await fill(store, 3)
    new = b"<forged/>"
    forged_sha = hashlib.sha256(new).hexdigest()
    tamper(db, "UPDATE trace SET payload=?, payload_sha256=? WHERE seq=2", new, forged_sha)
    result = await store.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "hash does not match" in (result.reason or "")


async def test_payload_change_is_reported_as_payload(store: TraceStore, db: Path) -> None:
    await fill(store, 3)
    flip_payload_byte(db, 3)
    result = await store.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (
        False, 3, "payload_sha256 does not match the payload")


def test_verify_records_detects_reordering() -> None:
    async def make() -> list[TraceRecord]:
        async with TraceStore(None) as s:
            return await fill(s, 3)

    recs = asyncio.run(make())
    assert verify_records(recs).ok
    swapped = [recs[0], recs[2], recs[1]]
    assert verify_records(swapped).first_bad_seq == 3


# --------------------------------------------------------------------------------------------- restart

async def test_restart_reloads_and_continues_the_chain(db: Path, commits: Any) -> None:
    async with TraceStore(db, commits=commits) as s:
        first = await fill(s, 3)
    async with TraceStore(db, commits=commits) as s:
        assert len(s) == 3
        assert s.query(message_id="m1")[0] == first[1]
        nxt = await s.append(**msg(99))
        assert nxt.seq == 4
        assert nxt.prev_hash == first[-1].hash
        assert (await s.verify()).ok
    assert verify_records(read_records(db)).ok


CRASH_WRITER = """
import asyncio, sys
from pathlib import Path
from simulators.trace import TraceStore

async def main() -> None:
    async with TraceStore(Path(sys.argv[1]), commits=sys.argv[2]) as st:
        async def one(i: int) -> None:
            rec = await st.append(kind="message", verdict="accepted", tenant="t", arrow=8,
                                  message_id=f"m{i}", payload=b"<x>%d</x>" % i)
            sys.stdout.write(f"{rec.seq}\\n")
            sys.stdout.flush()
        i = 0
        while True:
            await asyncio.gather(*(one(i + k) for k in range(25)))
            i += 25

asyncio.run(main())
"""


async def test_sigkill_loses_no_acknowledged_record(db: Path, commits: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(db), commits], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 20
    while len(acked) < 500 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate(timeout=10)
    acked.extend(int(x) for x in rest.split())  # acknowledged before the kill, still in the pipe
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 500, err.decode()
    async with TraceStore(db) as s:
        present = {r.seq for r in s.query()}
        assert set(acked) <= present
        assert (await s.verify()).ok
        assert (await s.append(**msg(1))).seq == max(present) + 1
        assert (await s.verify()).ok


# ----------------------------------------------------------------------------------------------- reads

@pytest.mark.parametrize("flt,expected", [
    ({}, [1, 2, 3, 4, 5, 6]),
    ({"tenant": "t2"}, [4, 5, 6]),
    ({"arrow": 9}, [2, 5]),
    ({"message_type": "Ack"}, [3, 6]),
    ({"message_id": "m4"}, [5]),
    ({"correlation_id": "c0"}, [1, 4]),
    ({"kind": "response"}, [3, 6]),
    ({"tenant": "t2", "arrow": 9}, [5]),
    ({"since_seq": 4}, [5, 6]),
    ({"tenant": "t1", "limit": 2}, [1, 2]),
    ({"tenant": "nobody"}, []),
])
async def test_query_filters(mem: TraceStore, flt: dict[str, Any], expected: list[int]) -> None:
    for i in range(6):
        t = "t1" if i < 3 else "t2"
        if i % 3 == 2:
            await mem.append(**msg(i, tenant=t, kind="response", message_type="Ack", arrow=8))
        else:
            await mem.append(**msg(i, tenant=t, arrow=9 if i % 3 == 1 else 8))
    assert [r.seq for r in mem.query(**flt)] == expected


async def test_wait_for_finds_existing_and_future(mem: TraceStore) -> None:
    await fill(mem, 2)
    assert (await mem.wait_for(message_id="m1", timeout=0.1)).seq == 2

    async def later() -> None:
        await asyncio.sleep(0.02)
        await mem.append(**msg(7, tenant="t9"))

    task = asyncio.create_task(later())
    rec = await mem.wait_for(lambda r: r.tenant == "t9", timeout=2)
    assert (rec.seq, rec.message_id) == (3, "m7")
    await task


async def test_wait_for_respects_since_seq(mem: TraceStore) -> None:
    await fill(mem, 2)
    waiter = asyncio.create_task(mem.wait_for(tenant="t1", since_seq=2, timeout=2))
    await asyncio.sleep(0)
    assert not waiter.done()
    await mem.append(**msg(5))
    assert (await waiter).seq == 3


async def test_wait_for_times_out(mem: TraceStore) -> None:
    await fill(mem, 2)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="message_type='Nope'"):
        await mem.wait_for(message_type="Nope", timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 1
    await mem.append(**msg(3, message_type="Nope"))  # no stale waiter left behind to trip over
    assert mem._waiters == {}


async def test_wait_for_is_failed_when_the_store_closes() -> None:
    s = TraceStore(None)
    await s.open()
    waiter = asyncio.create_task(s.wait_for(tenant="x", timeout=5))
    await asyncio.sleep(0)
    await s.close()
    with pytest.raises(HarnessError):
        await waiter


async def test_subscribe_yields_backlog_then_new_records_then_ends() -> None:
    s = TraceStore(None)
    await s.open()
    await fill(s, 2)
    seen: list[int] = []

    async def follow() -> None:
        async for rec in s.subscribe(since_seq=1, tenant="t1"):
            seen.append(rec.seq)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    await s.append(**msg(3, tenant="other"))
    await s.append(**msg(4))
    await asyncio.sleep(0.01)
    await s.close()
    await asyncio.wait_for(task, 1)
    assert seen == [2, 4]


async def test_concurrent_appends_keep_order_and_chain(store: TraceStore, db: Path) -> None:
    async def worker(w: int) -> list[TraceRecord]:
        return [await store.append(**msg(i, tenant=f"w{w}", message_id=f"w{w}-{i}")) for i in range(40)]

    results = await asyncio.gather(*(worker(w) for w in range(50)))
    assert len(store) == 2000
    for recs in results:  # each task's records are in its own order
        assert [r.seq for r in recs] == sorted(r.seq for r in recs)
    all_seqs = sorted(r.seq for recs in results for r in recs)
    assert all_seqs == list(range(1, 2001))
    assert [r.seq for r in store.query()] == all_seqs
    assert (await store.verify()).ok
    assert verify_records(read_records(db)).count == 2000


# ------------------------------------------------------------------------------------------ formatting

async def test_json_round_trip_and_format(mem: TraceStore) -> None:
    text = await mem.append(**msg(1, findings=[{"code": "XSD-001", "message": "m"}], note="retry"))
    binary = await mem.append(**msg(2, payload=b"\xff\xfe<x/>"))
    for rec in (text, binary):
        assert record_from_json(json.loads(json.dumps(record_to_json(rec)))) == rec
    assert record_to_json(text)["payload"].endswith("住民1</j:Envelope>")
    assert record_to_json(binary)["payload"] is None
    line = format_record(text)
    for part in ("1", "2026-03-30T10:00:00+09:00", "t1", "#8", "juki[131016]->cs[131016]", "TennyuTsuchi",
                 "id=m1", "corr=c1", "accepted", "[XSD-001]", "(retry)"):
        assert part in line
    assert "\n" not in line


# ------------------------------------------------------------------------------------------------- HTTP

@pytest.fixture
async def client(aiohttp_client: Any, store: TraceStore) -> TestClient[Any, Any]:
    root = web.Application()
    root.add_subapp("/trace", trace_app(store))
    c: TestClient[Any, Any] = await aiohttp_client(root)
    return c


async def test_http_list_filters_and_pages(client: TestClient[Any, Any], store: TraceStore) -> None:
    await fill(store, 5)
    await store.append(**msg(9, tenant="t2", arrow=9))
    resp = await client.get("/trace/", params={"tenant": "t1", "limit": "2", "since": "1"})
    assert resp.status == 200
    body = await resp.json()
    assert [r["seq"] for r in body["records"]] == [2, 3]
    assert body["next_since"] == 3
    assert body["last_seq"] == 6
    assert body["records"][0]["payload"] == msg(1)["payload"].decode()
    assert record_from_json(body["records"][0]) == store.query(message_id="m1")[0]
    resp = await client.get("/trace/", params={"arrow": "9", "type": "TennyuTsuchi"})
    assert [r["message_id"] for r in (await resp.json())["records"]] == ["m9"]


async def test_http_bad_parameter_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/trace/", params={"arrow": "eight"})
    assert resp.status == 400
    assert (await resp.json())["findings"][0]["code"] == "GW-TRACE-QUERY"


async def test_http_verify(client: TestClient[Any, Any], store: TraceStore, db: Path) -> None:
    await fill(store, 3)
    assert await (await client.get("/trace/verify")).json() == {
        "ok": True, "count": 3, "first_bad_seq": None, "reason": None}
    tamper(db, "UPDATE trace SET verdict='failed' WHERE seq=2")
    body = await (await client.get("/trace/verify")).json()
    assert (body["ok"], body["first_bad_seq"]) == (False, 2)


async def test_http_stream_follows(client: TestClient[Any, Any], store: TraceStore) -> None:
    await fill(store, 2)
    resp = await client.get("/trace/stream", params={"since": "1"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    first = json.loads(await resp.content.readline())
    assert first["seq"] == 2
    await store.append(**msg(3))
    second = json.loads(await asyncio.wait_for(resp.content.readline(), 2))
    assert (second["seq"], second["message_id"]) == (3, "m3")
    resp.close()


@pytest.mark.parametrize("content", [b"this is not a database, just some text" * 100, None])
async def test_unusable_file_is_a_clear_error(tmp_path: Path, content: bytes | None) -> None:
    target = tmp_path / "trace.sqlite"
    if content is None:
        target.mkdir()  # a directory where the file should be
    else:
        target.write_bytes(content)
    with pytest.raises(HarnessError) as err:
        await TraceStore(target).open()
    assert err.value.findings[0].code == "GW-TRACE-WRITE"


async def test_second_writer_on_the_same_file_fails_loudly(db: Path, commits: Any) -> None:
    async with TraceStore(db, commits=commits) as a, TraceStore(db, commits=commits) as b:
        await a.append(**msg(1))
        with pytest.raises(HarnessError) as err:
            await b.append(**msg(2))  # b also believes it writes seq 1: the chain must not fork
        assert err.value.findings[0].code == "GW-TRACE-WRITE"
        with pytest.raises(HarnessError):
            await b.append(**msg(3))  # the failed store stays failed
        assert (await a.append(**msg(4))).seq == 2
    assert verify_records(read_records(db)).ok


@pytest.mark.parametrize(("threshold_s", "mode"), [(0.0, "thread"), (10.0, "mixed")])
async def test_auto_commits_on_the_loop_only_when_the_disk_syncs_fast(
        db: Path, monkeypatch: pytest.MonkeyPatch, threshold_s: float, mode: str) -> None:
    """The probe is a real fsync in the trace's directory: never 0 s, never 10 s."""
    monkeypatch.setattr(trace_mod, "LOOP_COMMIT_SYNC_S", threshold_s)
    async with TraceStore(db) as s:
        assert s.sync_latency_s is not None and 0.0 < s.sync_latency_s < 10.0
        assert s.commit_mode == mode
        await fill(s, 3)
        assert (await s.verify()).ok
    async with TraceStore(None) as m:  # not durable: nothing to probe, nothing to wait for
        assert (m.sync_latency_s, m.commit_mode) == (None, "loop")


async def test_mixed_commits_a_busy_loops_batches_on_the_loop_and_a_quiet_ones_in_the_thread(db: Path) -> None:
    async with TraceStore(db, commits="mixed") as s:
        await fill(s, 3)  # one record at a time: a quiet loop
        assert (s.commits_on_loop, s.commits_in_thread) == (0, 3)
        await asyncio.gather(*(s.append(**msg(10 + i)) for i in range(3 * trace_mod.LOOP_COMMIT_BATCH)))
        assert s.commits_on_loop >= 1  # the first waits in the thread; those behind it form one batch
        assert (await s.verify()).ok
    assert [r.seq for r in read_records(db)] == list(range(1, 3 + 3 * trace_mod.LOOP_COMMIT_BATCH + 1))


async def test_the_wal_stays_bounded_however_commits_run(db: Path, commits: Any) -> None:
    """SQLite copies the WAL into the database at 4 MiB inside a commit, wherever that commit runs; a
    checkpoint beside the appends (another connection) let the WAL grow with the trace."""
    async with TraceStore(db, commits=commits) as s:
        for k in range(250):  # 250 commits of 10 records: ≈ 8 MiB of WAL frames written
            await asyncio.gather(*(s.append(**msg(10 * k + i, payload=os.urandom(600))) for i in range(10)))
        wal = Path(f"{db}-wal").stat().st_size
        assert wal <= 5 * 2**20, wal
        assert db.stat().st_size > 2**20  # checkpointed into the database while the store is open
    assert len(read_records(db)) == 2500


def test_an_unknown_commit_mode_is_refused() -> None:
    with pytest.raises(HarnessError) as err:
        TraceStore(None, commits="fast")  # type: ignore[arg-type]
    assert err.value.findings[0].code == "GW-TRACE-FIELD"


def test_the_fast_hash_input_is_the_canonical_form_byte_for_byte() -> None:
    """The per-record encoder writes exactly ``prev_hash + canonical_json`` (what verify recomputes)."""
    import random

    from conformance.record import FIELDS as _FIELDS
    from conformance.record import canonical as _canonical
    from conformance.record import chain_text as _chain_text

    rnd = random.Random(7)
    alphabet = "aZ09 -_:/\\\"\n\t\x00\x1f\x7f住民票\u2028\ufeff\U0001f600é"

    def s() -> str | None:
        return None if rnd.random() < 0.2 else "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 9)))

    names = [n for n in _FIELDS if n != "hash"]
    for i in range(2000):
        v: dict[str, Any] = {n: s() for n in names}
        payload = rnd.randbytes(rnd.randint(0, 64))
        v.update(seq=rnd.randint(1, 10**12), arrow=rnd.choice([None, 0, 8, 35]), kind="message",
                 verdict="accepted", recorded_at="2026-03-30T01:00:00.000001+00:00", payload=payload,
                 payload_sha256=hashlib.sha256(payload).hexdigest(), prev_hash=hashlib.sha256(b"%d" % i).hexdigest(),
                 findings=rnd.choice([[], [{"code": "X-1", "message": s() or "", "xpath": s(), "line": 3}]]))
        if i % 97 == 0:
            v["tenant"] = 12  # not a str: the generic encoder
        assert _chain_text(*(v[n] for n in names)) == v["prev_hash"].encode("ascii") + _canonical(v)


# ------------------------------------------------------------------------- bounded memory, file format 2

BIG = ("<Envelope xmlns='urn:juki-harness:1'><Header><MessageId>{i}</MessageId></Header><Body>"
       + "<Address><Prefecture>東京都</Prefecture><City>千代田区</City></Address>" * 20
       + "</Body></Envelope>")


def big(i: int) -> bytes:
    return BIG.format(i=i).encode("utf-8")


def count_records_alive() -> int:
    import gc

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is TraceRecord)


async def test_memory_holds_only_the_cache_however_many_records(tmp_path: Path) -> None:
    before = count_records_alive()
    async with TraceStore(tmp_path / "t.sqlite", cache_records=50) as s:
        for i in range(600):
            await s.append(**msg(i, tenant=f"t{i % 4}", payload=big(i)))
        held_600 = count_records_alive() - before
        for i in range(600, 1200):
            await s.append(**msg(i, tenant=f"t{i % 4}", payload=big(i)))
        held_1200 = count_records_alive() - before
        assert held_600 <= 50 and held_1200 <= 50  # bounded by the cache, not by the records held
        assert len(s) == 1200 and s.last_seq == 1200
        # ... and every record is still readable, from SQLite, exact and in seq order
        t1 = s.query(tenant="t1")
        assert [r.seq for r in t1] == list(range(2, 1201, 4))
        assert t1[0].payload == big(1) and t1[0].message_id == "m1"
        assert [r.seq for r in s.query(since_seq=1100, tenant="t3", limit=3)] == [1104, 1108, 1112]
        assert s.query(message_id="m7")[0].payload == big(7)
        assert (await s.wait_for(lambda r: r.message_id == "m3", timeout=1)).seq == 4  # outside the cache
        assert (await s.verify()) == (await s.verify()).__class__(True, 1200)


async def test_subscribe_reads_history_beyond_the_cache_then_follows(tmp_path: Path) -> None:
    async with TraceStore(tmp_path / "t.sqlite", cache_records=8) as s:
        await fill(s, 40)
        seen: list[int] = []

        async def follow() -> None:
            async for rec in s.subscribe(since_seq=3, tenant="t1"):
                seen.append(rec.seq)
                if rec.seq == 42:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.01)
        await s.append(**msg(40, tenant="x"))
        await s.append(**msg(41))
        await asyncio.wait_for(task, 2)
        assert seen == [*range(4, 41), 42]


async def test_rows_are_compressed_but_hash_the_raw_payload(store: TraceStore, db: Path) -> None:
    rec = await store.append(**msg(1, payload=big(1)))
    small = await store.append(**msg(2))
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT seq, length(payload) FROM trace").fetchall())
    codecs = dict(conn.execute("SELECT seq, pz FROM trace").fetchall())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    assert codecs == {1: 2, 2: 0}  # compressed (zlib + the file's dictionary) where it pays, else raw
    assert rows[1] < len(big(1)) // 3
    assert rec.payload_sha256 == hashlib.sha256(big(1)).hexdigest()
    assert read_records(db) == [rec, small]
    assert verify_records(read_records(db)).ok


async def test_a_corrupt_compressed_payload_is_reported_not_a_crash(store: TraceStore, db: Path) -> None:
    await store.append(**msg(1, payload=big(1)))
    await store.append(**msg(2, payload=big(2)))
    flip_payload_byte(db, 2)  # inside the zlib stream
    result = await store.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (
        False, 2, "payload_sha256 does not match the payload")


async def test_query_shows_only_committed_records(store: TraceStore) -> None:
    await fill(store, 2)
    fut = store.submit(**msg(3))
    assert store.last_seq == 2 and [r.seq for r in store.query()] == [1, 2]  # seq 3 fixed, not yet durable
    assert (await fut).seq == 3
    assert [r.seq for r in store.query()] == [1, 2, 3]


@pytest.mark.parametrize("on_disk", [True, False])
async def test_query_and_verify_after_close(db: Path, on_disk: bool) -> None:
    s = TraceStore(db if on_disk else None, cache_records=1)
    async with s:
        recs = await fill(s, 5)
    assert s.query(correlation_id="c1") == [recs[1], recs[4]]
    assert s.query(since_seq=3) == recs[3:]
    assert await s.verify() == (await s.verify()).__class__(True, 5)


V1_CREATE = """CREATE TABLE trace (
    seq INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, virtual_time TEXT, tenant TEXT, arrow INTEGER,
    kind TEXT NOT NULL, sender_actor TEXT, sender_lg TEXT, receiver_actor TEXT, receiver_lg TEXT,
    message_type TEXT, message_id TEXT, correlation_id TEXT, verdict TEXT NOT NULL, findings TEXT NOT NULL,
    payload BLOB NOT NULL, payload_sha256 TEXT NOT NULL, note TEXT, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL)"""


async def write_v1_file(path: Path, n: int) -> list[TraceRecord]:
    """A trace file as version 1 wrote it (raw payloads, no codec column, user_version 1)."""
    async with TraceStore(None) as s:
        recs = [await s.append(**msg(i, payload=big(i) if i % 2 else msg(i)["payload"],
                                     findings=[{"code": "XSD-001", "message": "x"}] if i == 2 else []))
                for i in range(n)]
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(V1_CREATE)
        conn.executemany(f"INSERT INTO trace VALUES ({', '.join('?' * 20)})", [
            tuple(json.dumps(getattr(r, f), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                  if f == "findings" else getattr(r, f) for f in TraceRecord.__dataclass_fields__)
            for r in recs])
        conn.execute("PRAGMA user_version=1")
    conn.close()
    return recs


async def test_a_version_1_file_is_migrated_on_open(db: Path) -> None:
    old = await write_v1_file(db, 6)
    assert read_records(db) == old  # readable offline before migration
    async with TraceStore(db) as s:
        assert (s.last_seq, s.last_hash) == (6, old[-1].hash)
        assert s.query(message_id="m2") == [old[2]]
        nxt = await s.append(**msg(6, payload=big(6)))
        assert (nxt.seq, nxt.prev_hash) == (7, old[-1].hash)
        assert await s.verify() == (await s.verify()).__class__(True, 7)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")} >= {
        "trace_tenant", "trace_message_id", "trace_correlation_id"}
    assert conn.execute("SELECT pz FROM trace WHERE seq IN (2, 7) ORDER BY seq").fetchall() == [(0,), (2,)]
    conn.close()
    assert read_records(db)[:6] == old  # the old records, hashes and all, unchanged


@pytest.mark.parametrize("setup", [
    "PRAGMA user_version=99",
    "CREATE TABLE trace (seq INTEGER PRIMARY KEY, something TEXT)",
], ids=["newer-format", "foreign-table"])
async def test_a_file_that_cannot_be_migrated_is_refused_clearly(db: Path, setup: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(setup)
    conn.close()
    with pytest.raises(HarnessError) as err:
        await TraceStore(db).open()
    assert err.value.findings[0].code == "GW-TRACE-FILE"
    assert str(db) in err.value.findings[0].message
    with pytest.raises(HarnessError) as err2:
        read_records(db)
    assert err2.value.findings[0].code == "GW-TRACE-FILE"


async def test_http_list_answers_without_trailing_slash(client: TestClient[Any, Any], store: TraceStore) -> None:
    await fill(store, 2)
    for path in ("/trace", "/trace/"):
        resp = await client.get(path, params={"since": "1"})
        assert resp.status == 200, path
        assert [r["seq"] for r in (await resp.json())["records"]] == [2]


async def stream_server(store: TraceStore) -> tuple[web.AppRunner, web.Application, str]:
    root = web.Application()
    tapp = trace_app(store)
    root.add_subapp("/trace", tapp)
    runner = web.AppRunner(root, shutdown_timeout=30)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, tapp, f"http://127.0.0.1:{port}/trace/stream"


@pytest.mark.parametrize("client_leaves", [True, False])
async def test_stream_does_not_hold_up_shutdown(store: TraceStore, client_leaves: bool) -> None:
    import aiohttp

    from simulators.trace_http import ACTIVE_STREAMS

    await fill(store, 1)
    runner, app, url = await stream_server(store)
    async with aiohttp.ClientSession() as http:
        resp = await http.get(url)
        assert json.loads(await resp.content.readline())["seq"] == 1
        assert len(app[ACTIVE_STREAMS]) == 1
        if client_leaves:
            resp.close()
            deadline = time.monotonic() + 3
            while app[ACTIVE_STREAMS] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not app[ACTIVE_STREAMS]  # the handler ended though no record arrived
        started = time.monotonic()
        await asyncio.wait_for(runner.cleanup(), 10)
        assert time.monotonic() - started < 3  # not the 30 s shutdown timeout
        resp.close()


async def test_bench_reports_bounded_memory_and_small_rows(tmp_path: Path) -> None:
    from simulators.trace_bench import run

    r = await run(3000, concurrency=50, tenants=5, path=tmp_path / "b.sqlite", seconds=8, cache_records=256)
    assert r.records == 3000 and r.appends_per_s > 0
    assert r.records_in_memory <= 256
    assert 0 < r.bytes_per_record <= 2048
    assert r.query_tenant_p50_ms > 0


@pytest.mark.slow
async def test_serve_stops_on_sigterm_after_a_stream_client_left(tmp_path: Path) -> None:
    """Issue 14: `serve` must still stop on SIGTERM after a /trace/stream follower went away."""
    import aiohttp
    from conftest import CONTROL_TOKEN

    err = (tmp_path / "serve.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conformance.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "var"),
        "--insecure-default-tokens", "--json", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, (tmp_path / "serve.log").read_text(errors="replace")
        base = json.loads(line)["trace"].rstrip("/")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as http:
            async with http.get(base) as r:  # no trailing slash
                assert r.status == 200
                last = (await r.json())["last_seq"]
            resp = await http.get(f"{base}/stream", params={"since": str(last)})
            assert resp.status == 200
            await asyncio.sleep(0.2)
            resp.close()  # the follower leaves; no record arrives after
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 8) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        err.close()


async def test_a_file_decodes_with_its_own_dictionary(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset dictionary is stored in the file: a later harness with another dictionary still reads it."""
    from simulators import tracedb

    async with TraceStore(db) as s:
        recs = [await s.append(**msg(i, payload=big(i))) for i in range(3)]
    monkeypatch.setattr(tracedb, "PRESET_DICT", b"<Other>another dictionary</Other>" * 8)
    assert read_records(db) == recs
    async with TraceStore(db) as s:
        assert s.query(message_id="m1") == [recs[1]]
        assert (await s.verify()).ok
