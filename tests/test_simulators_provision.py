"""宛名システム, 中間サーバー (18→16, 16→7→3) and the other business systems (21)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort, change, forbid_scans, identity_notice, sync_symbol_catalogue

from conformance.codec import resident_el
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors.addressee import AddresseeSimulator
from simulators.actors.cs import CsSimulator
from simulators.actors.intermediate import IntermediateSimulator
from simulators.actors.national import NationalSimulator
from simulators.actors.others import OthersSimulator
from simulators.actors.pref import PrefSimulator
from simulators.toolbox import E, txt

T = "T1"
JUKI = ("juki", SUT)
ADDRESSEE = ("addressee", SUT)


@pytest.fixture
def port() -> FakePort:
    p = FakePort(catalogue=sync_symbol_catalogue())
    for cls in (CsSimulator, PrefSimulator, NationalSimulator, AddresseeSimulator, IntermediateSimulator,
                OthersSimulator):
        p.add(cls)
    return p


@pytest.fixture
def people() -> list[Resident]:
    return ResidentFactory(31, SUT).household(2)


def record(r: Resident, seq: int = 1, no: str = "AR-1") -> etree._Element:
    return E.AddresseeRecord(E.RecordNo(no), resident_el("Resident", r), change("A04", seq))


async def test_addressee_record_provisions_the_intermediate_without_my_number(port: FakePort,
                                                                             people: list[Resident]) -> None:
    r = people[0]
    res = await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(r), T)
    prov = port.last("IntermediateProvision")
    assert prov.arrow == 16 and prov.header.correlation_id == res.message_id
    assert prov.body.find(".//{*}MyNumber") is None and prov.body.find(".//{*}JuminhyoCode") is None
    assert r.my_number is not None and r.my_number not in etree.tostring(prov.body, encoding="unicode")
    no = txt(prov.body, "AddresseeNo") or ""
    assert re.fullmatch(r"AD[0-9]{10}", no)
    stored = port.sims["intermediate"].snapshot(T)
    assert stored["provisions"][no]["name_kanji"] == r.name.kanji
    assert stored["with_my_number"] == []


async def test_the_same_person_keeps_one_addressee_number(port: FakePort, people: list[Resident]) -> None:
    a, b = people
    forbid_scans(port.sims["addressee"], T, "by_no")  # a person's number through the index, not a scan
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(a, 1, "AR-1"), T)
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(replace(a, relationship="子"), 2, "AR-2"), T)
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(b, 1, "AR-3"), T)
    nos = [txt(m.body, "AddresseeNo") for m in port.of_type("IntermediateProvision")]
    assert nos[0] == nos[1] != nos[2]
    fresh = AddresseeSimulator(FakePort())
    for m in port.log:
        if m.header.receiver_actor == "addressee":
            fresh.apply(m, "in")
    assert fresh.addressee_no(T, a.juminhyo_code) == nos[0]


async def test_symbol_request_goes_16_7_3_and_back(port: FakePort, people: list[Resident]) -> None:
    r = people[0]
    await port.inject(JUKI, ("cs", SUT), "IdentityNotice", identity_notice(r, 1), T)  # Juki-Net knows r
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(r), T)
    no = txt(port.last("IntermediateProvision").body, "AddresseeNo") or ""
    res = await port.sims["intermediate"].request_symbol(T, no)
    await port.drain()
    assert [m.arrow for m in port.of_type("SymbolAcquisitionNotice")] == [7, 3]
    assert port.last("SymbolAcquisitionNotice").body.findtext("{*}JuminhyoCode") == r.juminhyo_code
    assert res.response is not None
    answer = res.response.body
    assert (txt(answer, "Result/Status"), txt(answer, "AddresseeNo")) == ("accepted", no)
    symbol = txt(answer, "Symbol") or ""
    assert re.fullmatch(r"S[0-9A-Z]{23}", symbol)
    assert port.sims["intermediate"].snapshot(T)["symbols"][no] == symbol
    assert port.sims["addressee"].snapshot(T)["symbols"][no] == symbol
    # the next provision of that person carries the symbol
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(r, 2, "AR-9"), T)
    assert txt(port.last("IntermediateProvision").body, "Symbol") == symbol


async def test_unknown_addressee_number_is_not_found_without_asking_juki_net(port: FakePort) -> None:
    res = await port.sims["intermediate"].request_symbol(T, "AD0000000000")
    assert res.response is not None
    assert (txt(res.response.body, "Result/Status"), txt(res.response.body, "Result/Code")) == \
        ("not-found", "ADR-UNKNOWN")
    assert port.of_type("SymbolAcquisitionNotice") == []


async def test_symbol_for_a_person_juki_net_does_not_know(port: FakePort, people: list[Resident]) -> None:
    await port.inject(JUKI, ADDRESSEE, "AddresseeRecord", record(people[1]), T)
    no = txt(port.last("IntermediateProvision").body, "AddresseeNo") or ""
    res = await port.sims["intermediate"].request_symbol(T, no)
    assert res.response is not None
    assert txt(res.response.body, "Result/Status") == "not-found"
    assert txt(res.response.body, "Symbol") is None


@pytest.mark.parametrize(("target", "with_number"), [("税務", True), ("国民健康保険", False)])
async def test_others_keep_transfers_per_target(port: FakePort, people: list[Resident], target: str,
                                                with_number: bool) -> None:
    r = people[0]
    body = E.ResidentTransfer(E.TransferNo("TR-1"), E.Target(target),
                              resident_el("Resident", r, include_my_number=with_number), change("A04", 1))
    await port.inject(JUKI, ("others", SUT), "ResidentTransfer", body, T)
    await port.inject(JUKI, ("others", SUT), "ResidentTransfer", body, T)
    got = port.sims["others"].snapshot(T)["targets"][target]
    assert [(g["juminhyo_code"], g["has_my_number"], g["reason"]) for g in got] == \
        [(r.juminhyo_code, with_number, "A04")] * 2
