"""The gateway over HTTP: acceptance, every refusal path, sync answers, deliveries to the SUT."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest
from conftest import (
    CONTROL_TOKEN,
    GATEWAY_TOKEN,
    Control,
    FakeSut,
    body_xml,
    identity_notice,
    person_of,
    post_msg,
)

from conformance.envelope import findings_of, read_header
from conformance.samples import sample
from conformance.xmlsafe import parse
from simulators.config import HarnessConfig
from simulators.runtime import Runtime


def _swap(data: bytes, old: str, new: str) -> bytes:
    text = data.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, 1).encode("utf-8")


async def test_accepted_message_is_in_the_trace_and_relayed(harness: Runtime, http: aiohttp.ClientSession,
                                                            control: Control) -> None:
    data = identity_notice(1)
    mid = read_header(parse(data)).message_id
    status, body = await post_msg(http, harness, data)
    assert (status, body) == (202, b"")
    async with http.get(f"{harness.trace_url}/", params={"message_id": mid},
                        headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as r:
        recs = (await r.json())["records"]
    first = recs[0]
    got = tuple(first[k] for k in ("kind", "verdict", "arrow", "sender_actor", "receiver_actor"))
    assert got == ("message", "accepted", 8, "juki", "cs")
    assert first["payload"].encode("utf-8") == data
    # the CS relays it to the prefecture (8 -> 5), correlated to the SUT's message
    _, waited = await control("POST", "/wait", {"filter": {"arrow": 5, "correlation_id": mid}, "timeout": 5},
                              expect=200)
    assert waited["records"][0]["sender_actor"] == "cs"


async def test_trace_api_needs_the_control_token(harness: Runtime, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{harness.trace_url}/") as r:
        assert r.status == 401


XXE = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<Envelope xmlns="urn:juki-harness:1">&x;</Envelope>')


def _bad_check_digit() -> bytes:
    data = identity_notice(2)
    mn = parse(data).findtext(".//{urn:juki-harness:1}MyNumber")
    assert mn is not None
    wrong = mn[:-1] + str((int(mn[-1]) + 1) % 10)
    return _swap(data, f"<MyNumber>{mn}</MyNumber>", f"<MyNumber>{wrong}</MyNumber>")


@pytest.mark.parametrize(("name", "make", "token", "status", "code"), [
    ("malformed", lambda: b"<Envelope xmlns='urn:juki-harness:1'><Header>", "sut-secret", 400, "XML-SYNTAX"),
    ("xxe", lambda: XXE, "sut-secret", 400, "XML-ENTITY"),
    ("schema-invalid",
     lambda: _swap(identity_notice(3), "<Sex>", "<Gender>").replace(b"</Sex>", b"</Gender>"),
     "sut-secret", 400, "XSD-INVALID"),
    ("bad-check-digit", _bad_check_digit, "sut-secret", 400, "ID-MYNUMBER"),
    ("unknown-type", lambda: _swap(identity_notice(4), "<MessageType>IdentityNotice<",
                                   "<MessageType>NoSuchNotice<"), "sut-secret", 400, "ENV-TYPE"),
    ("no-arrow", lambda: _swap(identity_notice(5), 'actor="cs"', 'actor="pref"'), "sut-secret", 404,
     "GW-NO-ARROW"),
    ("wrong-sender", lambda: _swap(identity_notice(6), 'actor="juki"', 'actor="national"'), "sut-secret", 403,
     "GW-SENDER"),
    ("bad-token", lambda: identity_notice(7), "wrong-token", 401, "GW-AUTH"),
    ("no-token", lambda: identity_notice(8), None, 401, "GW-AUTH"),
])
async def test_refusals_answer_an_error_report_and_are_recorded(
        harness: Runtime, http: aiohttp.ClientSession, name: str, make: object, token: str | None,
        status: int, code: str) -> None:
    assert callable(make)
    data: bytes = make()
    got, body = await post_msg(http, harness, data, token)
    assert got == status, body
    report = parse(body)
    assert read_header(report).message_type == "ErrorReport"
    codes = [f.code for f in findings_of(report[1][0])]
    assert code in codes, codes
    rec = harness.store.query(kind="refused")[-1]
    assert rec.verdict == "refused"
    if status in (401, 403):  # issue 13: unauthorised traffic keeps no payload, only its size and digest
        import hashlib
        assert rec.payload == b"" and hashlib.sha256(data).hexdigest() in (rec.note or "")
    else:
        assert rec.payload == data
    assert code in [f["code"] for f in rec.findings]


async def test_receiver_down_answers_503_and_is_recorded(harness: Runtime, http: aiohttp.ClientSession,
                                                         control: Control) -> None:
    await control("POST", "/faults/", {"kind": "downtime", "match": {"actor": "cs"}}, expect=201)
    status, body = await post_msg(http, harness, identity_notice(9))
    assert status == 503
    assert [f.code for f in findings_of(parse(body)[1][0])] == ["GW-DOWN"]
    assert harness.store.query(kind="refused")[-1].findings[0]["code"] == "GW-DOWN"


async def test_hours_make_juki_net_down_only_for_a_tenant_that_enforces_them(
        harness: Runtime, http: aiohttp.ClientSession, control: Control) -> None:
    t = (await control.tenant())["tenant"]
    await control("POST", f"/tenants/{t}/register", {"values": [person_of(10), person_of(11)]}, expect=200)
    await control("POST", f"/tenants/{t}/clock", {"set": "2026-04-05T10:00:00+09:00"}, expect=200)  # Sunday
    assert (await post_msg(http, harness, identity_notice(10)))[0] == 202  # not enforced: any time works
    await control("POST", f"/tenants/{t}/hours", {"enforce": True}, expect=200)
    status, body = await post_msg(http, harness, identity_notice(11))
    assert status == 503
    assert "Juki-Net is closed" in findings_of(parse(body)[1][0])[0].message


async def test_sync_query_is_answered_and_recorded_on_the_response_arrow(
        harness: Runtime, http: aiohttp.ClientSession) -> None:
    data = sample("IdentityQuery", 1)  # counter -> cs on 13; cs asks national (3 -> 4)
    status, body = await post_msg(http, harness, data)
    assert status == 200, body
    answer = read_header(parse(body))
    assert answer.message_type == "IdentityQueryResult"
    assert answer.correlation_id == read_header(parse(data)).message_id
    rec = harness.store.query(message_id=answer.message_id)[0]
    assert (rec.kind, rec.arrow, rec.verdict) == ("response", 14, "accepted")
    assert harness.store.query(arrow=3, kind="message") and harness.store.query(arrow=4, kind="response")


async def test_delivery_to_the_sut_retries_with_the_same_message_id(
        harness: Runtime, control: Control, sut: FakeSut) -> None:
    t = await control.tenant()
    sut.statuses.extend([503, 500])
    _, out = await control("POST", f"/tenants/{t['tenant']}/send", {
        "actor": "cs", "to": "juki", "type": "MoveOutCertRequest",
        "body": body_xml(sample("MoveOutCertRequest", 2))}, expect=200)
    assert out["status"] == 202, out
    await sut.wait_for(3)
    assert sut.message_ids() == [out["message_id"]] * 3
    assert set(sut.auth) == {f"Bearer {GATEWAY_TOKEN}"}
    _, waited = await control("POST", "/wait", {"tenant": t["tenant"], "count": 3, "timeout": 5,
                                                 "filter": {"kind": "delivery",
                                                            "message_id": out["message_id"]}},
                              expect=200)
    assert [r["verdict"] for r in waited["records"]] == ["failed", "failed", "delivered"]
    notes = [r["note"].split(":")[0] for r in waited["records"]]
    assert notes == ["attempt 1/3", "attempt 2/3", "attempt 3/3"]


async def test_counter_proxy_records_request_and_result_on_the_operation_arrows(
        harness: Runtime, http: aiohttp.ClientSession, control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    data = sample("CounterRequest", 1)  # SpecialMoveInPending: in 30, out 24
    async with http.post(f"{harness.gateway_url}/counter", data=data,
                         headers={"Authorization": f"Bearer {CONTROL_TOKEN}", "X-Juki-Tenant": t}) as r:
        assert r.status == 200, await r.text()
        answer = read_header(parse(await r.read()))
    assert sut.counter_requests == [data]
    req = harness.store.query(message_id=read_header(parse(data)).message_id)[0]
    res = harness.store.query(message_id=answer.message_id)[0]
    assert (req.arrow, req.tenant, res.arrow, res.kind, res.tenant) == (30, t, 24, "response", t)



async def _counter_call(harness: Runtime, http: aiohttp.ClientSession, tenant: str, data: bytes) -> int:
    async with http.post(f"{harness.gateway_url}/counter", data=data,
                         headers={"Authorization": f"Bearer {CONTROL_TOKEN}", "X-Juki-Tenant": tenant}) as r:
        await r.read()
        return r.status


async def test_a_counter_request_is_never_resent_even_after_a_5xx(
        harness: Runtime, http: aiohttp.ClientSession, control: Control, sut: FakeSut) -> None:
    t = (await control.tenant())["tenant"]
    sut.counter_statuses.append(503)  # deliveries would retry a 503; a counter operation must not be redone
    data = sample("CounterRequest", 1)
    assert await _counter_call(harness, http, t, data) == 503
    assert sut.counter_requests == [data]
    attempts = harness.store.query(message_id=read_header(parse(data)).message_id, kind="delivery")
    assert [r.note.split(":")[0] for r in attempts] == ["attempt 1/1"]


async def test_the_counter_proxy_waits_longer_than_a_delivery_attempt(
        harness_config: HarnessConfig, http: aiohttp.ClientSession, sut: FakeSut) -> None:
    """A counter operation that waits for an asynchronous answer outlasts the delivery time limit."""
    d = replace(harness_config.gateway.delivery, timeout_seconds=0.2, counter_timeout_seconds=5.0)
    cfg = replace(harness_config, gateway=replace(harness_config.gateway, delivery=d))
    sut.counter_delay = 0.6
    async with Runtime(cfg) as rt:
        t = (await Control(http, rt.control_url).tenant())["tenant"]
        assert await _counter_call(rt, http, t, sample("CounterRequest", 1)) == 200
    assert len(sut.counter_requests) == 1
