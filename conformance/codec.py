"""Model ↔ XML for the common types of ``schemas/common.xsd`` (namespace ``urn:juki-harness:1``).

Writers build lxml elements whose children follow the XSD sequences exactly and leave out optional
elements whose value is None; every writer takes the element's local name (the caller's schema decides
it) and an optional ``parent`` to append to. Readers are the inverse for schema-valid input: they find
children by name, keep text exactly as written (no whitespace or Unicode normalisation: IVS sequences and
compatibility ideographs survive), and raise HarnessError ``XSD-CODEC`` (with the XPath) when a required
child is missing or a value cannot be read, so a reader never returns a half-filled record.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from lxml import etree

from conformance.errors import fail
from conformance.model import (
    Address,
    ForeignInfo,
    Honseki,
    Household,
    IndividualEntry,
    JDate,
    Name,
    PersonIdentity,
    Resident,
)
from conformance.xmlsafe import NS, q

__all__ = [
    "address_el",
    "address_from",
    "change_el",
    "entry_el",
    "entry_from",
    "foreign_el",
    "foreign_from",
    "foreign_person_el",
    "fragment",
    "honseki_el",
    "honseki_from",
    "household_el",
    "household_from",
    "jdate_el",
    "jdate_from",
    "koseki_person_el",
    "name_el",
    "name_from",
    "new_el",
    "person_identity_el",
    "person_identity_from",
    "resident_el",
    "resident_from",
    "resident_history_el",
    "result_el",
    "text_el",
]

_El = etree._Element
# xs:date lexical form: optional sign, year of 4+ digits, optional time zone (dropped on reading).
_XS_DATE = re.compile(r"(-?[0-9]{4,}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")

_DEFAULT_NS: dict[Any, str] = {None: NS}  # the namespace as default: no prefix in the output
_NAME_FIELDS = (("Kanji", "kanji"), ("Kana", "kana"), ("Latin", "latin"), ("Tsusho", "tsusho"),
                ("TsushoKana", "tsusho_kana"), ("FormerSurname", "former_surname"),
                ("FormerSurnameKana", "former_surname_kana"))


# --- writing ------------------------------------------------------------------------------------------------
def _new(tag: str, parent: _El | None) -> _El:
    if parent is not None:
        return etree.SubElement(parent, q(tag))
    return etree.Element(q(tag), nsmap=_DEFAULT_NS)


def _text(parent: _El, tag: str, value: str | None) -> None:
    """Append ``<tag>value</tag>`` unless value is None (optional elements are left out, never empty)."""
    if value is not None:
        etree.SubElement(parent, q(tag)).text = value


def new_el(tag: str) -> _El:
    """A new element in the project namespace (declared as the default: no prefix in the output)."""
    return _new(tag, None)


def text_el(parent: _El, tag: str, value: str) -> _El:
    """Append and return ``<tag>value</tag>``."""
    el = etree.SubElement(parent, q(tag))
    el.text = value
    return el


def fragment(el: _El) -> str:
    """``el`` as XML text without its namespace declaration, for a template written in the default namespace.

    Elements made here declare the project namespace once, on the element made without a parent; the text
    reads back as the same element when placed where that namespace is the default (a message body).
    """
    text = etree.tostring(el, encoding="unicode")
    return text.replace(_DECLARATION, "", 1)


_DECLARATION = f' xmlns="{NS}"'


def _date_text(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def name_el(tag: str, name: Name, parent: _El | None = None) -> _El:
    """NameType: Kanji?, Kana?, Latin?, Tsusho?, TsushoKana?, FormerSurname?, FormerSurnameKana?."""
    el = _new(tag, parent)
    for child, attr in _NAME_FIELDS:
        _text(el, child, getattr(name, attr))
    return el


def address_el(tag: str, address: Address, parent: _El | None = None) -> _El:
    """AddressType: (LgCode, PostalCode?, Prefecture, City, Town, Block?, Building?) | Overseas."""
    el = _new(tag, parent)
    if address.overseas is not None:
        _text(el, "Overseas", address.overseas)
        return el
    a = address
    if a.lg_code is None or a.prefecture is None or a.city is None or a.town is None:
        raise fail("XSD-CODEC", "a domestic address needs lg_code, prefecture, city and town "
                                f"(got {a.lg_code!r}, {a.prefecture!r}, {a.city!r}, {a.town!r})")
    for child, value in (("LgCode", a.lg_code), ("PostalCode", a.postal_code), ("Prefecture", a.prefecture),
                         ("City", a.city), ("Town", a.town), ("Block", a.block), ("Building", a.building)):
        _text(el, child, value)
    return el


def jdate_el(tag: str, d: JDate, parent: _El | None = None) -> _El:
    """JDateType: (Western, Wareki?) | Uncertain."""
    el = _new(tag, parent)
    if d.uncertain is not None:
        _text(el, "Uncertain", d.uncertain)
    else:
        _text(el, "Western", _date_text(d.western))
        _text(el, "Wareki", d.wareki)
    return el


def person_identity_el(tag: str, person: Resident | PersonIdentity, parent: _El | None = None, *,
                       include_my_number: bool = True) -> _El:
    """PersonIdentityType (本人確認情報): JuminhyoCode, MyNumber?, Name, BirthDate, Sex, Address."""
    el = _new(tag, parent)
    _text(el, "JuminhyoCode", person.juminhyo_code)
    _text(el, "MyNumber", person.my_number if include_my_number else None)
    name_el("Name", person.name, el)
    jdate_el("BirthDate", person.birth_date, el)
    _text(el, "Sex", person.sex)
    address_el("Address", person.address, el)
    return el


def household_el(tag: str, household: Household, relationship: str, parent: _El | None = None) -> _El:
    """HouseholdType: HouseholdNo, HeadName, Relationship (続柄 lives on the resident, hence the argument)."""
    el = _new(tag, parent)
    _text(el, "HouseholdNo", household.no)
    _text(el, "HeadName", household.head_name)
    _text(el, "Relationship", relationship)
    return el


def honseki_el(tag: str, honseki: Honseki, parent: _El | None = None) -> _El:
    """HonsekiType: Place, LgCode, HeadOfFamily."""
    el = _new(tag, parent)
    _text(el, "Place", honseki.place)
    _text(el, "LgCode", honseki.lg_code)
    _text(el, "HeadOfFamily", honseki.head_of_family)
    return el


def foreign_el(tag: str, info: ForeignInfo, parent: _El | None = None) -> _El:
    """ForeignInfoType: Nationality, Category, ResidenceStatus?, PeriodOfStay?, PeriodEnd?,
    ResidenceCardNo."""
    el = _new(tag, parent)
    _text(el, "Nationality", info.nationality)
    _text(el, "Category", info.category)
    _text(el, "ResidenceStatus", info.residence_status)
    _text(el, "PeriodOfStay", info.period_of_stay)
    _text(el, "PeriodEnd", _date_text(info.period_end))
    _text(el, "ResidenceCardNo", info.residence_card_no)
    return el


def entry_el(tag: str, entry: IndividualEntry, parent: _El | None = None) -> _El:
    """IndividualEntryType: Kind, From, To?, Number?."""
    el = _new(tag, parent)
    _text(el, "Kind", entry.kind)
    _text(el, "From", entry.from_.isoformat())
    _text(el, "To", _date_text(entry.to))
    _text(el, "Number", entry.number)
    return el


def resident_el(tag: str, r: Resident, parent: _El | None = None, *, include_my_number: bool = True,
                include_honseki: bool = True) -> _El:
    """ResidentType (住民票の記載事項) in its exact order. ``include_my_number=False`` for records that
    must not carry the 個人番号; ``include_honseki=False`` for 広域交付住民票 and other copies without
    本籍・筆頭者."""
    el = _new(tag, parent)
    _text(el, "JuminhyoCode", r.juminhyo_code)
    _text(el, "MyNumber", r.my_number if include_my_number else None)
    name_el("Name", r.name, el)
    jdate_el("BirthDate", r.birth_date, el)
    _text(el, "Sex", r.sex)
    household_el("Household", r.household, r.relationship, el)
    address_el("Address", r.address, el)
    resident_history_el(r, el, include_honseki=include_honseki)
    for entry in r.entries:
        entry_el("IndividualEntry", entry, el)
    return el


def change_el(tag: str, code: str, reason: str, event: JDate, seq: int, notified: date | None = None,
              parent: _El | None = None) -> _El:
    """ChangeType: Reason (異動事由, its code as an attribute), EventDate, NotifiedDate?, Seq."""
    el = _new(tag, parent)
    text_el(el, "Reason", reason).set("code", code)
    jdate_el("EventDate", event, el)
    _text(el, "NotifiedDate", _date_text(notified))
    _text(el, "Seq", str(seq))
    return el


def koseki_person_el(tag: str, *, juminhyo_code: str | None, name: Name, birth: JDate, sex: str | None,
                     honseki: Honseki | None, parent: _El | None = None) -> _El:
    """KosekiPersonType: JuminhyoCode?, Name, BirthDate, Sex?, Honseki."""
    el = _new(tag, parent)
    _text(el, "JuminhyoCode", juminhyo_code or None)
    name_el("Name", name, el)
    jdate_el("BirthDate", birth, el)
    _text(el, "Sex", sex or None)
    if honseki is not None:
        honseki_el("Honseki", honseki, el)
    return el


def foreign_person_el(tag: str, r: Resident, parent: _El | None = None, *, include_address: bool = True) -> _El:
    """ForeignPersonType: Name, BirthDate, Sex, Nationality, ResidenceCardNo, Address? (never a 個人番号)."""
    if r.foreign is None:
        raise fail("XSD-CODEC", f"{r.name.display} is not a foreign resident")
    el = _new(tag, parent)
    name_el("Name", r.name, el)
    jdate_el("BirthDate", r.birth_date, el)
    _text(el, "Sex", r.sex)
    _text(el, "Nationality", r.foreign.nationality)
    _text(el, "ResidenceCardNo", r.foreign.residence_card_no)
    if include_address:
        address_el("Address", r.address, el)
    return el


def result_el(status: str, code: str | None = None, detail: str | None = None) -> _El:
    """ResultType: Status (accepted | refused | not-found | held), Code?, Detail? (at most 2,000 characters)."""
    el = _new("Result", None)
    _text(el, "Status", status)
    _text(el, "Code", code or None)
    _text(el, "Detail", detail[:2000] if detail else None)
    return el


def resident_history_el(r: Resident, parent: _El, *, include_honseki: bool = True) -> _El:
    """Append what follows the address in a ResidentType (and in a certificate's Member): ResidentSince?,
    AddressSince?, PreviousAddress?, Honseki? (unless ``include_honseki`` is false), Foreign?."""
    if r.resident_since is not None:
        jdate_el("ResidentSince", r.resident_since, parent)
    if r.address_since is not None:
        jdate_el("AddressSince", r.address_since, parent)
    if r.previous_address is not None:
        address_el("PreviousAddress", r.previous_address, parent)
    if include_honseki and r.honseki is not None:
        honseki_el("Honseki", r.honseki, parent)
    if r.foreign is not None:
        foreign_el("Foreign", r.foreign, parent)
    return parent


# --- reading ------------------------------------------------------------------------------------------------
def _where(el: _El) -> str:
    return str(el.getroottree().getpath(el))


def _child(el: _El, tag: str) -> _El | None:
    found: _El | None = el.find(q(tag))
    return found


def _need(el: _El, tag: str) -> _El:
    c = _child(el, tag)
    if c is None:
        raise fail("XSD-CODEC", f"required element {tag} is missing", xpath=_where(el), line=el.sourceline)
    return c


def _opt_text(el: _El, tag: str) -> str | None:
    c = _child(el, tag)
    return None if c is None else (c.text or "")


def _req_text(el: _El, tag: str) -> str:
    return _need(el, tag).text or ""


def _parse_date(el: _El) -> date:
    text = (el.text or "").strip()
    m = _XS_DATE.fullmatch(text)
    try:
        if m is None:
            raise ValueError(text)
        return date.fromisoformat(m.group(1))
    except ValueError:
        raise fail("XSD-CODEC", f"{text!r} is not an xs:date this harness can read", xpath=_where(el),
                   line=el.sourceline) from None


def _opt_date(el: _El, tag: str) -> date | None:
    c = _child(el, tag)
    return None if c is None else _parse_date(c)


def name_from(el: _El) -> Name:
    """Read a NameType element."""
    return Name(**{attr: _opt_text(el, child) for child, attr in _NAME_FIELDS})


def address_from(el: _El) -> Address:
    """Read an AddressType element (domestic or Overseas)."""
    overseas = _opt_text(el, "Overseas")
    if overseas is not None:
        return Address(overseas=overseas)
    return Address(lg_code=_req_text(el, "LgCode"), postal_code=_opt_text(el, "PostalCode"),
                   prefecture=_req_text(el, "Prefecture"), city=_req_text(el, "City"),
                   town=_req_text(el, "Town"),
                   block=_opt_text(el, "Block"), building=_opt_text(el, "Building"))


def jdate_from(el: _El) -> JDate:
    """Read a JDateType element."""
    uncertain = _opt_text(el, "Uncertain")
    if uncertain is not None:
        return JDate(uncertain=uncertain)
    return JDate(western=_parse_date(_need(el, "Western")), wareki=_opt_text(el, "Wareki"))


def household_from(el: _El) -> tuple[Household, str]:
    """Read a HouseholdType element: the household and the 続柄."""
    return (Household(no=_req_text(el, "HouseholdNo"), head_name=_req_text(el, "HeadName")),
            _req_text(el, "Relationship"))


def honseki_from(el: _El) -> Honseki:
    """Read a HonsekiType element."""
    return Honseki(place=_req_text(el, "Place"), lg_code=_req_text(el, "LgCode"),
                   head_of_family=_req_text(el, "HeadOfFamily"))


def foreign_from(el: _El) -> ForeignInfo:
    """Read a ForeignInfoType element."""
    return ForeignInfo(nationality=_req_text(el, "Nationality"), category=_req_text(el, "Category"),
                       residence_card_no=_req_text(el, "ResidenceCardNo"),
                       residence_status=_opt_text(el, "ResidenceStatus"),
                       period_of_stay=_opt_text(el, "PeriodOfStay"), period_end=_opt_date(el, "PeriodEnd"))


def entry_from(el: _El) -> IndividualEntry:
    """Read an IndividualEntryType element."""
    return IndividualEntry(kind=_req_text(el, "Kind"), from_=_parse_date(_need(el, "From")),
                           to=_opt_date(el, "To"), number=_opt_text(el, "Number"))


def person_identity_from(el: _El) -> PersonIdentity:
    """Read a PersonIdentityType element (本人確認情報)."""
    return PersonIdentity(juminhyo_code=_req_text(el, "JuminhyoCode"), my_number=_opt_text(el, "MyNumber"),
                          name=name_from(_need(el, "Name")), birth_date=jdate_from(_need(el, "BirthDate")),
                          sex=_req_text(el, "Sex"), address=address_from(_need(el, "Address")))


def resident_from(el: _El) -> Resident:
    """Read a ResidentType element. Card keys (serial, card number, 識別番号) are not in ResidentType and
    come back as None."""
    household, relationship = household_from(_need(el, "Household"))

    def opt(tag: str) -> _El | None:
        return _child(el, tag)

    since, moved, prev = opt("ResidentSince"), opt("AddressSince"), opt("PreviousAddress")
    honseki, foreign = opt("Honseki"), opt("Foreign")
    return Resident(
        juminhyo_code=_req_text(el, "JuminhyoCode"), my_number=_opt_text(el, "MyNumber"),
        name=name_from(_need(el, "Name")), birth_date=jdate_from(_need(el, "BirthDate")),
        sex=_req_text(el, "Sex"), household_no=household.no, head_name=household.head_name,
        relationship=relationship, address=address_from(_need(el, "Address")),
        resident_since=None if since is None else jdate_from(since),
        address_since=None if moved is None else jdate_from(moved),
        previous_address=None if prev is None else address_from(prev),
        honseki=None if honseki is None else honseki_from(honseki),
        foreign=None if foreign is None else foreign_from(foreign),
        entries=tuple(entry_from(e) for e in el.iterfind(q("IndividualEntry"))),
    )
