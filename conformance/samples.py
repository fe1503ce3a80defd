"""Valid sample envelopes for every catalogue message type, generated from the XSD itself.

Data drives the code: the body root's content model is walked with xmlschema, and every value is chosen by
the *type name* of its declaration (identifier types through ``conformance.identifiers``, common complex
types through ``conformance.codec`` from ONE seeded resident, enumerations and builtins from a seeded
``random.Random``), so a new message type in the catalogue and its schema needs no new code here. Element
names only refine realism (which municipality an ``…LgCode`` names, which date an ``…Date`` is).

A sample of a yellow or blue type (by the first arrow of the type) never carries a valid 12-digit 個人番号:
the schemas declare no MyNumber there, and the finished document is searched with the same detector the
CLASS-MYNUMBER rule uses; a hit re-draws the sample.

Samples are deterministic for (type, seed, lgCode): no wall clock, no process-random ids.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import string
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cache
from random import Random
from typing import Any

import xmlschema
import yaml
from lxml import etree
from xmlschema.validators import XsdElement, XsdGroup

from conformance import catalogue as catalogue_mod
from conformance import codec
from conformance.catalogue import DATA, SCHEMAS, Catalogue, MessageType
from conformance.envelope import Header, build
from conformance.errors import fail
from conformance.identifiers import make_juminhyo_code, make_my_number
from conformance.model import Address, IndividualEntry, JDate, Municipality, Resident
from conformance.residents import ResidentFactory
from conformance.rules import find_my_numbers
from conformance.xmlsafe import NS, q

__all__ = ["BUSINESS_DATE", "SENT_AT", "add_parser", "sample", "sample_types", "schema"]

JST = timezone(timedelta(hours=9))
SENT_AT = datetime(2026, 3, 30, 10, 0, 0, tzinfo=JST)
BUSINESS_DATE = SENT_AT.date()
_SECRET = frozenset({"yellow", "blue"})
_NSMAP: dict[Any, str] = {None: NS}
_ALNUM = string.digits + string.ascii_uppercase
_MAX_ATTEMPTS = 20
#: Probability of an optional element that no rule below always includes.
OPTIONAL_SHARE = 0.6

# --- element-name refinements (data, not code per type) ---------------------------------------------------
#: Which municipality an LgCodeType element outside an address names: "sut" (the SUT's own), "peer" (the
#: other municipality of a moving or wide-area message), "resident" (the resident's address), "honseki".
LG_ROLE: dict[str, str] = {
    "MoveOutLgCode": "sut", "MoveInLgCode": "peer", "SourceLgCode": "peer", "IssuingLgCode": "peer",
    "FromLgCode": "peer", "ToLgCode": "peer", "AddressLgCode": "resident", "HonsekiLgCode": "honseki",
}
#: (message type, element) overrides of LG_ROLE: the 転入通知 is sent by the moving-in municipality.
LG_ROLE_BY_TYPE: dict[tuple[str, str], str] = {
    ("MoveInNotice", "MoveInLgCode"): "sut", ("MoveInNotice", "MoveOutLgCode"): "peer",
}
#: Requests on a two-way arrow sent from its far end: the certificate server asks the existing system for
#: certificate data (arrow 19, juki answers), so a sample posted to the gateway goes certserver → juki.
SENT_BY: dict[str, str] = {"CertificateDataRequest": "certserver"}
#: AddressType elements that name the other municipality (転出先) rather than the resident's address.
PEER_ADDRESSES: frozenset[str] = frozenset({"PlannedAddress"})
PEER_ADDRESSES_BY_TYPE: frozenset[tuple[str, str]] = frozenset({("EApplication", "Destination")})
#: xs:date / JDate elements: days after the business date (negative: before it). Unlisted: 0 to -13.
DATE_OFFSETS: dict[str, int] = {
    "PlannedMoveOutDate": 7, "PlannedVisitDate": 10, "ContinuedUseDeadline": 97, "ValidUntil": 3650,
    "PeriodEnd": 365, "HandoverDate": 0, "IssuedDate": 0, "OperationDate": 0, "NotifiedDate": 0,
    "EffectiveDate": -2, "MoveInDate": -3,
}
#: Optional elements a realistic message carries (when the resident has the data).
ALWAYS: frozenset[str] = frozenset({
    "JuminhyoCode", "MyNumber", "Name", "BirthDate", "Sex", "Address", "Household", "CardNo", "CertSerial",
    "Symbol", "AddresseeNo", "Identity", "Member", "Document", "Sha256", "Pages", "BookingId", "Slot",
    "Place", "IssuerLgCode", "ValidUntil", "Wareki", "Honseki", "Foreign", "PreviousAddress",
    "ResidentSince", "AddressSince", "Nationality", "ResidenceStatus", "PeriodOfStay", "PeriodEnd",
    "NewResidenceCardNo", "Relationship", "CertificateNo", "RequestNo",
})
#: Enumerated values a positive sample uses (a result is a success); other enumerations are seeded.
ENUM_PREFERRED: dict[str, str] = {"Status": "accepted"}
#: Booleans that describe a success or a request the sample makes.
_FALSE_BOOLEANS: frozenset[str] = frozenset({"IncludeMyNumber", "IncludeJuminhyoCode", "Honseki"})

_PURPOSES = ("本人確認のため", "転入手続のため", "年金の手続のため", "就職の手続のため", "相続の手続のため")
_DOCUMENTS = ("マイナンバーカード", "運転免許証", "在留カード", "旅券", "健康保険の資格確認書")
_REASONS_TEXT = ("個人番号が漏えいして不正に用いられるおそれがあると認められるため", "本人からの請求による",
                 "職権による修正のため")


@cache
def schema() -> Any:
    """The envelope schema (every family included), compiled once per process with xmlschema."""
    return xmlschema.XMLSchema(str(SCHEMAS / "envelope.xsd"))


@cache
def _reasons() -> dict[str, str]:
    raw = yaml.safe_load((DATA / "reasons.yaml").read_text(encoding="utf-8"))
    return {str(r["code"]): str(r["ja"]) for r in raw["reasons"]}


def sample_types(cat: Catalogue | None = None) -> list[str]:
    """Every message type of the catalogue, in catalogue order (all of them can be sampled)."""
    return list((cat or catalogue_mod.default()).message_types)


def _local(name: str | None) -> str | None:
    if name is None:
        return None
    return name.rsplit("}", 1)[-1]


def _type_name(t: Any) -> str:
    """The nearest named type of a simple type: its own name, else its base's (xs:… builtins included)."""
    while t is not None:
        name = getattr(t, "name", None)
        if name:
            return _local(name) or ""
        t = getattr(t, "base_type", None)
    return ""


def _documentation(el: Any) -> str:
    ann = getattr(el, "annotation", None)
    docs = getattr(ann, "documentation", None) if ann is not None else None
    if docs:
        text = (docs[0].text or "").strip()
        return text.split("（", 1)[0] or text
    return ""


@dataclass
class _World:
    """Everything one sample draws from: the type, its arrow's data class, the resident and the RNG."""

    mt: MessageType
    data_class: str | None
    rng: Random
    resident: Resident
    sut: Municipality
    peer: Municipality
    peer_address: Address
    ids: dict[str, str] = field(default_factory=dict)
    document: bytes = b""

    @property
    def secret(self) -> bool:
        return self.data_class in _SECRET

    def alnum(self, n: int) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(n))

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def id_for(self, local: str) -> str:
        """IdType value, the same for one element name within a message (RequestNo of request and answer)."""
        if local not in self.ids:
            abbr = "".join(c for c in local if c.isupper()) or "ID"
            self.ids[local] = f"{abbr}-{self.alnum(8)}"
        return self.ids[local]

    def day(self, local: str) -> date:
        off = DATE_OFFSETS.get(local)
        return BUSINESS_DATE + timedelta(days=off if off is not None else -self.rng.randint(0, 13))


# --- choosing the resident --------------------------------------------------------------------------------
_CODEC_TYPES = frozenset({"NameType", "AddressType", "JDateType", "PersonIdentityType", "ResidentType",
                          "HonsekiType", "HouseholdType", "ForeignInfoType", "IndividualEntryType"})


def _elements(group: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Element declarations of a content model, recursively, not descending into codec types."""
    seen = set() if seen is None else seen
    for item in group:
        if isinstance(item, XsdGroup):
            yield from _elements(item, seen)
        elif isinstance(item, XsdElement):
            yield item
            t: Any = item.type
            if (t.is_complex() and _local(t.name) not in _CODEC_TYPES and t.has_complex_content()
                    and id(t) not in seen):
                seen.add(id(t))
                yield from _elements(t.content, seen)


def _needs(root: Any) -> tuple[bool, bool, bool]:
    """(needs a foreign resident, needs 本籍, needs a card) for the body root's content model."""
    foreign = honseki = card = False
    t: Any = root.type
    for el in _elements(t.content):
        tn = _local(el.type.name)
        if tn == "ResidenceCardNoType":
            foreign = True
        if el.min_occurs >= 1 and tn == "HonsekiType":
            honseki = True
        if el.min_occurs >= 1 and tn in ("CardNoType", "CertSerialType"):
            card = True
    return foreign, honseki, card


def _resident(factory: ResidentFactory, root: Any) -> Resident:
    foreign, honseki, card = _needs(root)
    for _ in range(200):
        r = factory.foreign_resident() if foreign else factory.resident()
        if honseki and r.honseki is None:
            continue
        if card and r.card_no is None:
            continue
        return r
    raise fail("ENV-SAMPLE", f"no resident fits {root.local_name} after 200 draws")  # pragma: no cover


# --- values of simple types -------------------------------------------------------------------------------
def _lg_code(w: _World, local: str) -> str:
    role = LG_ROLE_BY_TYPE.get((w.mt.id, local)) or LG_ROLE.get(local, "sut")
    r = w.resident
    if role == "peer":
        return w.peer.lg_code
    if role == "honseki" and r.honseki is not None:
        return r.honseki.lg_code
    if role == "resident" and r.address.lg_code is not None:
        return r.address.lg_code
    return w.sut.lg_code


def _text(w: _World, local: str, el: etree._Element | None, doc: str, max_len: int | None) -> str:
    """ShortText/FreeText/xs:string by element name, from the resident where the name says so."""
    r, rng = w.resident, w.rng
    name = r.name
    table: dict[str, Callable[[], str]] = {
        "NameKana": lambda: name.kana or name.latin or "ジュウミン\u3000タロウ",
        "HeadName": lambda: r.head_name,
        "Relationship": lambda: r.relationship,
        "Nationality": lambda: r.foreign.nationality if r.foreign else "中国",
        "ResidenceStatus": lambda: (r.foreign.residence_status if r.foreign and r.foreign.residence_status
                                    else "技術・人文知識・国際業務"),
        "PeriodOfStay": lambda: (r.foreign.period_of_stay if r.foreign and r.foreign.period_of_stay
                                 else "3年"),
        "Purpose": lambda: rng.choice(_PURPOSES),
        "Place": lambda: f"{w.sut.city}役所\u3000市民課窓口",
        "KioskId": lambda: f"KIOSK-{w.alnum(6)}",
        "AddresseeNo": lambda: f"A{w.alnum(9)}",
        "Staff": lambda: "市民課\u3000窓口担当",
        "Status": lambda: "一時停止",
        "Code": lambda: "OK",
        "Detail": lambda: "特記事項なし",
        "ReasonText": lambda: rng.choice(_REASONS_TEXT),
        "Basis": lambda: "実態調査",
        "CheckedDocument": lambda: rng.choice(_DOCUMENTS),
        "MoveOutCertificateNo": lambda: w.id_for("CertificateNo"),
        "Item": lambda: "氏名",
        "InFuhyoNotice": lambda: name.kanji or name.latin or "住民\u3000太郎",
        "InKoseki": lambda: (name.kanji or name.latin or "住民\u3000太郎").replace("\u3000", ""),
        "Requestor": lambda: "情報照会者",
        "Sha256": lambda: hashlib.sha256(w.document or b"").hexdigest(),
        "Label": lambda: "異動事由",
        "Value": lambda: "転入",
        "Before": lambda: "転入前",
        "After": lambda: "転入後",
        "Remarks": lambda: "コンビニ交付",
        "Message": lambda: "サンプルのエラー通知",
        "RefusedMessageId": lambda: w.id_for("RefusedMessageId"),
        "XPath": lambda: "/j:Envelope/j:Body",
    }
    if local == "Title" and el is not None:
        parent = el.getparent()
        kind = parent.get("kind") if parent is not None else None
        if kind:
            return kind
    make = table.get(local)
    value = make() if make is not None else (doc or "サンプル")
    if max_len is not None:
        value = value[:max_len]
    return value or "サンプル"


def _pdf(w: _World) -> bytes:
    if not w.document:
        w.document = (b"%PDF-1.4\n% juki-harness sample certificate\n" + w.alnum(16).encode()
                      + b"\n%%EOF\n")
    return w.document


def _simple(w: _World, local: str, t: Any, el: etree._Element | None, doc: str) -> str:
    """The value of a simple type: by the type's name, then enumeration, then builtin."""
    tn = _type_name(t)
    r, rng = w.resident, w.rng
    by_type: dict[str, Callable[[], str]] = {
        "MyNumberType": lambda: r.my_number or make_my_number(str(rng.randint(1, 9)) + w.digits(10)),
        "JuminhyoCodeType": lambda: (
            w.ids.setdefault(local, make_juminhyo_code(str(rng.randint(1, 9)) + w.digits(9)))
            if local.startswith(("New", "Previous")) else r.juminhyo_code),
        "LgCodeType": lambda: _lg_code(w, local),
        "ResidenceCardNoType": lambda: (
            r.foreign.residence_card_no if r.foreign and not local.startswith("New")
            else "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + w.digits(8)
            + "".join(rng.choice(string.ascii_uppercase) for _ in range(2))),
        "IdentificationNoType": lambda: r.identification_no or f"ID{w.alnum(14)}",
        "CertSerialType": lambda: r.card_serial or "".join(rng.choice("0123456789ABCDEF") for _ in range(16)),
        "CardNoType": lambda: r.card_no or f"C{w.alnum(11)}",
        "SymbolType": lambda: w.ids.setdefault("Symbol", f"S{w.alnum(23)}"),
        "HouseholdNoType": lambda: r.household_no,
        "IdType": lambda: w.id_for(local),
        "SexType": lambda: r.sex,
        "ReasonCodeType": lambda: rng.choice(sorted(_reasons())),
        "ActorIdType": lambda: "juki",
    }
    make = by_type.get(tn)
    if make is not None:
        return make()
    enum = getattr(t, "enumeration", None)
    if enum:
        preferred = ENUM_PREFERRED.get(local)
        if preferred is not None and preferred in enum:
            return preferred
        return str(rng.choice(list(enum)))
    prim = _local(getattr(getattr(t, "primitive_type", None), "name", None)) or tn
    if tn == "positiveInteger" or tn == "nonNegativeInteger" or prim == "decimal":
        hi = getattr(t, "max_value", None)
        top = 2 if local in ("Pages", "Copies") else 20
        return str(rng.randint(1, int(min(hi, top)) if hi is not None else top))
    if tn == "boolean" or prim == "boolean":
        return "false" if local in _FALSE_BOOLEANS else "true"
    if tn == "date" or prim == "date":
        if local == "PeriodEnd" and r.foreign is not None and r.foreign.period_end is not None:
            return r.foreign.period_end.isoformat()
        return w.day(local).isoformat()
    if tn == "dateTime" or prim == "dateTime":
        if local == "SubmittedAt":
            return (SENT_AT - timedelta(hours=1)).isoformat()
        slot = datetime.combine(BUSINESS_DATE + timedelta(days=7), datetime.min.time(), JST)
        return (slot + timedelta(hours=rng.choice((9, 10, 13, 14)))).isoformat()
    if tn == "base64Binary" or prim == "base64Binary":
        raw = _pdf(w) if local == "Document" else bytes(rng.randrange(256) for _ in range(64))
        return base64.b64encode(raw).decode("ascii")
    return _text(w, local, el, doc, getattr(t, "max_length", None))


# --- complex types ----------------------------------------------------------------------------------------
def _codec(w: _World, tn: str, local: str, parent: etree._Element, index: int) -> bool:
    """Write a common complex type through the codec; False when ``tn`` is not one of them."""
    r = w.resident
    if tn == "NameType":
        codec.name_el(local, r.name, parent)
    elif tn == "AddressType":
        if local == "PreviousAddress" and r.previous_address is not None:
            address = r.previous_address
        elif local in PEER_ADDRESSES or (w.mt.id, local) in PEER_ADDRESSES_BY_TYPE:
            address = w.peer_address
        else:
            address = r.address
        codec.address_el(local, address, parent)
    elif tn == "JDateType":
        jd = {"BirthDate": r.birth_date, "ResidentSince": r.resident_since,
              "AddressSince": r.address_since}.get(local)
        codec.jdate_el(local, jd or JDate.of(w.day(local)), parent)
    elif tn == "PersonIdentityType":
        codec.person_identity_el(local, r, parent, include_my_number=not w.secret)
    elif tn == "ResidentType":
        codec.resident_el(local, r, parent, include_my_number=not w.secret)
    elif tn == "HonsekiType":
        if r.honseki is None:
            raise fail("ENV-SAMPLE", f"{local}: the sample resident has no 本籍")
        codec.honseki_el(local, r.honseki, parent)
    elif tn == "HouseholdType":
        codec.household_el(local, r.household, r.relationship, parent)
    elif tn == "ForeignInfoType":
        if r.foreign is None:
            raise fail("ENV-SAMPLE", f"{local}: the sample resident is not a foreign resident")
        codec.foreign_el(local, r.foreign, parent)
    elif tn == "IndividualEntryType":
        entries = r.entries or (IndividualEntry(kind="国民健康保険", from_=w.day("From"),
                                                number=f"{w.rng.randint(1, 99):02d}-{w.digits(6)}"),)
        codec.entry_el(local, entries[index % len(entries)], parent)
    else:
        return False
    return True


def _has_data(w: _World, tn: str, local: str) -> bool:
    """Whether the resident has what an optional element of a codec or identifier type would carry."""
    r = w.resident
    if tn == "HonsekiType":
        return r.honseki is not None
    if tn == "ForeignInfoType":
        return r.foreign is not None
    if tn == "AddressType" and local == "PreviousAddress":
        return r.previous_address is not None
    if tn == "JDateType" and local in ("ResidentSince", "AddressSince"):
        return getattr(r, "resident_since" if local == "ResidentSince" else "address_since") is not None
    if tn == "CardNoType":
        return r.card_no is not None
    if tn == "CertSerialType":
        return r.card_serial is not None
    if tn == "MyNumberType":
        return not w.secret and r.my_number is not None
    if local in ("ResidenceStatus", "PeriodOfStay", "PeriodEnd"):
        f = r.foreign
        return f is not None and getattr(f, {"ResidenceStatus": "residence_status",
                                             "PeriodOfStay": "period_of_stay",
                                             "PeriodEnd": "period_end"}[local]) is not None
    return True


def _occurs(w: _World, decl: Any) -> int:
    local = decl.local_name
    tn = _local(decl.type.name) or ""
    if decl.min_occurs >= 1:
        n = int(decl.min_occurs)
    elif not _has_data(w, tn, local):
        return 0
    elif local in ALWAYS or tn in _CODEC_TYPES:
        n = 1
    else:
        n = 1 if w.rng.random() < OPTIONAL_SHARE else 0
    if n and tn == "IndividualEntryType" and decl.max_occurs is None:
        n = max(n, min(len(w.resident.entries), 3))
    return n


def _fill_group(w: _World, group: Any, parent: etree._Element) -> None:
    if group.model == "choice":
        alternatives = list(group)
        chosen = [w.rng.choice(alternatives)] if alternatives else []
        if group.min_occurs == 0 and w.rng.random() >= OPTIONAL_SHARE:
            chosen = []
        items = chosen
    else:
        items = list(group)
    for item in items:
        if isinstance(item, XsdGroup):
            for _ in range(max(1, int(item.min_occurs))):
                _fill_group(w, item, parent)
        elif isinstance(item, XsdElement):
            if w.secret and item.local_name == "MyNumber" and item.min_occurs == 0:
                continue
            for i in range(_occurs(w, item)):
                _element(w, item, parent, i)


def _attributes(w: _World, t: Any, el: etree._Element) -> None:
    attrs = getattr(t, "attributes", None)
    if not attrs:
        return
    for name, attr in attrs.items():
        if name is None or not hasattr(attr, "type"):
            continue
        local = _local(name) or ""
        if attr.use == "required" or w.rng.random() < OPTIONAL_SHARE:
            el.set(local, _simple(w, local, attr.type, el, ""))


def _element(w: _World, decl: Any, parent: etree._Element | None, index: int = 0) -> etree._Element | None:
    """Append an instance of element declaration ``decl`` to ``parent`` (or return a new root)."""
    local = decl.local_name
    t = decl.type
    tn = _local(t.name) or ""
    if parent is not None and t.is_complex() and _codec(w, tn, local, parent, index):
        return None
    el = etree.SubElement(parent, q(local)) if parent is not None else etree.Element(q(local), nsmap=_NSMAP)
    if t.is_simple():
        el.text = _simple(w, local, t, el, _documentation(decl))
        return el
    _attributes(w, t, el)
    if t.has_simple_content():
        code = el.get("code")
        el.text = _reasons().get(code or "", "") or _simple(w, local, t.content, el, _documentation(decl))
    elif t.content is not None and hasattr(t.content, "model"):
        _fill_group(w, t.content, el)
    return el


# --- the envelope -----------------------------------------------------------------------------------------
def _ends(cat: Catalogue, mt: MessageType) -> tuple[tuple[str, str], str | None]:
    """(sender actor, receiver actor) and data class of the type's first arrow.

    A response that answers in the HTTP response of a request on the same one-way arrow travels it
    backwards (IssuedCertificate: certserver → centre on arrow 20). ErrorReport has no arrow: it is sent
    from the gateway's side (cs) to the SUT and has no data class.
    """
    if not mt.arrows:
        return ("cs", "juki"), None
    n = mt.arrows[0]
    pairs = cat.ends(n)
    src, dst = next((p for p in pairs if p[0] == SENT_BY.get(mt.id)), pairs[0])
    if mt.mode == "response" and not cat.arrows[n].bidirectional:
        for req in cat.message_types.values():
            if req.response == mt.id and req.response_arrows.get(n) == n:
                src, dst = dst, src
                break
    return (src, dst), cat.arrows[n].data_class


def _draw(type_id: str, seed: int, lg_code: str, attempt: int) -> tuple[bytes, str | None]:
    cat = catalogue_mod.default()
    mt = cat.message_types.get(type_id)
    if mt is None:
        raise fail("ENV-TYPE", f"unknown message type {type_id!r}; known: {', '.join(cat.message_types)}")
    root_decl = schema().elements.get(mt.root)
    if root_decl is None:
        raise fail("ENV-TYPE", f"message type {type_id}: no global element {mt.root} in the schemas")
    (src, dst), data_class = _ends(cat, mt)
    factory = ResidentFactory(seed, lg_code, today=BUSINESS_DATE)
    peer = factory.peer_municipalities(1)[0]
    resident = _resident(factory, root_decl)
    rng = Random(f"juki-harness:sample:{type_id}:{seed}:{factory.lg_code}:{attempt}")
    w = _World(mt=mt, data_class=data_class, rng=rng, resident=resident, sut=factory.municipality(),
               peer=peer, peer_address=factory.p.address_in(peer))
    body = _element(w, root_decl, None)
    assert body is not None

    def lg(actor: str) -> str:
        return peer.lg_code if actor == "peer" else factory.lg_code

    # A message for another municipality crosses 8 then 1: it is addressed to cs with the peer's lgCode
    # (contract §4, "Messages for another municipality").
    for_peer = mt.arrows[:1] == (8,) and 1 in mt.arrows
    correlation = f"C-{w.alnum(10)}" if mt.mode == "response" or type_id == "ErrorReport" else None
    h = Header(message_type=type_id, sender_actor=src, sender_lg=lg(src), receiver_actor=dst,
               receiver_lg=peer.lg_code if for_peer else lg(dst), sent_at=SENT_AT, business_date=BUSINESS_DATE,
               message_id=f"M-{w.alnum(12)}", correlation_id=correlation)
    return build(h, body), data_class


def sample(type_id: str, seed: int = 1, *, lg_code: str = "131016") -> bytes:
    """A complete, schema-valid envelope of ``type_id`` (any catalogue message type), deterministic per seed.

    The body is coherent: one seeded resident of municipality ``lg_code`` (the SUT) fills every name,
    date, address and identifier; the header's Sender/Receiver are the end points of the type's first arrow
    (a peer municipality's code for actor ``peer``, the SUT's for every other actor).
    """
    for attempt in range(_MAX_ATTEMPTS):
        data, data_class = _draw(type_id, seed, lg_code, attempt)
        if data_class not in _SECRET or not find_my_numbers(data.decode("utf-8")):
            return data
    raise fail("CLASS-MYNUMBER", f"{type_id}: every drawn sample of a {data_class} type held a 個人番号")


# --- CLI glue ---------------------------------------------------------------------------------------------
def _cmd_sample(args: argparse.Namespace) -> int:
    sys.stdout.buffer.write(sample(args.type, args.seed, lg_code=args.lg_code))
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``sample TYPE [--seed N] [--lg-code X]`` (prints a valid envelope to stdout)."""
    p = subparsers.add_parser("sample", help="print a valid sample envelope of a message type")
    p.add_argument("type", metavar="TYPE", help="message type id of the catalogue (e.g. IdentityNotice)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sample (default 1)")
    p.add_argument("--lg-code", default="131016", help="the SUT's 地方公共団体コード (default 131016)")
    p.set_defaults(func=_cmd_sample)

