"""The reference SUT inside the real harness (simulators.runtime.Runtime): the gateway validates and records
every message, the simulated CS, prefecture, national server and card system answer. Nothing the SUT sends
may be refused, and the asynchronous answers of Juki-Net come back to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from conformance.codec import name_el
from conformance.envelope import body_of, build, header
from conformance.model import Name, Resident
from conformance.residents import ResidentFactory
from conformance.xmlsafe import parse
from simulators.clock import JST
from simulators.config import HarnessConfig
from simulators.reference.testing import E as J
from simulators.reference.testing import documents, items, official_record, text
from simulators.runtime import Runtime

LG = "131016"
DAY = date(2026, 3, 30)
CONTROL = {"Authorization": "Bearer control-secret"}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[Runtime, aiohttp.ClientSession, str]]:
    cfg = HarnessConfig().with_ports(0).with_data_dir(tmp_path)
    async with (
        Runtime(cfg, with_reference_sut=True, memory_trace=True) as rt,
        aiohttp.ClientSession(headers=CONTROL) as s,
    ):
        async with s.post(f"{rt.control_url}/tenants", json={"name": "ref", "peers": 2, "seed": 3}) as r:
            tenant = (await r.json())["tenant"]
        yield rt, s, tenant
        async with s.get(f"{rt.trace_url}/", params={"tenant": tenant, "limit": "10000"}) as r:
            data = await r.json()
        records = data["records"] if isinstance(data, dict) else data
        refused = [
            (x.get("message_type"), x.get("findings"))
            for x in records
            if x.get("sender_actor") in ("juki", "counter") and x.get("verdict") == "refused"
        ]
        assert not refused, f"the gateway refused messages of the reference SUT: {refused}"


async def counter(h: tuple[Runtime, aiohttp.ClientSession, str], op: etree._Element) -> etree._Element:
    rt, s, tenant = h
    env = build(
        header(
            "CounterRequest",
            ("counter", LG),
            ("juki", LG),
            sent_at=datetime(2026, 3, 30, 10, tzinfo=JST),
            business_date=DAY,
        ),
        J.CounterRequest(J.OperationDate(DAY.isoformat()), op),
    )
    async with s.post(f"{rt.gateway_url}/counter", data=env, headers={"X-Juki-Tenant": tenant}) as r:
        assert r.status == 200, await r.text()
        result: etree._Element = body_of(parse(await r.read()))
    return result


async def wait(
    h: tuple[Runtime, aiohttp.ClientSession, str], count: int = 1, **flt: Any
) -> list[dict[str, Any]]:
    rt, s, tenant = h
    body = {
        "tenant": tenant,
        "filter": {"kind": "message", "verdict": "accepted", **flt},
        "count": count,
        "timeout": 10,
    }
    async with s.post(f"{rt.control_url}/wait", json=body) as r:
        data = await r.json()
        assert r.status == 200, data
    records: list[dict[str, Any]] = data["records"]
    return records


@pytest.fixture
def person() -> Resident:
    f = ResidentFactory(21, LG, hard_share=0.0, card_share=0.0)
    while True:
        r = f.resident()
        if r.foreign is None:
            return r


async def test_record_reaches_the_prefecture_through_cs(harness: Any, person: Resident) -> None:
    res = await counter(harness, official_record(person))
    assert text(res, "Result/Status") == "accepted"
    assert await wait(harness, arrow=5, type="IdentityNotice")
    assert await wait(harness, arrow=16, type="IntermediateProvision")


async def test_birth_gets_its_number_from_the_national_server(harness: Any, person: Resident) -> None:
    await counter(harness, official_record(person))
    child = J.Person()
    name_el("Name", Name(kanji="田中\u3000花", kana="タナカ\u3000ハナ"), child)
    child.append(J.Sex("2"))
    child.append(J.Relationship("子"))
    op = J.MovingNotification(
        J.Kind("出生"),
        J.EventDate(J.Western("2026-03-28"), J.Wareki("令和8年3月28日")),
        J.HeadJuminhyoCode(person.juminhyo_code),
        child,
    )
    res = await counter(harness, op)
    assert text(res, "Result/Status") == "accepted", etree.tostring(res, encoding="unicode")
    number = text(res, "Document/Member/MyNumber")
    assert number and len(number) == 12
    assert await wait(harness, arrow=9, type="NumberToDesignate")
    assert await wait(harness, arrow=6, type="NoticeDestination")
    assert len(await wait(harness, 3, arrow=5, type="IdentityNotice")) == 3  # parent, child A03, child M11


async def test_card_issue_through_the_cs_terminal_and_the_card_system(harness: Any, person: Resident) -> None:
    await counter(harness, official_record(person))
    res = await counter(
        harness,
        J.CardIssueOp(
            J.JuminhyoCode(person.juminhyo_code), J.ApplicationNo("APP-9"), J.CheckedDocument("運転免許証")
        ),
    )
    assert text(res, "Result/Status") == "accepted", etree.tostring(res, encoding="unicode")
    card_no = items(documents(res)[0])["カード管理番号"][0]
    assert card_no and card_no.startswith("C")
    assert await wait(harness, arrow=13, type="CardIssuanceRequest")
    [info] = await wait(harness, arrow=10, type="CardManagementInfo")
    assert info["message_type"] == "CardManagementInfo"
