"""The fast stub SUT of ``juki-harness load --sut stub``: real HTTP on 127.0.0.1 with the real gateway.

What must hold: the sampled conformance scenarios of the load test pass against it (what it sends is valid and
complete — the gateway refuses anything else), a malformed counter request gets a clear ErrorReport, its
state stays within its caps however many persons pass through, and a 503 from the gateway is retried with the
same MessageId, a RetryReason, after the Retry-After it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conformance.engine import Engine, Harness
from conformance.residents import ResidentFactory
from conformance.scenario import load_suite
from conformance.validate import Validator
from load.plan import Tenant, _Builder
from load.runner import LoadOptions, harness_and_sut, run_load
from simulators.config import load_config
from simulators.reference.config import RefConfig
from simulators.reference.counter import OPERATIONS as REFERENCE_OPERATIONS
from simulators.runtime import Runtime
from simulators.stub import StubLimits, StubSut, start_stub_sut
from simulators.stub.record import Ctx

TOKEN = {"Authorization": "Bearer gateway-secret"}


async def test_the_sampled_positive_scenarios_pass_against_the_stub(tmp_path: Path) -> None:
    # the load test's samples, then what its other functions drive (F05 kiosk, F09 特例転入, F18 広域交付,
    # F30 online 転出) and the 個人番号 round trip (F23)
    ids = {"F01-P01", "F03-P01", "F07-P01", "F08-P01", "F20-P01", "F05-P01", "F09-P01", "F13-P01", "F18-P01",
           "F23-P01", "F30-P01"}
    chosen = [s for s in load_suite().scenarios if s.id in ids]
    assert len(chosen) == len(ids)
    results, sut = await _against_stub(chosen, tmp_path, seed=11, concurrency=4)
    contract, health = sut["contract"], sut["health"]
    assert {r.scenario.id: r.verdict for r in results} == dict.fromkeys(ids, "pass"), \
        "\n".join(r.explain() for r in results if r.verdict != "pass")
    assert contract["lg_code"] == load_config(None, data_dir=tmp_path).sut.lg_code
    assert "MovingNotification" in contract["operations"]
    assert set(contract["operations"]) == set(REFERENCE_OPERATIONS)  # every operation of the contract
    assert health["ok"] and health["refused"] == 0 and health["lost"] == 0 and health["sent"] > 10


@pytest.mark.slow  # seconds of scenarios: `make test`, not the fast set
async def test_the_koseki_moj_entry_and_code_change_scenarios_pass_against_the_stub(tmp_path: Path) -> None:
    """F11 法務省通知, F12/F14 戸籍・附票, F16 個別記載事項, F24 住民票コード変更: every scenario of these functions,
    the negative ones too (a malformed notice refused 400 and acted on in no way, a 特別永住者 held, a code CS
    refuses replaced by another)."""
    chosen = [s for s in load_suite().scenarios if s.functions[0] in {"F11", "F12", "F14", "F16", "F24"}]
    assert len(chosen) >= 20 and {"F11-P02", "F12-P02", "F14-P02", "F16-P01", "F24-P01"} <= {s.id for s in chosen}
    results, sut = await _against_stub(chosen, tmp_path, seed=5)
    health = sut["health"]
    assert [r.scenario.id for r in results if r.verdict != "pass"] == [], \
        "\n".join(r.explain() for r in results if r.verdict != "pass")
    assert health["refused"] == 0 and health["lost"] == 0  # everything it sent passed the gateway


@pytest.mark.slow  # seconds of scenarios: `make test`, not the fast set
async def test_household_change_and_the_robustness_scenarios_pass_against_the_stub(tmp_path: Path) -> None:
    """世帯変更 (F01, F06, F29: no IdentityNotice, no Change/Seq, no card info), 特例転入 past 30 days refused
    (F09), a 転入通知 with a wrong 個人番号 refused 400 (F13), a MunicipalNotice the agency refused resent with
    its NoticeNo and a RetryReason (F10)."""
    ids = {"F01-N05", "F06-N01", "F06-N05", "F29-N02", "F09-N02", "F13-N02", "F10-N01"}
    chosen = [s for s in load_suite().scenarios if s.id in ids]
    assert len(chosen) == len(ids)
    results, _ = await _against_stub(chosen, tmp_path, seed=9)
    assert {r.scenario.id: r.verdict for r in results} == dict.fromkeys(ids, "pass"), \
        "\n".join(r.explain() for r in results if r.verdict != "pass")


async def _against_stub(chosen: list[Any], tmp_path: Path, *, seed: int, concurrency: int = 8
                        ) -> tuple[list[Any], dict[str, Any]]:
    """Run scenarios through the conformance engine against the stub in its own process; the results and
    the stub's /contract and /health afterwards."""
    async with harness_and_sut(LoadOptions(sut="stub"), tmp_path) as (rt, _), aiohttp.ClientSession() as session:
        engine = Engine(Harness(session, rt.gateway_url, rt.config.gateway.tokens.control),
                        concurrency=concurrency, run_seed=seed, default_within=3.0)
        results = await engine.run_many(chosen)
        sut: dict[str, Any] = {}
        for page in ("contract", "health"):
            async with session.get(f"{rt.sut_url}/{page}") as resp:
                sut[page] = await resp.json()
    return results, sut


@asynccontextmanager
async def _lone_stub(gateway_url: str = "http://127.0.0.1:9", limits: StubLimits | None = None
                     ) -> AsyncIterator[StubSut]:
    async with start_stub_sut(RefConfig(gateway_url=gateway_url, retry_initial=0.05), limits) as sut:
        yield sut


async def test_a_malformed_counter_request_gets_a_clear_error_report() -> None:
    v = Validator()
    async with _lone_stub() as sut, aiohttp.ClientSession() as session:
        url = f"{sut.url}/counter"
        async with session.post(url, data=b"<Envelope><Header>", headers=TOKEN) as resp:
            status, body = resp.status, await resp.read()
        assert status == 400 and b"<Code>ENV-HEADER</Code>" in body and b"cut off" in body
        assert v.check(body).ok, v.check(body).findings  # the refusal itself is a valid ErrorReport envelope
        async with session.post(url, data=b"<x/>") as resp:
            assert resp.status == 401 and b"SUT-AUTH" in await resp.read()
        no_op = (b'<Envelope xmlns="urn:juki-harness:1" version="1"><Header><MessageId>M-1</MessageId>'
                 b'<MessageType>CounterRequest</MessageType><Sender actor="counter" lgCode="131016"/>'
                 b'<Receiver actor="juki" lgCode="131016"/><SentAt>2026-03-30T09:00:00+09:00</SentAt>'
                 b"<BusinessDate>2026-03-30</BusinessDate></Header><Body><CounterRequest><Staff>x</Staff>"
                 b"</CounterRequest></Body></Envelope>")
        async with session.post(url, data=no_op, headers=TOKEN) as resp:
            body = await resp.read()
        assert resp.status == 400 and b"<Code>COUNTER-NO-OP</Code>" in body
        assert b"<RefusedMessageId>M-1</RefusedMessageId>" in body and v.check(body).ok
        unknown = no_op.replace(b"<Staff>x</Staff>", b"<OperationDate>2026-03-30</OperationDate><Staff>x</Staff>"
                                b"<NoSuchOp/>").replace(b"M-1", b"M-2")
        async with session.post(url, data=unknown, headers=TOKEN) as resp:
            body = await resp.read()
        assert resp.status == 200 and b"<Status>refused</Status><Code>COUNTER-UNKNOWN-OP</Code>" in body
        assert v.check(body).ok, v.check(body).findings  # a refusal is a valid CounterResult


async def test_state_stays_bounded_and_every_message_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(None, data_dir=tmp_path, port=0)
    day = date(2026, 3, 30)
    b = _Builder(Tenant("t", cfg.sut.lg_code, ("271276",)), day)
    residents = [ResidentFactory(i, cfg.sut.lg_code, hard_share=0.0, today=day).resident() for i in range(12)]
    limits = StubLimits(persons=5, seen=4, lanes=2)
    v = Validator()
    async with Runtime(cfg) as rt, _lone_stub(rt.gateway_url, limits) as sut, aiohttp.ClientSession() as session:
        for r in residents:
            step = b.record(r)
            async with session.post(f"{sut.url}/counter", data=step["body"].encode(), headers=TOKEN) as resp:
                answer = await resp.read()
            assert resp.status == 200 and b"<Status>accepted</Status>" in answer
            assert v.check(answer).ok, v.check(answer).findings
        assert await sut.drain(5.0)
        sizes = {n: len(getattr(sut, n))
                 for n in ("persons", "by_idno", "by_name", "by_mn", "by_rescard", "households", "head_at")}
        assert max(sizes.values()) <= 5 and len(sut.seen) <= 4, sizes
        assert set(sut.persons) == {r.juminhyo_code for r in residents[-5:]}  # the oldest were forgotten
        assert sut.counts["refused"] == 0 and sut.counts["lost"] == 0
        assert sut.counts["sent"] >= 3 * len(residents)  # IdentityNotice, ResidentTransfer, AddresseeRecord


async def test_a_503_is_retried_with_the_same_message_id_after_retry_after() -> None:
    seen: list[tuple[float, str]] = []

    async def msg(request: web.Request) -> web.Response:
        seen.append((time.monotonic(), await request.text()))
        if len(seen) == 1:
            return web.Response(status=503, headers={"Retry-After": "0.3"}, text="GW-BUSY")
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/msg", msg)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with _lone_stub(f"http://127.0.0.1:{port}") as sut:
            await sut.emit(Ctx("2026-03-30T09:00:00+09:00", "2026-03-30", "M-x"), "IdentityNotice",
                           "<IdentityNotice/>", "k")
            assert await sut.drain(3.0)
    finally:
        await runner.cleanup()
    assert len(seen) == 2
    (t1, first), (t2, second) = seen
    assert t2 - t1 >= 0.28  # Retry-After honoured, not the 0.05 s backoff
    mid = first.split("<MessageId>")[1].split("<")[0]
    assert f"<MessageId>{mid}</MessageId>" in second
    assert "<RetryReason>" not in first and "<RetryReason>503 from gateway</RetryReason>" in second
    assert sut.counts == {**sut.counts, "sent": 1, "retried": 1, "lost": 0}


async def test_identical_counter_requests_run_once() -> None:
    """The same MessageId again (staff press twice, a proxy retries) is one operation with one answer."""
    async with _lone_stub(limits=StubLimits(attempts=1)) as sut, aiohttp.ClientSession() as session:
        day = date(2026, 3, 30)
        r = ResidentFactory(3, "131016", hard_share=0.0, today=day).resident()
        body = _Builder(Tenant("t", "131016", ("271276",)), day).record(r)["body"].encode()
        answers = await asyncio.gather(*(_post(session, f"{sut.url}/counter", body) for _ in range(3)))
        assert len(set(answers)) == 1 and b"<Status>accepted</Status>" in answers[0]
        assert sut.counts["operations"] == 1


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    async with session.post(url, data=body, headers=TOKEN) as resp:
        return await resp.read()


@pytest.mark.slow  # a real Locust subprocess for a few seconds: `make test`, not the fast set
async def test_a_short_load_run_with_the_stub_passes(tmp_path: Path) -> None:
    opts = LoadOptions(sut="stub", profile="peak-day", scale="municipality:150000", day=date(2026, 3, 30),
                       compress=6000.0, duration=2.0, out=tmp_path, seed=7, samples=("F01-P01",),
                       cascade_timeout=10.0)
    outcome = await run_load(opts, out=lambda s: None)
    totals = outcome.stats.totals()
    assert totals["actions"] > 5 and totals["ok"] + totals["late"] == totals["actions"], outcome.stats.errors()
    assert outcome.trace is not None
    assert outcome.trace.ok, outcome.trace.findings
    assert outcome.conformance and all(r["verdict"] == "pass" for r in outcome.conformance)
    assert outcome.exit_code == 0
    assert outcome.sut_process is not None and outcome.sut_process.startswith("python -m simulators.stub ")
    assert any("sut_cpu" in r for r in outcome.stats.cpu)  # the stub's CPU apart from the gateway's
