"""Namesakes: residents sharing 氏名 and 生年月日, told apart by address — in both SUTs we ship."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from reference_sut_support import DAY, LG, eapp, factory, gw, japanese, load, status  # noqa: F401

from conformance.residents import ResidentFactory
from simulators.reference import RefConfig, ReferenceSut
from simulators.reference.testing import E as J
from simulators.reference.testing import FakeGateway, text
from simulators.stub import start_stub_sut


@pytest.fixture(params=["reference", "stub"])
async def either_sut(request: pytest.FixtureRequest, gw: FakeGateway, tmp_path: Path) -> AsyncIterator[None]:
    """The reference SUT or the stub, each behind the stand-in gateway."""
    cfg = RefConfig(gateway_url=gw.url, data_dir=tmp_path / "ref", retry_initial=0.02, retry_max=0.2)
    async with AsyncExitStack() as stack:
        if request.param == "reference":
            gw.sut_url = (await stack.enter_async_context(ReferenceSut(cfg))).url
        else:
            gw.sut_url = (await stack.enter_async_context(start_stub_sut(cfg))).url
        yield
    assert not gw.invalid, [[f.for_people() for f in fs] for _, fs in gw.invalid]


async def test_f30_an_applicant_is_told_apart_by_address_from_a_namesake(
    gw: FakeGateway, either_sut: None, factory: ResidentFactory
) -> None:
    """Two residents with the same 氏名 and 生年月日 (common among a moving season's 18-year-olds): the
    e-application's CurrentAddress says which one applied, though the other was recorded later."""
    a = japanese(factory)
    b = replace(japanese(factory), name=a.name, birth_date=a.birth_date)
    assert a.address != b.address
    await load(gw, a, b)
    await gw.deliver("EApplication", eapp("EA-TWIN", a, "2026-03-28T21:00:00+09:00", DAY + timedelta(days=5)),
                     sender=("portal", LG), receiver=("counter", LG))
    mark = gw.mark()
    res = await gw.counter(DAY, J.EApplicationProcessOp(J.ApplicationId("EA-TWIN")))
    assert status(res) == ("accepted", None), etree.tostring(res, encoding="unicode")
    await gw.settle()
    [info] = gw.since(mark, "MoveOutCertInfo")
    assert text(info.body, "Member/Resident/MyNumber") == a.my_number
