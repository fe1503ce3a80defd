"""`juki-harness trace` (HTTP and file, verify), restart replay, and the config file."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import Control, FakeSut, identity_notice, post_msg, send_to_sut

from conformance.envelope import read_header
from conformance.errors import HarnessError
from conformance.xmlsafe import parse
from simulators.config import HarnessConfig, load_config
from simulators.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conformance.cli", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_posted_message_shows_up_in_trace_over_http(harness: Runtime, http: aiohttp.ClientSession
                                                            ) -> None:
    data = identity_notice(40)
    assert (await post_msg(http, harness, data))[0] == 202
    mid = read_header(parse(data)).message_id
    code, out, err = await cli("trace", "--url", harness.gateway_url, "--arrow", "8", "--json")
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["message_id"] for r in recs] == [mid]
    code, out, _ = await cli("trace", "--url", harness.gateway_url)
    assert code == 0 and "IdentityNotice" in out and "juki[131016]->cs[131016]" in out
    code, out, _ = await cli("trace", "--url", harness.gateway_url, "--verify")
    assert code == 0 and "chain OK" in out


async def test_verify_names_the_tampered_record(harness_config: HarnessConfig, sut: FakeSut) -> None:
    async with Runtime(harness_config) as rt, aiohttp.ClientSession() as http:
        for i in range(3):
            assert (await post_msg(http, rt, identity_notice(50 + i)))[0] == 202
        await rt.gateway.wait(None, 3, 5.0, arrow=5)
    db = harness_config.gateway.trace_path
    code, out, _ = await cli("trace", "--db", str(db), "--verify")
    assert code == 0 and "chain OK" in out
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE trace SET message_type = 'Forged' WHERE seq = 2")
    code, out, _ = await cli("trace", "--db", str(db), "--verify")
    assert code == 1 and "BROKEN at seq 2" in out
    code, out, _ = await cli("trace", "--db", str(db), "--verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 2


async def test_restart_replays_tenants_and_sends_nothing_again(harness_config: HarnessConfig, sut: FakeSut
                                                               ) -> None:
    async with Runtime(harness_config) as rt, aiohttp.ClientSession() as http:
        c = Control(http, rt.control_url)
        t = await c.tenant(peers=2)
        await c("POST", f"/tenants/{t['tenant']}/clock", {"set": "2026-05-01T10:00:00+09:00", "freeze": True},
                expect=200)
        await send_to_sut(c, t["tenant"], 21)
        await sut.wait_for(1)
        await rt.gateway.wait(t["tenant"], 1, 5.0, kind="delivery")
        _, before = await c("GET", f"/tenants/{t['tenant']}/state/cs", expect=200)
        count = len(rt.store)
    async with Runtime(harness_config) as rt, aiohttp.ClientSession() as http:
        c = Control(http, rt.control_url)
        assert rt.gateway.replayed == count
        _, listed = await c("GET", "/tenants", expect=200)
        assert [x["peers"] for x in listed["tenants"]] == [t["peers"]]
        _, clock = await c("GET", f"/tenants/{t['tenant']}/clock", expect=200)
        assert clock["now"] == "2026-05-01T10:00:00+09:00"
        _, after = await c("GET", f"/tenants/{t['tenant']}/state/cs", expect=200)
        assert after == before
        await asyncio.sleep(0.2)
        assert len(sut.received) == 1 and len(rt.store) == count  # nothing re-sent


def test_config_file_is_checked_and_documented(tmp_path: Path) -> None:
    cfg = load_config(REPO / "config" / "default.toml")
    assert cfg.gateway.port == 8700 and cfg.sut.lg_code == "131016"
    assert len(cfg.simulated_actors) == 16 and "resident" in cfg.simulated_actors
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nprot = 1\n', encoding="utf-8")
    with pytest.raises(HarnessError, match="prot"):
        load_config(bad)
    real = tmp_path / "real.toml"
    real.write_text('[actors.certserver]\nurl = "https://vendor.example/inbound"\ntoken = "cert-secret"\n',
                    encoding="utf-8")
    cfg = load_config(real)
    assert cfg.real_actors["certserver"].url == "https://vendor.example/inbound"
    assert "certserver" not in cfg.simulated_actors


async def test_with_reference_sut_the_counter_proxy_reaches_it(harness_config: HarnessConfig) -> None:
    from conformance.samples import sample

    async with Runtime(harness_config, with_reference_sut=True) as rt, aiohttp.ClientSession() as http:
        assert rt.sut_url is not None and rt.config.sut.inbound_url == f"{rt.sut_url}/inbound"
        async with http.get(f"{rt.sut_url}/health") as r:
            assert r.status == 200
        c = Control(http, rt.control_url)
        t = (await c.tenant())["tenant"]
        data = sample("CounterRequest", 1)  # SpecialMoveInPending
        async with http.post(f"{rt.gateway_url}/counter", data=data,
                             headers={"Authorization": "Bearer control-secret", "X-Juki-Tenant": t}) as r:
            assert r.status == 200, await r.text()
            answer = read_header(parse(await r.read()))
        assert answer.message_type == "CounterResult"
        rec = rt.store.query(message_id=answer.message_id)[0]
        assert (rec.kind, rec.verdict, rec.arrow, rec.tenant) == ("response", "accepted", 24, t)
