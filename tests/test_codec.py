"""Model ↔ XML: what the codec writes is valid against the real common.xsd and reads back unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

import conformance
from conformance import codec
from conformance.errors import HarnessError
from conformance.model import (
    Address,
    ForeignInfo,
    Honseki,
    IndividualEntry,
    JDate,
    Name,
    Resident,
)
from conformance.residents import ResidentFactory
from conformance.xmlsafe import NS, parse, q

COMMON_XSD = Path(conformance.__file__).resolve().parent / "schemas" / "common.xsd"
TEST_SCHEMA = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{NS}" targetNamespace="{NS}"
           elementFormDefault="qualified">
  <xs:include schemaLocation="{COMMON_XSD}"/>
  <xs:element name="TestIdentity" type="PersonIdentityType"/>
  <xs:element name="TestResident" type="ResidentType"/>
  <xs:element name="TestName" type="NameType"/>
  <xs:element name="TestAddress" type="AddressType"/>
  <xs:element name="TestDate" type="JDateType"/>
  <xs:element name="TestChange" type="ChangeType"/>
  <xs:element name="TestResult" type="ResultType"/>
</xs:schema>"""
N = 200


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(TEST_SCHEMA.encode("utf-8")))


@cache
def corpus() -> tuple[Resident, ...]:
    """200 seeded residents with hard cases: living alone, households, foreign residents."""
    f = ResidentFactory(4242, "271004", hard_share=0.2)
    out = f.residents(120)
    for size in (2, 3, 4, 5) * 3:
        out += f.household(size)
    out += [f.foreign_resident(tsusho=True) for _ in range(6)] + [f.foreign_resident() for _ in range(10)]
    out += [f.foreign_resident(category="特別永住者"), f.foreign_resident(long=True)]
    out += f.residents(N - len(out))
    return tuple(out)


def _valid(schema: etree.XMLSchema, el: etree._Element) -> None:
    ok = schema.validate(el)
    assert ok, str(schema.error_log)


def _roundtrip(el: etree._Element) -> etree._Element:
    """Serialise and parse back with the hardened parser, as a message would travel."""
    return parse(etree.tostring(el, encoding="utf-8", xml_declaration=True))


def _locals(el: etree._Element | None) -> list[str]:
    assert el is not None
    return [etree.QName(c).localname for c in el]


def _get(el: etree._Element, tag: str) -> etree._Element:
    found = el.find(q(tag))
    assert found is not None, tag
    return found


def _encodes(c: str, codec_name: str) -> bool:
    try:
        c.encode(codec_name)
    except UnicodeEncodeError:
        return False
    return True


def _xml_part(r: Resident) -> Resident:
    """The resident as ResidentType carries it (the card keys are not in it)."""
    return replace(r, card_serial=None, card_no=None, identification_no=None)


# --- the whole corpus -------------------------------------------------------------------
@pytest.mark.parametrize("i", range(N))
def test_resident_is_valid_and_round_trips(schema: etree.XMLSchema, i: int) -> None:
    r = corpus()[i]
    el = codec.resident_el("TestResident", r)
    _valid(schema, el)
    assert codec.resident_from(_roundtrip(el)) == _xml_part(r)


@pytest.mark.parametrize("i", range(N))
def test_identity_is_valid_and_round_trips(schema: etree.XMLSchema, i: int) -> None:
    r = corpus()[i]
    el = codec.person_identity_el("TestIdentity", r)
    _valid(schema, el)
    assert codec.person_identity_from(_roundtrip(el)) == r.identity()


def test_corpus_holds_the_hard_cases() -> None:
    text = "".join((r.name.kanji or "") + (r.name.tsusho or "") for r in corpus())
    assert "\U000e0100" in text  # IVS
    assert any(not _encodes(c, "shift_jis") and _encodes(c, "shift_jis_2004") for c in text)  # JIS X 0213
    assert any(ord(c) > 0xFFFF and c != "\U000e0100" for c in text)  # outside the BMP (𠮷, 𡈽)
    assert any(r.birth_date.uncertain for r in corpus())
    assert any(r.foreign and r.name.tsusho for r in corpus())
    assert any(r.name.former_surname for r in corpus())
    assert any(r.previous_address and r.previous_address.is_overseas for r in corpus())


@pytest.mark.parametrize("flags", [(False, True), (True, False), (False, False)])
def test_optional_parts_can_be_left_out(schema: etree.XMLSchema, flags: tuple[bool, bool]) -> None:
    with_my_number, with_honseki = flags
    for r in corpus()[:40]:
        el = codec.resident_el("TestResident", r, include_my_number=with_my_number,
                               include_honseki=with_honseki)
        _valid(schema, el)
        back = codec.resident_from(el)
        assert (back.my_number is not None) == with_my_number
        assert back.honseki == (r.honseki if with_honseki else None)
        assert ("MyNumber" in _locals(el)) == with_my_number
    identity = codec.person_identity_el("TestIdentity", corpus()[0], include_my_number=False)
    _valid(schema, identity)
    assert "MyNumber" not in _locals(identity)


# --- exact order ------------------------------------------------------------------------
FULL = Resident(
    juminhyo_code="12345678901", my_number="123456789018",
    name=Name(kanji="葛\U000e0100西\u3000花子", kana="カサイ\u3000ハナコ", latin="KASAI HANAKO",
              tsusho="葛西\u3000花", tsusho_kana="カサイ\u3000ハナ", former_surname="山\ufa11",
              former_surname_kana="ヤマザキ"),
    birth_date=JDate.of(date(1912, 7, 30)), sex="2", household_no="42", head_name="葛\U000e0100西\u3000太郎",
    relationship="妻",
    address=Address(lg_code="131016", postal_code="100-0001", prefecture="東京都", city="千代田区",
                    town="千代田", block="1番1号", building="コーポ千代田101号室"),
    resident_since=JDate.unknown("昭和50年月日不詳"), address_since=JDate(western=date(2020, 2, 29)),
    previous_address=Address(overseas="英国ロンドン市"),
    honseki=Honseki(place="東京都千代田区千代田1番地", lg_code="131016",
                    head_of_family="葛\U000e0100西\u3000太郎"),
    foreign=ForeignInfo(nationality="英国", category="中長期在留者", residence_card_no="AB12345678CD",
                        residence_status="永住者の配偶者等", period_of_stay="3年",
                        period_end=date(2027, 3, 31)),
    entries=(IndividualEntry(kind="国民年金", from_=date(1990, 1, 1), to=date(2020, 1, 1),
                             number="1234-567890"),
             IndividualEntry(kind="選挙人名簿", from_=date(1990, 4, 1))),
)


def test_resident_children_in_xsd_order(schema: etree.XMLSchema) -> None:
    el = codec.resident_el("TestResident", FULL)
    _valid(schema, el)
    assert _locals(el) == ["JuminhyoCode", "MyNumber", "Name", "BirthDate", "Sex", "Household", "Address",
                           "ResidentSince", "AddressSince", "PreviousAddress", "Honseki", "Foreign",
                           "IndividualEntry", "IndividualEntry"]
    assert _locals(el.find(q("Name"))) == ["Kanji", "Kana", "Latin", "Tsusho", "TsushoKana", "FormerSurname",
                                           "FormerSurnameKana"]
    assert _locals(el.find(q("Household"))) == ["HouseholdNo", "HeadName", "Relationship"]
    assert _locals(el.find(q("Address"))) == ["LgCode", "PostalCode", "Prefecture", "City", "Town", "Block",
                                              "Building"]
    assert _locals(el.find(q("PreviousAddress"))) == ["Overseas"]
    assert _locals(el.find(q("Honseki"))) == ["Place", "LgCode", "HeadOfFamily"]
    assert _locals(el.find(q("Foreign"))) == ["Nationality", "Category", "ResidenceStatus", "PeriodOfStay",
                                              "PeriodEnd", "ResidenceCardNo"]
    assert _locals(el.find(q("IndividualEntry"))) == ["Kind", "From", "To", "Number"]
    assert _locals(el.find(q("BirthDate"))) == ["Western", "Wareki"]
    assert _get(el, "BirthDate").findtext(q("Wareki")) == "大正元年7月30日"
    assert _locals(el.find(q("ResidentSince"))) == ["Uncertain"]
    assert _locals(el.find(q("AddressSince"))) == ["Western"]
    assert codec.resident_from(_roundtrip(el)) == FULL


def test_identity_children_in_xsd_order(schema: etree.XMLSchema) -> None:
    el = codec.person_identity_el("TestIdentity", FULL)
    _valid(schema, el)
    assert _locals(el) == ["JuminhyoCode", "MyNumber", "Name", "BirthDate", "Sex", "Address"]


def test_output_uses_the_project_namespace_as_default() -> None:
    data = etree.tostring(codec.name_el("TestName", FULL.name), encoding="utf-8")
    assert data.startswith(b'<TestName xmlns="urn:juki-harness:1"><Kanji>')
    assert "葛\U000e0100西".encode() in data  # the IVS sequence is written as is, not as a reference
    assert "山\ufa11".encode() in data  # a compatibility ideograph is not normalised


def test_children_go_under_a_parent() -> None:
    root = etree.Element(q("Body"), nsmap={None: NS})  # type: ignore[dict-item]
    child = codec.address_el("Address", FULL.address, root)
    assert child.getparent() is root and etree.tostring(root).count(b"xmlns") == 1


# --- the test schema is strict, so the checks above mean something ----------------------
def test_schema_refuses_wrong_order(schema: etree.XMLSchema) -> None:
    el = codec.resident_el("TestResident", FULL)
    sex = _get(el, "Sex")
    el.remove(sex)
    el.insert(3, sex)  # before BirthDate
    assert not schema.validate(el)


def test_schema_refuses_bad_uncertain_form(schema: etree.XMLSchema) -> None:
    el = codec.jdate_el("TestDate", JDate.unknown("昭和50年ごろ"))
    assert not schema.validate(el)


# --- pieces -----------------------------------------------------------------------------
@pytest.mark.parametrize("jd", [
    JDate.of(date(1989, 1, 8)), JDate.of(date(2019, 5, 1)), JDate(western=date(1868, 1, 1)),
    JDate.unknown("年月日不詳"), JDate.unknown("令和2年頃"), JDate.unknown("平成3年5月上旬"),
    JDate.unknown("平成3年5月日不詳"), JDate.unknown("明治45年7月頃"),
])
def test_jdate_forms(schema: etree.XMLSchema, jd: JDate) -> None:
    el = codec.jdate_el("TestDate", jd)
    _valid(schema, el)
    assert codec.jdate_from(_roundtrip(el)) == jd


@pytest.mark.parametrize("address", [
    Address(overseas="ベトナム社会主義共和国ハノイ市"),
    Address(lg_code="473821", prefecture="沖縄県", city="八重山郡与那国町", town="与那国"),
])
def test_address_forms(schema: etree.XMLSchema, address: Address) -> None:
    el = codec.address_el("TestAddress", address)
    _valid(schema, el)
    assert codec.address_from(_roundtrip(el)) == address


def test_domestic_address_without_town_is_refused() -> None:
    with pytest.raises(HarnessError) as e:
        codec.address_el("Address", Address(lg_code="131016", prefecture="東京都", city="千代田区"))
    assert e.value.findings[0].code == "XSD-CODEC"


def test_reader_names_the_missing_element() -> None:
    el = codec.resident_el("TestResident", FULL)
    el.remove(_get(el, "JuminhyoCode"))
    with pytest.raises(HarnessError) as e:
        codec.resident_from(el)
    f = e.value.findings[0]
    assert f.code == "XSD-CODEC" and "JuminhyoCode" in f.message and f.xpath == "/*"


def test_reader_accepts_a_time_zone_and_refuses_garbage() -> None:
    el = codec.entry_el("IndividualEntry", FULL.entries[0])
    _get(el, "From").text = "1990-01-01+09:00"
    assert codec.entry_from(el).from_ == date(1990, 1, 1)
    _get(el, "From").text = "1990-13-01"
    with pytest.raises(HarnessError) as e:
        codec.entry_from(el)
    assert e.value.findings[0].code == "XSD-CODEC"


def test_change_and_result_are_valid(schema: etree.XMLSchema) -> None:
    change = codec.change_el("TestChange", "A01", "転入", JDate.of(date(2026, 4, 1)), 2, date(2026, 4, 3))
    _valid(schema, change)
    assert (change.find(q("Reason")).get("code"), change.findtext(q("Seq"))) == ("A01", "2")  # type: ignore[union-attr]
    long = codec.result_el("refused", "X-1", "d" * 3000)
    long.tag = q("TestResult")
    _valid(schema, long)
    assert len(long.findtext(q("Detail")) or "") == 2000
    assert [c.tag for c in codec.result_el("accepted")] == [q("Status")]  # no empty Code or Detail


def test_a_fragment_reads_back_as_the_same_element_in_the_default_namespace() -> None:
    """Body templates get codec elements as text with no namespace declaration; parsed in a body they are
    the element the codec wrote (the scenario helpers rely on it)."""
    from conformance.scenario import counter_person_xml, resident_xml

    for r in corpus()[:40]:
        text = str(resident_xml(r))
        assert "xmlns" not in text
        back = parse(f'<w xmlns="{NS}">{text}</w>')[0]
        assert codec.resident_from(back) == codec.resident_from(codec.resident_el("Resident", r))
        person = parse(f'<w xmlns="{NS}">{counter_person_xml(r, card=False)}</w>')[0]
        assert person.find(q("CardNo")) is None and person.findtext(q("JuminhyoCode")) == r.juminhyo_code


def test_koseki_and_foreign_person_are_written_in_the_schemas_order() -> None:
    r = next(x for x in corpus() if x.foreign is not None)
    fp = codec.foreign_person_el("Person", r, include_address=False)
    assert [etree.QName(c).localname for c in fp] == ["Name", "BirthDate", "Sex", "Nationality", "ResidenceCardNo"]
    j = next(x for x in corpus() if x.honseki is not None)
    kp = codec.koseki_person_el("Person", juminhyo_code=None, name=j.name, birth=j.birth_date, sex="",
                                honseki=j.honseki)
    assert [etree.QName(c).localname for c in kp] == ["Name", "BirthDate", "Honseki"]
    with pytest.raises(HarnessError):
        codec.foreign_person_el("Person", j)
