"""Issue 10 item 2 and issue 13 item 1 at the gateway: bounded lanes with backpressure (503 GW-BUSY,
nothing accepted dropped), expensive documents validated off the event loop (/health keeps answering),
and two small control-API defects (faults without a trailing slash, clearing maintenance windows)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from conftest import CONTROL_TOKEN, SUT_TOKEN, Control, identity_notice, post_msg
from hostile_corpus import attribute_flood

from conformance.envelope import findings_of, read_header
from conformance.xmlsafe import parse
from simulators.runtime import Runtime


@pytest.mark.parametrize("lane_limit, local_limit", [(8, 1024), (1024, 8)], ids=["all lanes", "simulators"])
async def test_a_burst_beyond_the_lanes_is_answered_busy_and_every_accepted_relay_is_recorded(
        harness: Runtime, http: aiohttp.ClientSession, control: Control, lane_limit: int, local_limit: int) -> None:
    """Either allowance binds on its own: all deliveries (``lane_limit``) or those to in-process simulators
    (``local_limit``, small so that a message's tree is still warm when it is delivered)."""
    gw = harness.gateway
    gw.lane_limit, gw.local_limit, gw.busy_wait_s = lane_limit, local_limit, 0.05
    # the CS relays each notice to the prefecture (arrow 5); a slow prefecture keeps the CS lane full
    await control("POST", "/faults/", {"kind": "latency", "match": {"arrow": 5},
                                       "params": {"fixed_ms": 200}}, expect=201)
    docs = [identity_notice(300 + i) for i in range(60)]

    async def post(data: bytes) -> tuple[int, bytes, str | None, str]:
        async with http.post(f"{harness.gateway_url}/msg", data=data,
                             headers={"Authorization": f"Bearer {SUT_TOKEN}"}) as r:
            return r.status, await r.read(), r.headers.get("Retry-After"), read_header(parse(data)).message_id

    answers = await asyncio.gather(*(post(d) for d in docs))
    accepted = [mid for status, _, _, mid in answers if status == 202]
    busy = [(body, ra) for status, body, ra, _ in answers if status == 503]
    assert len(accepted) + len(busy) == len(docs)
    assert busy and len(accepted) >= min(lane_limit, local_limit)
    assert all(ra == "1" for _, ra in busy)
    assert {f.code for body, _ in busy for f in findings_of(parse(body)[1][0])} == {"GW-BUSY"}
    assert all(b"to simulators" in body for body, _ in busy)
    assert gw.busy == len(busy)
    # nothing accepted is dropped: every 202'd notice is relayed (8 -> 5), in the trace
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        relayed = {r.correlation_id for r in harness.store.query(arrow=5, kind="message")}
        if set(accepted) <= relayed and gw.queued == 0:
            break
        await asyncio.sleep(0.1)
    assert set(accepted) <= relayed
    busy_mids = {mid for status, _, _, mid in answers if status == 503}
    assert not busy_mids & {r.message_id for r in harness.store.query(kind="message")}  # busy = not taken
    assert gw.queued == 0 and gw.queued_local == 0 and gw.intake == 0  # the lanes drained


async def test_health_answers_while_huge_envelopes_are_validated(harness: Runtime,
                                                                 http: aiohttp.ClientSession) -> None:
    flood = attribute_flood()  # 150,000 attributes, 1.7 MB
    stop = asyncio.Event()
    codes: list[int] = []

    async def attack() -> None:
        while not stop.is_set():
            status, _ = await post_msg(http, harness, flood)
            codes.append(status)

    attackers = [asyncio.create_task(attack()) for _ in range(3)]
    await asyncio.sleep(0.3)
    lat: list[float] = []
    t_end = time.monotonic() + 2.5
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        async with http.get(f"{harness.gateway_url}/health") as r:
            assert r.status == 200
        lat.append(time.perf_counter() - t0)
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*attackers)
    assert len(codes) >= 6 and set(codes) == {400}
    assert harness.gateway.offloaded >= len(codes)  # each one validated in a worker thread
    lat.sort()
    assert lat[int(len(lat) * 0.99)] < 0.1, lat[-5:]


async def test_faults_without_a_trailing_slash(control: Control) -> None:
    rule = {"kind": "error", "match": {"actor": "cs"}, "params": {"status": 500}}
    status, made = await control("POST", "/faults", rule)
    assert status == 201, made
    _, listed = await control("GET", "/faults", expect=200)
    assert [r["id"] for r in listed["rules"]] == [made["rule"]["id"]]
    await control("DELETE", "/faults", expect=200)
    _, listed = await control("GET", "/faults/", expect=200)
    assert listed["rules"] == []


async def test_an_empty_maintenance_list_clears_the_windows(harness: Runtime, http: aiohttp.ClientSession,
                                                            control: Control) -> None:
    t = (await control.tenant())["tenant"]
    window = {"start": "2026-04-01T00:00:00+09:00", "end": "2026-04-02T00:00:00+09:00", "actors": ["cs"]}
    _, out = await control("POST", f"/tenants/{t}/hours", {"enforce": True, "maintenance": [window]},
                           expect=200)
    assert len(out["maintenance"]) == 1
    _, out = await control("POST", f"/tenants/{t}/hours", {"enforce": True}, expect=200)
    assert len(out["maintenance"]) == 1  # no "maintenance" key: windows kept
    for method in ("PUT", "POST"):
        _, out = await control(method, f"/tenants/{t}/hours", {"maintenance": [window]}, expect=200)
        assert len(out["maintenance"]) == 1  # a list replaces, it does not add
        _, out = await control(method, f"/tenants/{t}/hours", {"maintenance": []}, expect=200)
        assert out["maintenance"] == [] and out["enforce_hours"] is True
    assert not harness.gateway.tenants[t].calendar.maintenance
    async with http.get(f"{harness.gateway_url}/control/tenants/{t}/clock",
                        headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as r:
        assert r.status == 200
