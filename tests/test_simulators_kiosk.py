"""Convenience-store issuance (33→26→20→19→25→32): kiosk, centre, certificate server — and its refusals."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime

import pytest
from lxml import etree
from test_simulators_support import JST, SUT, FakePort, forbid_scans

from conformance.codec import address_el, jdate_el, name_el
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors.centre import CentreSimulator
from simulators.actors.certserver import CertServerSimulator, build_pdf
from simulators.actors.kiosk import KioskSimulator, pdf_pages
from simulators.base import Message
from simulators.toolbox import E, txt

T = "T1"
RESIDENT = ("resident", SUT)
KIOSK = ("kiosk", SUT)
SERIAL = "00A1B2C3D4E5F607"
IDNO = "ID0000000000ABCD"
CHAIN = ["KioskOperation", "KioskCertificateRequest", "RelayedCertificateRequest", "CertificateDataRequest",
         "CertificateImage", "PrintedCertificate"]


def fake_sut(people: dict[str, Resident]) -> Callable[[Message], etree._Element]:
    """The SUT's answer on 19: certificate data by 識別番号 (no 個人番号, no 住民票コード)."""
    def answer(msg: Message) -> etree._Element:
        out = E.CertificateData(E.RequestNo(txt(msg.body, "RequestNo")))
        r = people.get(txt(msg.body, "IdentificationNo") or "")
        if r is None:
            out.append(E.Result(E.Status("not-found"), E.Code("CERT-NOT-FOUND")))
            return out
        out.append(E.Result(E.Status("accepted")))
        out.append(E.IssuerLgCode(SUT))
        out.append(E.Member(name_el("Name", r.name), jdate_el("BirthDate", r.birth_date), E.Sex(r.sex),
                            address_el("Address", r.address)))
        return out
    return answer


@pytest.fixture
def person() -> Resident:
    return ResidentFactory(21, SUT).resident()


@pytest.fixture
def port(person: Resident) -> FakePort:
    p = FakePort()
    for cls in (KioskSimulator, CentreSimulator, CertServerSimulator):
        p.add(cls)
    p.sut = fake_sut({IDNO: person})
    p.sims["centre"].seed(T, "cards", {"cards": [{"cert_serial": SERIAL, "lg_code": SUT,
                                                  "identification_no": IDNO}]})
    return p


def operation(serial: str = SERIAL, pin: bool = True, copies: int = 1, op: str = "OP-1") -> etree._Element:
    return E.KioskOperation(E.OperationNo(op), E.KioskId("KIOSK-7-ELEVEN-001"), E.CertSerial(serial),
                            E.PinOk(str(pin).lower()),
                            E.Request(E.CertificateKind("住民票の写し"), E.Scope("本人"),
                                      E.Copies(str(copies)),
                                      E.Options(E.Relationship("false"), E.Honseki("false"))))


async def test_certificate_is_printed_with_pages_and_digest(port: FakePort, person: Resident) -> None:
    forbid_scans(port.sims["kiosk"], T, "operations")  # linked to its request through the index
    res = await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(copies=2), T)
    assert [m.header.message_type for m in port.sent] == CHAIN
    assert [m.arrow for m in port.sent] == [33, 26, 20, 19, 25, 32]
    image = port.last("CertificateImage")
    printed = port.last("PrintedCertificate")
    assert txt(image.body, "Result/Status") == "accepted"
    pdf = base64.b64decode(txt(image.body, "Document") or "")
    assert txt(printed.body, "Sha256") == hashlib.sha256(pdf).hexdigest() == txt(image.body, "Sha256")
    assert txt(printed.body, "Pages") == "2" == str(pdf_pages(pdf))
    assert printed.header.receiver_actor == "resident"
    # every async hop, there and back, carries the resident's operation id (sync hops: see SimBase.ask)
    assert {m.header.correlation_id for m in port.sent if m.arrow in (26, 25, 32)} == {res.message_id}
    assert (person.name.kanji or "").encode("utf-16-be").hex().upper().encode() in pdf
    kiosk = port.sims["kiosk"].snapshot(T)["requests"]
    assert [r["printed"] for r in kiosk.values()] == [True]
    ops = port.sims["kiosk"].state(T)["operations"]
    assert ops[txt(port.last("KioskOperation").body, "OperationNo")]["request_no"] == next(iter(kiosk))


@pytest.mark.parametrize(("case", "code", "relayed"), [
    ("unknown-serial", "CENTRE-SERIAL", False),
    ("pin", "CENTRE-PIN", False),
    ("signature", "CENTRE-SIGNATURE", False),
    ("revoked", "CENTRE-REVOKED", False),
    ("late", "CENTRE-HOURS", False),
    ("early", "CENTRE-HOURS", False),
    ("year-end", "CENTRE-HOURS", False),
    ("not-found", "CERT-NOT-FOUND", True),
    ("other-municipality", "CERT-LG", True),
    ("certserver-down", "CENTRE-CERTSERVER-503", True),
])
async def test_refusals_end_in_a_refused_image_and_nothing_printed(port: FakePort, case: str, code: str,
                                                                     relayed: bool) -> None:
    centre = port.sims["centre"]
    serial = SERIAL
    if case == "unknown-serial":
        serial = "FFFF0000FFFF0000"
    elif case in ("signature", "revoked", "not-found", "other-municipality"):
        serial = "0123456789ABCDEF"
        centre.seed(T, "cards", {"cards": [{
            "cert_serial": serial, "identification_no": "ID9999999999ZZZZ" if case == "not-found" else IDNO,
            "lg_code": "325236" if case == "other-municipality" else SUT,
            "key": "00" * 32 if case == "signature" else None, "revoked": case == "revoked"}]})
    port.clock = {"late": datetime(2026, 3, 30, 23, 0, tzinfo=JST),
                  "early": datetime(2026, 3, 30, 6, 29, 59, tzinfo=JST),
                  "year-end": datetime(2026, 12, 30, 10, 0, tzinfo=JST)}.get(case, port.clock)
    if case == "certserver-down":
        port.down.add("certserver")
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(serial=serial, pin=case != "pin"), T)
    image = port.last("CertificateImage")
    assert (txt(image.body, "Result/Status"), txt(image.body, "Result/Code")) == ("refused", code)
    assert txt(image.body, "Document") is None
    assert bool(port.of_type("RelayedCertificateRequest")) is relayed
    assert port.of_type("PrintedCertificate") == []


async def test_service_opens_at_6_30(port: FakePort) -> None:
    port.clock = datetime(2026, 3, 29, 6, 30, tzinfo=JST)  # a Sunday: convenience stores work every day
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(), T)
    assert txt(port.last("CertificateImage").body, "Result/Status") == "accepted"


async def test_the_same_operation_twice_is_one_request(port: FakePort) -> None:
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(op="OP-9"), T)
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(op="OP-9"), T)
    assert len(port.of_type("KioskCertificateRequest")) == 1
    assert len(port.of_type("PrintedCertificate")) == 1


def test_pdf_is_well_formed() -> None:
    pdf = build_pdf([["住民票の写し", "氏名　葛\U000e0100飾　太郎"], ["2"]], title="住民票の写し")
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    start = int(re.findall(rb"startxref\n(\d+)\n", pdf)[-1])
    assert pdf[start:start + 4] == b"xref"
    count = int(re.search(rb"xref\n0 (\d+)\n", pdf).group(1))  # type: ignore[union-attr]
    rows = re.findall(rb"(\d{10}) 00000 n \n", pdf[start:])
    assert len(rows) == count - 1
    for oid, off in enumerate(rows, start=1):
        assert pdf[int(off):].startswith(f"{oid} 0 obj".encode())
    assert pdf_pages(pdf) == 2
    assert "\U000e0100".encode("utf-16-be").hex().upper().encode() in pdf  # the IVS survives


async def test_a_card_lapsed_at_card_management_is_refused_by_the_centre(port: FakePort) -> None:
    """Death → CardManagementInfo 失効 (10) → the card's user certificate is revoked: the centre stops there."""
    from simulators.actors.card import CardSimulator

    port.add(CardSimulator)
    card = port.sims["card"]
    card.state(T)["cards"]["CARD-1"] = {"card_no": "CARD-1", "cert_serial": SERIAL, "status": "有効"}
    card.state(T)["by_serial"][SERIAL] = "CARD-1"
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(op="OP-A"), T)
    assert txt(port.last("CertificateImage").body, "Result/Status") == "accepted"
    card.state(T)["cards"]["CARD-1"]["status"] = "失効"
    await port.inject(RESIDENT, KIOSK, "KioskOperation", operation(op="OP-B"), T)
    image = port.last("CertificateImage")
    assert (txt(image.body, "Result/Status"), txt(image.body, "Result/Code")) == ("refused", "CENTRE-REVOKED")
    assert sum(m.header.message_type == "CertificateDataRequest" for m in port.sent) == 1
