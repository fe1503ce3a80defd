"""Defect injection: the catalogue covers F01–F30, names are checked, and the hooks change behaviour only
when a defect is injected (a sample; the full self-test belongs to the scenarios' defect catalogue)."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from conformance.codec import address_el, jdate_el
from conformance.model import JDate, Resident
from conformance.mutations import TRAFFIC, apply_traffic
from conformance.residents import ResidentFactory
from conformance.rules import find_my_numbers
from conformance.samples import sample
from conformance.validate import Validator
from simulators.reference import DEFECTS, RefConfig, ReferenceSut
from simulators.reference import defects as defects_mod
from simulators.reference.testing import E as J
from simulators.reference.testing import FakeGateway, documents, items, members, official_record, person_el

LG = "131016"
DAY = date(2026, 3, 30)
PKG = Path(defects_mod.__file__).parent


def test_every_function_has_a_defect() -> None:
    functions = {d.function for d in DEFECTS.values()}
    assert functions == {f"F{n:02d}" for n in range(1, 31)}
    assert all(name == d.name and d.description for name, d in DEFECTS.items())


def test_every_catalogued_defect_is_consulted_and_every_point_is_catalogued() -> None:
    used: set[str] = set()
    for path in PKG.glob("*.py"):
        if path.name in ("defects.py", "testing.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("on", "skip")
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
            ):
                used.add(str(node.args[1].value))
    used.add("duplicate-notice")  # via transform_outgoing
    used |= set(defects_mod.TRAFFIC_DEFECTS)  # via rewrite (outbox, counter answers): traffic mutations
    assert used == set(DEFECTS)


def test_unknown_defect_names_fail_loudly() -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        RefConfig(defects=frozenset({"no-such-defect"}))
    with pytest.raises(KeyError):
        defects_mod.on(RefConfig(), "no-such-point")
    assert not any(defects_mod.on(RefConfig(), n) for n in DEFECTS)


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as g:
        yield g


@pytest.fixture
def person() -> Resident:
    f = ResidentFactory(3, LG, hard_share=0.0, card_share=1.0)
    while True:
        r = f.resident()
        if r.foreign is None and r.honseki is not None:
            return replace(r, relationship="世帯主")


@asynccontextmanager
async def running(gw: FakeGateway, tmp: Path, *names: str) -> AsyncIterator[ReferenceSut]:
    cfg = RefConfig(
        gateway_url=gw.url,
        data_dir=tmp,
        retry_initial=0.02,
        retry_max=0.1,
        answer_timeout=2.0,
        defects=frozenset(names),
    )
    async with ReferenceSut(cfg) as sut:
        gw.sut_url = sut.url
        yield sut


async def _types_after_record(gw: FakeGateway, r: Resident) -> object:
    await gw.counter(DAY, official_record(r))
    await gw.settle()
    return gw.types()


async def _copy_has_address(gw: FakeGateway, r: Resident) -> object:
    await gw.counter(DAY, official_record(r))
    res = await gw.counter(
        DAY,
        J.CopyRequest(
            J.JuminhyoCode(r.juminhyo_code),
            J.Scope("本人"),
            J.Requester("本人"),
            J.Relationship("false"),
            J.Honseki("false"),
            J.IncludeMyNumber("false"),
            J.IncludeJuminhyoCode("false"),
        ),
    )
    return members(documents(res)[0])[0].find("{urn:juki-harness:1}Address") is not None


async def _certdata_numbers(gw: FakeGateway, r: Resident) -> object:
    res = await gw.counter(DAY, official_record(r))
    idno = items(documents(res)[0])[f"識別番号:{r.juminhyo_code}"][0] or ""
    req = J.CertificateDataRequest(
        J.RequestNo("R-1"),
        J.IdentificationNo(idno),
        J.Request(
            J.CertificateKind("住民票の写し"),
            J.Scope("本人"),
            J.Copies("1"),
            J.Options(J.Relationship("false"), J.Honseki("false")),
        ),
    )
    _, data = await gw.deliver("CertificateDataRequest", req, sender=("certserver", LG))
    return find_my_numbers(data.decode())


async def _order_after_503(gw: FakeGateway, r: Resident) -> object:
    gw.down = True
    await gw.counter(DAY, official_record(r))
    gw.down = False
    await gw.settle()
    return gw.types()


async def _malformed_status(gw: FakeGateway, r: Resident) -> object:
    status, _ = await gw.post_sut("/inbound", b"<not-xml")
    return status


async def _identity_copies(gw: FakeGateway, r: Resident) -> object:
    await gw.counter(DAY, official_record(r))
    await gw.settle()
    return len(gw.of("IdentityNotice"))


async def _late_item(gw: FakeGateway, r: Resident) -> object:
    op = J.MovingNotification(J.Kind("国内転入"))
    jdate_el("EventDate", JDate.of(date(2026, 3, 1)), op)
    op.append(J.FromLgCode("011002"))
    address_el("NewAddress", r.address, op)
    op.append(person_el(r))
    res = await gw.counter(DAY, op)
    return "届出期間経過" in items(documents(res)[0])


Probe = Callable[[FakeGateway, Resident], Awaitable[object]]


@pytest.mark.parametrize(
    ("defect", "probe"),
    [
        ("skip-identity-notice", _types_after_record),
        ("skip-resident-transfer", _types_after_record),
        ("skip-addressee-record", _types_after_record),
        ("skip-fuhyo-notice", _types_after_record),
        ("copy-missing-address", _copy_has_address),
        ("leak-mynumber-certdata", _certdata_numbers),
        ("reverse-order", _order_after_503),
        ("accept-malformed", _malformed_status),
        ("duplicate-notice", _identity_copies),
        ("movein-no-late-item", _late_item),
    ],
)
async def test_a_defect_changes_behaviour_only_when_injected(
    gw: FakeGateway, tmp_path: Path, person: Resident, defect: str, probe: Probe
) -> None:
    async with running(gw, tmp_path / "clean"):
        clean = await probe(gw, person)
    gw.received.clear()
    gw.invalid.clear()
    async with running(gw, tmp_path / "defect", defect):
        broken = await probe(gw, person)
    assert clean != broken, f"{defect}: no observable difference ({clean!r})"


# judge (issue 12): defects that are traffic mutations, shared with `selftest --mutate`

def test_traffic_defects_name_known_mutations_and_rewrite_only_when_injected() -> None:
    from conformance.mutations import TRAFFIC
    from conformance.samples import sample

    assert all(m in TRAFFIC for m, _ in defects_mod.TRAFFIC_DEFECTS.values())
    data = sample("IdentityNotice")
    assert defects_mod.rewrite(RefConfig(), "IdentityNotice", data) is data
    cfg = RefConfig(defects=frozenset({"identity-seq-offset"}))
    out = defects_mod.rewrite(cfg, "IdentityNotice", data)
    assert out != data and b"<Seq>" in out
    assert defects_mod.rewrite(cfg, "ResidentTransfer", data) is data  # only the types it names


def test_every_class_of_defect_is_represented_and_the_catalogue_is_large_enough() -> None:
    from conformance.mutations import KINDS
    from conformance.scenario import load_suite
    from conformance.selftest import load_defects

    cases = load_defects(load_suite())
    assert {c.kind for c in cases} == set(KINDS)
    assert len(cases) >= 90


def test_detection_is_reported_per_class() -> None:
    from conformance.mutations import KINDS, by_kind

    out = by_kind([("name-variant", True), ("name-variant", False), ("wall-clock", True)])
    assert out["name-variant"] == {"defects": 2, "detected": 1, "rate": 0.5, "what": KINDS["name-variant"]}
    assert out["missing-auth"]["defects"] == 0 and out["missing-auth"]["rate"] is None


_SAMPLE_FOR = {"IdentityNotice": "IdentityNotice", "WideAreaCopyInfo": "WideAreaCopyInfo",
               "CounterResult": "CounterResult"}


@pytest.mark.parametrize("name", sorted(TRAFFIC))
def test_a_traffic_mutation_changes_the_message_and_keeps_it_schema_valid(name: str) -> None:
    """A mutation the schema would refuse measures the gateway, not the judge: each stays valid."""
    m = TRAFFIC[name]
    mtype = "IdentityNotice" if m.types is None else sorted(m.types & set(_SAMPLE_FOR) or m.types)[0]
    data = sample(mtype, seed=3)
    if name == "refusal-generic":
        data = data.replace(b"<Status>accepted</Status>", b"<Status>refused</Status>", 1)
    if name == "ivs-dropped":
        data = data.replace(b"<Kanji>", "<Kanji>葛\U000e0100".encode(), 1)
    if name == "latin-recased":
        data = data.replace(b"</Kana>", b"</Kana><Latin>WANG VAN ANH</Latin>", 1)
    if name == "itaiji-normalised":
        data = data.replace(b"<Kanji>", "<Kanji>髙".encode(), 1)
    outs = apply_traffic(name, mtype, data)
    if name.startswith("drop-"):
        assert outs == []
        return
    if m.swap:
        assert outs == [data]
        return
    assert outs and (outs[0] != data or len(outs) > 1), f"{name} changed nothing"
    checked = Validator().check(outs[-1])
    assert checked.ok, [f.code for f in checked.findings]
    assert apply_traffic(name, "NoSuchType", data) == [data] or m.types is None
