"""The reference SUT test fixtures: a stand-in gateway, the SUT on loopback, residents and message builders.

Shared by ``test_reference_sut.py`` (surfaces, F01–F07) and ``test_reference_sut_functions.py`` (F08–F30); the
fixtures (``gw``, ``sut``, ``factory``) are here too; each test module imports them (``sut`` overrides the
conftest's ``sut`` there only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from lxml import etree

from conformance.codec import address_el, jdate_el, name_el
from conformance.model import Address, JDate, Resident
from conformance.residents import ResidentFactory
from conformance.xmlsafe import q
from simulators.reference import RefConfig, ReferenceSut
from simulators.reference.testing import E as J
from simulators.reference.testing import (
    FakeGateway,
    Received,
    official_record,
    text,
)

LG = "131016"
PEER = "271004"  # 大阪市
DAY = date(2026, 3, 30)


def jd(d: date) -> JDate:
    return JDate.of(d)


async def load(gw: FakeGateway, *people: Resident) -> None:
    for r in people:
        res = await gw.counter(DAY - timedelta(days=1), official_record(r))
        assert text(res, "Result/Status") == "accepted", etree.tostring(res, encoding="unicode")
    await gw.settle()


def japanese(factory: ResidentFactory, *, honseki_lg: str | None = None, card: bool = True) -> Resident:
    r = factory.resident()
    if r.foreign is not None or r.honseki is None:
        return japanese(factory, honseki_lg=honseki_lg, card=card)
    if honseki_lg is not None:
        r = replace(r, honseki=replace(r.honseki, lg_code=honseki_lg))
    if not card:
        r = replace(r, card_no=None, card_serial=None)
    return replace(r, relationship="世帯主")


def moving(
    kind: str,
    event: date,
    *people: etree._Element,
    FromLgCode: str | None = None,
    ToLgCode: str | None = None,
    NewAddress: Address | None = None,
    HeadJuminhyoCode: str | None = None,
) -> etree._Element:
    """A MovingNotification in the XSD's element order."""
    op = J.MovingNotification(J.Kind(kind))
    jdate_el("EventDate", jd(event), op)
    if FromLgCode:
        op.append(J.FromLgCode(FromLgCode))
    if ToLgCode:
        op.append(J.ToLgCode(ToLgCode))
    if NewAddress is not None:
        address_el("NewAddress", NewAddress, op)
    if HeadJuminhyoCode:
        op.append(J.HeadJuminhyoCode(HeadJuminhyoCode))
    for p in people:
        op.append(p)
    return op


def code_only(code: str, relationship: str | None = None) -> etree._Element:
    el = J.Person(J.JuminhyoCode(code))
    if relationship:
        el.append(J.Relationship(relationship))
    return el


def here(town: str = "神田錦町") -> Address:
    return Address(lg_code=LG, prefecture="東京都", city="千代田区", town=town, block="1丁目1番1号")


def reason(body: etree._Element) -> str | None:
    el = body.find(f"{q('Change')}/{q('Reason')}")
    return None if el is None else el.get("code")


def status(res: etree._Element) -> tuple[str | None, str | None]:
    return text(res, "Result/Status"), text(res, "Result/Code")


def seqs(msgs: list[Received]) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (
            text(m.body, "Identity/JuminhyoCode"),
            reason(m.body),
            text(m.body, "Change/Seq"),
        )
        for m in msgs
    ]

def entry_notice(code: str) -> etree._Element:
    return J.IndividualEntryNotice(
        J.NoticeNo("N-1"),
        J.SourceLgCode(PEER),
        J.Subject(J.JuminhyoCode(code)),
        J.Entry(J.Kind("国民健康保険"), J.From("2026-04-01"), J.Number("123")),
    )


def eapp(
    app_id: str, r: Resident, submitted: str, planned: date, kind: str = "転出届・転入予約"
) -> etree._Element:
    """An EApplication (arrow 35) of ``r``, at ``r``'s address, to move to 大阪市."""
    a = J.Applicant()
    name_el("Name", r.name, a)
    jdate_el("BirthDate", r.birth_date, a)
    body = J.EApplication(J.ApplicationId(app_id), J.Kind(kind), J.SubmittedAt(submitted), J.LgCode(LG), a)
    address_el("CurrentAddress", r.address, body)
    body.append(J.PlannedMoveOutDate(planned.isoformat()))
    address_el(
        "Destination", Address(lg_code=PEER, prefecture="大阪府", city="大阪市", town="北区梅田"), body
    )
    body.append(J.CertSerial("0123456789ABCDEF0123"))
    body.append(J.Signature("c2lnbmF0dXJl"))
    return body


# --- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as g:
        yield g


@pytest.fixture
async def sut(gw: FakeGateway, tmp_path: Path) -> AsyncIterator[ReferenceSut]:
    cfg = RefConfig(
        gateway_url=gw.url, data_dir=tmp_path / "ref", retry_initial=0.02, retry_max=0.2, answer_timeout=3.0
    )
    async with ReferenceSut(cfg) as s:
        gw.sut_url = s.url
        yield s
    bad = [[f.for_people() for f in fs] for _, fs in gw.invalid]
    assert not bad, f"the SUT sent invalid messages: {bad}"


@pytest.fixture
def factory() -> ResidentFactory:
    return ResidentFactory(7, LG, hard_share=0.0, card_share=1.0)
