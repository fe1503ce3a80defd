"""The reference SUT's outbox rule: in order, one at a time, retried with the same MessageId and a RetryReason
after 503 or a dead gateway, 4xx dropped, nothing lost across a restart (or a crash of the process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from conformance.codec import address_el, jdate_el
from conformance.model import Address, JDate, Resident
from conformance.residents import ResidentFactory
from conformance.xmlsafe import q
from simulators.reference import RefConfig, ReferenceSut
from simulators.reference.testing import E as J
from simulators.reference.testing import FakeGateway, Received, counter_request, official_record, text

LG = "131016"
DAY = date(2026, 3, 30)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as g:
        yield g


def cfg(gw: FakeGateway, data_dir: Path, **kw: Any) -> RefConfig:
    base = RefConfig(
        gateway_url=gw.url, data_dir=data_dir, retry_initial=0.02, retry_max=0.1, answer_timeout=2.0
    )
    return replace(base, **kw)


@pytest.fixture
def residents() -> list[Resident]:
    f = ResidentFactory(11, LG, hard_share=0.0, card_share=0.0)
    out: list[Resident] = []
    while len(out) < 2:
        r = f.resident()
        if r.foreign is None:
            out.append(replace(r, relationship="世帯主", honseki=None))
    return out


def tenkyo(code: str, town: str) -> etree._Element:
    op = J.MovingNotification(J.Kind("転居"))
    jdate_el("EventDate", JDate.of(DAY), op)
    address_el("NewAddress", Address(lg_code=LG, prefecture="東京都", city="千代田区", town=town), op)
    op.append(J.Person(J.JuminhyoCode(code)))
    return op


def key(m: Received) -> tuple[str, str | None, str | None]:
    """(type, person, Seq) of a message, to compare orders."""
    code = text(m.body, "Identity/JuminhyoCode") or text(m.body, "Resident/JuminhyoCode")
    return m.type, code, text(m.body, "Change/Seq")


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


EXPECTED_TYPES = ["IdentityNotice", "ResidentTransfer", "AddresseeRecord"]


async def test_503_is_retried_in_order_with_the_same_message_id_and_a_reason(
    gw: FakeGateway, tmp_path: Path, residents: list[Resident]
) -> None:
    async with ReferenceSut(cfg(gw, tmp_path / "r")) as sut:
        gw.sut_url = sut.url
        gw.down = True
        for r in residents:
            res = await gw.counter(DAY, official_record(r))
            assert text(res, "Result/Status") == "accepted"  # the counter answers although CS is down
        await until(lambda: len(gw.attempts) >= 4)
        assert {h.message_id for h in gw.attempts} == {gw.attempts[0].message_id}  # never overtaken
        assert gw.attempts[0].retry_reason is None
        assert all(h.retry_reason and "503" in h.retry_reason for h in gw.attempts[1:])
        gw.down = False
        await gw.settle()
    got = gw.received
    assert [m.type for m in got] == EXPECTED_TYPES * 2
    assert [text(m.body, "Identity/JuminhyoCode") for m in got if m.type == "IdentityNotice"] == [
        r.juminhyo_code for r in residents
    ]
    assert got[0].header.message_id == gw.attempts[0].message_id and got[0].header.retry_reason
    assert all(m.header.retry_reason is None for m in got[1:])


async def test_a_dead_gateway_is_a_connection_error_and_retried(
    tmp_path: Path, residents: list[Resident]
) -> None:
    gw = FakeGateway()
    await gw.start()
    port = gw.port
    await gw.stop()  # nobody listens on the gateway's port now
    gw2 = FakeGateway()
    async with ReferenceSut(
        RefConfig(
            gateway_url=f"http://127.0.0.1:{port}",
            data_dir=tmp_path / "r",
            retry_initial=0.02,
            retry_max=0.05,
        )
    ) as sut:
        await gw2.start(port)
        gw2.sut_url = sut.url
        gw2.down = True
        await gw2.counter(DAY, official_record(residents[0]))
        await until(lambda: len(gw2.attempts) >= 1)
        await gw2.stop()  # connection refused for a while
        assert sut.outbox is not None and sut.outbox.pending_count() == 3
        await asyncio.sleep(0.2)
        gw3 = FakeGateway()
        await gw3.start(port)
        gw3.sut_url = sut.url
        try:
            await gw3.settle()
            assert [m.type for m in gw3.received] == EXPECTED_TYPES
            assert gw3.received[0].header.retry_reason is not None
        finally:
            await gw3.stop()


async def test_a_4xx_refusal_is_dropped_not_retried(
    gw: FakeGateway, tmp_path: Path, residents: list[Resident]
) -> None:
    gw.refuse_types = {"ResidentTransfer"}
    async with ReferenceSut(cfg(gw, tmp_path / "r")) as sut:
        gw.sut_url = sut.url
        await gw.counter(DAY, official_record(residents[0]))
        await gw.settle()
        assert sut.outbox is not None
        states = {r["message_type"]: (r["state"], r["attempts"], r["status"]) for r in sut.outbox.rows()}
    assert [m.type for m in gw.received] == ["IdentityNotice", "AddresseeRecord"]
    assert [h.message_type for h in gw.attempts].count("ResidentTransfer") == 1
    assert states["ResidentTransfer"] == ("refused", 1, 400)


async def test_messages_are_durable_before_the_counter_answers(
    gw: FakeGateway, tmp_path: Path, residents: list[Resident]
) -> None:
    gw.down = True
    async with ReferenceSut(cfg(gw, tmp_path / "r")) as sut:
        gw.sut_url = sut.url
        await gw.counter(DAY, official_record(residents[0]))
        # another connection (as after a crash) already sees the three messages
        with sqlite3.connect(sut.cfg.db_path) as c:
            rows = c.execute("SELECT message_type FROM outbox ORDER BY oid").fetchall()
        assert [r[0] for r in rows] == EXPECTED_TYPES


async def test_restart_resumes_the_outbox_in_order(
    gw: FakeGateway, tmp_path: Path, residents: list[Resident]
) -> None:
    data = tmp_path / "r"
    a, b = residents
    gw.down = True
    async with ReferenceSut(cfg(gw, data)) as sut:
        gw.sut_url = sut.url
        await gw.counter(DAY, official_record(a))
        await gw.counter(DAY, official_record(b))
        await gw.counter(DAY + timedelta(days=1), tenkyo(a.juminhyo_code, "一番町"))
        await until(lambda: len(gw.attempts) >= 2)
    assert gw.received == []
    gw.down = False
    async with ReferenceSut(cfg(gw, data)) as sut2:
        gw.sut_url = sut2.url
        await gw.settle()
    assert [key(m) for m in gw.received] == [
        *[(t, a.juminhyo_code, "1") for t in EXPECTED_TYPES],
        *[(t, b.juminhyo_code, "1") for t in EXPECTED_TYPES],
        *[(t, a.juminhyo_code, "2") for t in EXPECTED_TYPES],
    ]
    assert gw.received[0].header.retry_reason  # attempted before the restart: a resend
    assert len({m.header.message_id for m in gw.received}) == 9


async def test_a_crashed_process_loses_nothing(
    gw: FakeGateway, tmp_path: Path, residents: list[Resident]
) -> None:
    """A real process (python -m simulators.reference) killed with SIGKILL; a new SUT on its data delivers."""
    data = tmp_path / "r"
    gw.down = True
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.reference",
            "--gateway-url",
            gw.url,
            "--port",
            "0",
            "--data-dir",
            str(data),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        url = line.decode().split(" on ")[1].split(" ")[0]
        gw.sut_url = url
        assert gw.validator.check(counter_request(DAY, official_record(residents[0]))).ok
        for r in residents:
            res = await gw.counter(DAY, official_record(r))
            assert text(res, "Result/Status") == "accepted"
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
    await asyncio.sleep(0.1)  # a POST the dead process left in the socket is answered 503 like the others
    gw.down = False
    async with ReferenceSut(cfg(gw, data)) as sut:
        gw.sut_url = sut.url
        await gw.settle()
    first: dict[str, Received] = {}
    for m in gw.received:
        if m.header.message_id in first:
            assert m.header.retry_reason, "a message delivered twice must carry a RetryReason"
        first.setdefault(m.header.message_id, m)
    assert [m.type for m in first.values()] == EXPECTED_TYPES * 2


async def test_a_sync_send_waits_in_the_outbox_and_the_counter_is_held(
    gw: FakeGateway, tmp_path: Path
) -> None:
    gw.down = True
    async with ReferenceSut(cfg(gw, tmp_path / "r", answer_timeout=0.3)) as sut:
        gw.sut_url = sut.url
        res = await gw.counter(DAY, J.IdentityQueryOp(J.Purpose("確認"), J.MyNumber("123456789018")))
        assert (text(res, "Result/Status"), text(res, "Result/Code")) == ("held", "CS-NO-ANSWER")
        assert res.find(q("Document")) is None
        gw.down = False
        await gw.settle()
        [query] = gw.of("IdentityQuery")
        assert query.header.retry_reason and query.arrow == 13
