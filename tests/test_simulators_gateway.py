"""The simulators hosted by the real gateway (in-memory trace, no SUT listening): every hop is on the trace.

The SUT's inbound endpoint points at a closed port, so deliveries to it fail fast; what the simulators do is
still recorded (the messages on 9 are accepted before delivery is tried).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from test_simulators_support import identity_notice, residents_xml

from conformance.codec import person_identity_el
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors import SIMULATORS
from simulators.config import HOSTED_ACTORS, parse_config
from simulators.gateway import Gateway
from simulators.toolbox import E, sibling, txt
from simulators.trace import TraceStore

SUT = "131016"
JUKI = ("juki", SUT)
CS = ("cs", SUT)


def config() -> object:
    return parse_config({
        "gateway": {"delivery": {"attempts": 1, "backoff_seconds": 0.01, "timeout_seconds": 1.0}},
        "sut": {"inbound_url": "http://127.0.0.1:9/inbound", "counter_url": "http://127.0.0.1:9/counter"},
    })


@pytest.fixture
async def store() -> AsyncIterator[TraceStore]:
    async with TraceStore(None) as s:
        yield s


@pytest.fixture
async def gw(store: TraceStore) -> AsyncIterator[Gateway]:
    async with Gateway(config(), store) as g:  # type: ignore[arg-type]
        yield g


@pytest.fixture
def person() -> Resident:
    return ResidentFactory(51, SUT).resident()


def test_registry_covers_every_hosted_actor() -> None:
    assert set(SIMULATORS) == set(HOSTED_ACTORS)
    assert all(cls.actor == actor for actor, cls in SIMULATORS.items())


async def test_gateway_hosts_all_simulators_as_siblings(gw: Gateway) -> None:
    assert gw.missing_simulators == []
    assert sibling(gw, "national") is gw.sims["national"]


async def test_order_refusal_and_query_through_the_gateway(gw: Gateway, store: TraceStore,
                                                           person: Resident) -> None:
    t = gw.create_tenant("it", peers=1).id
    gw.register(t, person.juminhyo_code)
    ok = await gw.send(sender=JUKI, receiver=CS, message_type="IdentityNotice",
                       body=identity_notice(person, 1), tenant=t)
    assert ok.status == 202
    relayed = await store.wait_for(timeout=3, arrow=5, message_type="IdentityNotice", kind="message")
    assert relayed.correlation_id == ok.message_id
    await gw.send(sender=JUKI, receiver=CS, message_type="IdentityNotice",
                  body=identity_notice(person, 3, "M01"), tenant=t)
    refused = await store.wait_for(timeout=3, arrow=5, kind="refused")
    assert [f["code"] if isinstance(f, dict) else f.code for f in refused.findings] == ["PREF-ORDER"]
    q = E.IdentityQuery(E.QueryNo("Q-1"), E.Purpose("本人確認"), E.JuminhyoCode(person.juminhyo_code))
    res = await gw.send(sender=("counter", SUT), receiver=CS, message_type="IdentityQuery", body=q, tenant=t)
    assert res.status == 200 and res.response is not None
    assert txt(res.response.body, "Result/Status") == "accepted"
    arrows = [r.arrow for r in store.query(tenant=t) if r.kind in ("message", "response")]
    assert arrows[-4:] == [13, 3, 4, 14]


async def test_numbers_survive_a_restart_of_the_gateway(gw: Gateway, store: TraceStore,
                                                        person: Resident) -> None:
    t = gw.create_tenant("restart", peers=0).id
    await gw.record_event("tenant.create", t, {"tenant": t, "name": "restart", "seed": 0, "peers": []})
    gw.seed(t, "national", "residents", {"xml": residents_xml(person)})
    await gw.record_event("seed", t, {"actor": "national", "kind": "residents",
                                      "args": {"xml": residents_xml(person)}})
    body = E.NumberGenerationRequest(E.RequestNo("R-1"), E.Purpose("新規指定"),
                                     person_identity_el("Identity", replace(person, my_number=None)))
    sent = await gw.send(sender=JUKI, receiver=CS, message_type="NumberGenerationRequest", body=body,
                         tenant=t)
    ntd = await store.wait_for(timeout=3, arrow=9, message_type="NumberToDesignate", kind="message")
    assert ntd.correlation_id == sent.message_id
    issued = set(gw.sims["national"].snapshot(t)["issued"])
    assert len(issued) == 1
    async with Gateway(config(), store) as again:  # type: ignore[arg-type]
        assert set(again.sims["national"].snapshot(t)["issued"]) == issued
        assert person.juminhyo_code in again.sims["national"].snapshot(t)["identities"]


async def test_a_built_envelope_is_validated_as_built_and_recorded_as_serialised(
        gw: Gateway, store: TraceStore, person: Resident) -> None:
    """In-process sends skip the re-parse: the record holds the exact bytes, and a re-parse agrees."""
    from conformance.validate import Validator
    from conformance.xmlsafe import parse

    t = gw.create_tenant("built", peers=0).id
    gw.register(t, person.juminhyo_code)
    ok = await gw.send(sender=JUKI, receiver=CS, message_type="IdentityNotice",
                       body=identity_notice(person, 1), tenant=t)
    assert ok.status == 202
    relayed = await store.wait_for(timeout=3, arrow=5, message_type="IdentityNotice", kind="message")
    first = store.query(message_id=ok.message_id)[0]
    for rec in (first, relayed):
        assert rec.verdict == "accepted" and rec.tenant == t
        checked = Validator().check(rec.payload)  # what the HTTP path would have said of the same bytes
        assert checked.ok, checked.findings
        assert rec.payload.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        assert parse(rec.payload).findtext("{urn:juki-harness:1}Header/{urn:juki-harness:1}MessageId") \
            == rec.message_id
    for _ in range(300):  # the relay is delivered to pref after its record commits
        if gw.sims["pref"].snapshot(t)["accepted"] == 1:
            break
        await asyncio.sleep(0.01)
    assert gw.sims["pref"].snapshot(t)["accepted"] == 1
    assert (await store.verify()).ok


async def test_a_built_envelope_that_fails_is_refused_as_over_http(gw: Gateway, store: TraceStore,
                                                                   person: Resident) -> None:
    """A refusal of an in-process send reads as it would over HTTP: findings with their lines."""
    t = gw.create_tenant("bad", peers=0).id
    body = identity_notice(replace(person, my_number="123456789012"), 1)  # wrong check digit
    out = await gw.send_outcome(sender=JUKI, receiver=CS, message_type="IdentityNotice", body=body, tenant=t)
    assert out.status == 400
    assert "ID-MYNUMBER" in [f.code for f in out.findings]
    assert all(f.line for f in out.findings if f.code == "ID-MYNUMBER")
    refused = store.query(kind="refused")[-1]
    assert refused.message_id == out.message_id
