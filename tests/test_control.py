"""The control API: tenants with distinct peers, isolated waits, virtual clocks, late attribution, seeds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import aiohttp
from conftest import CONTROL_TOKEN, Control, FakeSut, identity_notice, person_of, post_msg, send_to_sut
from lxml import etree

from conformance.codec import resident_el
from conformance.envelope import J, read_header
from conformance.residents import ResidentFactory
from conformance.xmlsafe import parse
from simulators.runtime import Runtime


async def test_control_needs_the_control_token(harness: Runtime, http: aiohttp.ClientSession) -> None:
    for token in (None, "sut-secret"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.post(f"{harness.control_url}/tenants", json={}, headers=headers) as r:
            assert r.status == 401
    async with http.get(f"{harness.control_url}/faults/") as r:  # the faults sub-app too
        assert r.status == 401


async def test_bad_json_and_unknown_tenant_are_clean_errors(harness: Runtime, http: aiohttp.ClientSession,
                                                            control: Control) -> None:
    async with http.post(f"{harness.control_url}/tenants", data=b"{nope",
                         headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as r:
        assert r.status == 400
        assert (await r.json())["findings"][0]["code"] == "GW-CONTROL-JSON"
    status, body = await control("GET", "/tenants/T-none/clock")
    assert status == 404 and body["findings"][0]["code"] == "GW-TENANT"


async def test_tenants_get_distinct_peer_municipalities(control: Control) -> None:
    a = await control.tenant(peers=5, seed=7)
    b = await control.tenant(peers=5, seed=7)  # same seed: the codes must still differ
    assert a["tenant"] != b["tenant"] and a["sut_lg"] == "131016"
    codes_a = {p["lg_code"] for p in a["peers"]}
    codes_b = {p["lg_code"] for p in b["peers"]}
    assert len(codes_a) == len(codes_b) == 5 and not codes_a & codes_b
    assert all(p["prefecture"] and p["city"] for p in a["peers"])
    _, listed = await control("GET", "/tenants", expect=200)
    assert {t["tenant"] for t in listed["tenants"]} >= {a["tenant"], b["tenant"]}


async def test_waits_of_two_tenants_do_not_mix(control: Control, sut: FakeSut) -> None:
    a = (await control.tenant())["tenant"]
    b = (await control.tenant())["tenant"]
    sent_a = [(await send_to_sut(control, a, s))["message_id"] for s in (11, 12)]
    sent_b = [(await send_to_sut(control, b, 13))["message_id"]]
    await sut.wait_for(3)
    for tenant, ids in ((a, sent_a), (b, sent_b)):
        _, got = await control("POST", "/wait", {"tenant": tenant, "count": len(ids), "timeout": 5,
                                                  "filter": {"arrow": 9, "kind": "message"}}, expect=200)
        assert [r["message_id"] for r in got["records"]] == ids
        assert {r["tenant"] for r in got["records"]} == {tenant}


async def test_wait_times_out_with_408_and_what_it_found(control: Control) -> None:
    t = (await control.tenant())["tenant"]
    status, got = await control("POST", "/wait", {"tenant": t, "filter": {"arrow": 8}, "count": 1,
                                                   "timeout": 0.2})
    assert status == 408 and got["records"] == []


async def test_record_attributed_late_counts_for_a_wait(harness: Runtime, http: aiohttp.ClientSession,
                                                        control: Control) -> None:
    t = (await control.tenant())["tenant"]
    data = identity_notice(30)
    assert (await post_msg(http, harness, data))[0] == 202
    rec = harness.store.query(message_id=read_header(parse(data)).message_id)[0]
    assert rec.tenant is None  # nobody knew this person yet
    flt = {"arrow": 8, "type": "IdentityNotice"}
    waiting = asyncio.create_task(control("POST", "/wait", {"tenant": t, "timeout": 5, "filter": flt}))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await control("POST", f"/tenants/{t}/register", {"values": [person_of(30)]}, expect=200)
    status, got = await waiting
    assert status == 200
    assert got["records"][0]["seq"] == rec.seq and got["records"][0]["attributed_tenant"] == t
    # the relay that followed (8 -> 5) carries the correlation id and is the tenant's too
    _, relays = await control("POST", "/wait", {"tenant": t, "timeout": 5, "filter": {"arrow": 5}},
                              expect=200)
    assert relays["records"][0]["correlation_id"] == rec.message_id


async def test_wait_pages_with_limit_cover_every_record_once_late_ones_included(
        harness: Runtime, http: aiohttp.ClientSession, control: Control, sut: FakeSut) -> None:
    """``limit`` pages (the load check reads a national day's trace this way): page after page, with ``since``
    the last seq returned, gives exactly the records one unlimited wait gives, in seq order."""
    t = (await control.tenant())["tenant"]
    for s in (41, 42):
        await send_to_sut(control, t, s)
    assert (await post_msg(http, harness, identity_notice(43)))[0] == 202  # nobody's yet: attributed late
    for s in (44, 45, 46):
        await send_to_sut(control, t, s)
    await sut.wait_for(5)
    await control("POST", f"/tenants/{t}/register", {"values": [person_of(43)]}, expect=200)
    _, everything = await control("POST", "/wait", {"tenant": t, "count": 1, "timeout": 0})
    want = [r["seq"] for r in everything["records"]]
    assert len(want) > 6 and want == sorted(want)
    late = harness.store.query(message_id=read_header(parse(identity_notice(43))).message_id)[0].seq
    assert late in want and want.index(late) not in (0, len(want) - 1)  # a late record mid-page
    for limit in (1, 2, 3, 5):
        got: list[int] = []
        since = 0
        while True:
            _, page = await control("POST", "/wait", {"tenant": t, "count": 1, "timeout": 0, "limit": limit,
                                                      "filter": {"since": since}})
            seqs = [r["seq"] for r in page["records"]]
            assert len(seqs) <= limit
            got += seqs
            if len(seqs) < limit:
                break
            since = seqs[-1]
        assert got == want, limit
    status, bad = await control("POST", "/wait", {"tenant": t, "count": 1, "timeout": 0, "limit": -1})
    assert status == 400 and bad["findings"][0]["code"] == "GW-CONTROL-FIELD"


async def test_virtual_clock_set_freeze_advance_stamps_messages(control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    _, c = await control("POST", f"/tenants/{t}/clock", {"set": "2026-04-01T09:30:00+09:00", "freeze": True},
                         expect=200)
    assert c["now"] == "2026-04-01T09:30:00+09:00" and c["frozen"] is True
    await send_to_sut(control, t, 14)
    _, c2 = await control("POST", f"/tenants/{t}/clock", {"advance_seconds": 86400}, expect=200)
    assert datetime.fromisoformat(c2["now"]) - datetime.fromisoformat(c["now"]) == timedelta(days=1)
    await send_to_sut(control, t, 15)
    await sut.wait_for(2)
    sent = [read_header(parse(b)) for b in sut.received]
    assert [h.sent_at.isoformat() for h in sent] == ["2026-04-01T09:30:00+09:00", "2026-04-02T09:30:00+09:00"]
    assert [h.business_date.isoformat() for h in sent] == ["2026-04-01", "2026-04-02"]
    _, got = await control("GET", f"/tenants/{t}/clock", expect=200)
    assert got["now"] == "2026-04-02T09:30:00+09:00"


async def test_seed_is_recorded_registers_identifiers_and_shows_in_state(harness: Runtime,
                                                                         control: Control) -> None:
    created = await control.tenant(peers=1)
    t, lg = created["tenant"], created["peers"][0]["lg_code"]
    people = ResidentFactory(3, lg).residents(2)
    xml = etree.tostring(J.Residents(*(resident_el("Resident", r) for r in people)), encoding="unicode")
    _, out = await control("POST", f"/tenants/{t}/seed", {"actor": "peer", "kind": "residents", "xml": xml},
                           expect=200)
    assert out == {"ok": True, "registered": out["registered"]} and out["registered"] >= 2
    ev = harness.store.query(kind="event", tenant=t)[-1]
    assert ev.note == "seed"
    assert harness.gateway.tenant_of(ev) == t
    assert all(harness.gateway.tenant_by_id(p.juminhyo_code) == t for p in people)
    _, state = await control("GET", f"/tenants/{t}/state/peer", expect=200)
    assert people[0].juminhyo_code in str(state)
    status, bad = await control("POST", f"/tenants/{t}/seed", {"actor": "nobody", "kind": "residents"})
    assert status == 400 and bad["findings"][0]["code"] == "GW-ACTOR"


async def test_send_raw_bytes_goes_through_the_same_checks(control: Control) -> None:
    t = (await control.tenant())["tenant"]
    _, out = await control("POST", f"/tenants/{t}/send", {"actor": "cs", "raw": "<not-xml"}, expect=200)
    assert out["status"] == 400 and out["findings"][0]["code"] == "XML-SYNTAX"
    assert "ErrorReport" in out["response"]
    # raw bytes claiming another sender than the actor: refused as unauthorised
    raw = identity_notice(31).decode("utf-8")
    _, out = await control("POST", f"/tenants/{t}/send", {"actor": "cs", "raw": raw}, expect=200)
    assert out["status"] == 403 and out["findings"][0]["code"] == "GW-SENDER"


async def test_deliver_raw_reaches_the_sut_and_is_recorded(harness: Runtime, control: Control,
                                                           sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    sut.statuses.append(400)
    _, out = await control("POST", f"/tenants/{t}/deliver-raw", {"bytes": "<broken", "token": "x"},
                           expect=200)
    assert out["status"] == 400
    assert sut.received == [b"<broken"] and sut.auth == ["Bearer x"]
    rec = harness.store.query(kind="delivery", tenant=t)[-1]
    assert rec.payload == b"<broken" and rec.verdict == "failed" and "HTTP 400" in (rec.note or "")
