"""Each fault kind, applied by the gateway to real traffic (to the stand-in SUT and to a simulator)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from conftest import Control, FakeSut, identity_notice, post_msg, send_to_sut

from conformance.envelope import findings_of
from conformance.xmlsafe import parse
from simulators.runtime import Runtime


async def test_latency_delays_the_answer_of_a_slow_simulator(harness: Runtime, http: aiohttp.ClientSession,
                                                             control: Control) -> None:
    await control("POST", "/faults/", {"kind": "latency", "match": {"arrow": 8, "actor": "cs"},
                                       "params": {"fixed_ms": 300}}, expect=201)
    t0 = time.perf_counter()
    status, _ = await post_msg(http, harness, identity_notice(20))
    assert status == 202 and time.perf_counter() - t0 >= 0.3
    assert "fault" in (harness.store.query(kind="message")[-1].note or "")


async def test_error_answers_its_status_and_code(harness: Runtime, http: aiohttp.ClientSession,
                                                 control: Control) -> None:
    await control("POST", "/faults/", {"kind": "error", "match": {"actor": "cs"},
                                       "params": {"status": 500, "code": "CS-BROKEN"}, "count": 1},
                  expect=201)
    status, body = await post_msg(http, harness, identity_notice(21))
    assert status == 500
    assert [f.code for f in findings_of(parse(body)[1][0])] == ["CS-BROKEN"]
    assert (await post_msg(http, harness, identity_notice(22)))[0] == 202  # count = 1


async def test_drop_acknowledges_and_never_delivers(harness: Runtime, control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    await control("POST", "/faults/", {"kind": "drop", "match": {"arrow": 9, "tenant": t}}, expect=201)
    out = await send_to_sut(control, t, 3)
    assert out["status"] == 202
    await asyncio.sleep(0.3)
    assert sut.received == []
    assert "drop" in (harness.store.query(message_id=out["message_id"])[0].note or "")


async def test_duplicate_delivers_twice_with_the_same_message_id(control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    await control("POST", "/faults/", {"kind": "duplicate", "match": {"arrow": 9}}, expect=201)
    out = await send_to_sut(control, t, 4)
    await sut.wait_for(2)
    assert sut.message_ids() == [out["message_id"]] * 2


async def test_reorder_releases_a_window_newest_first(control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    await control("POST", "/faults/", {"kind": "reorder", "match": {"arrow": 9}, "params": {"window": 2}},
                  expect=201)
    a = await send_to_sut(control, t, 5)
    b = await send_to_sut(control, t, 6)
    await sut.wait_for(2)
    assert sut.message_ids() == [b["message_id"], a["message_id"]]


async def test_fault_rules_are_listed_and_removed(control: Control) -> None:
    _, made = await control("POST", "/faults/", {"id": "x", "kind": "drop"}, expect=201)
    assert made["rule"]["id"] == "x"
    _, listed = await control("GET", "/faults/", expect=200)
    assert [r["id"] for r in listed["rules"]] == ["x"]
    await control("DELETE", "/faults/x", expect=204)
    assert (await control("GET", "/faults/"))[1]["rules"] == []
