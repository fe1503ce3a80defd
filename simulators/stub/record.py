"""The stub SUT's record and XML: persons as escaped fragments, templates, envelope reading by regex.

Why fragments: what the harness sends (氏名, 生年月日, 住所 …) is already valid, escaped XML; cutting it out of
the request and pasting it into the messages the SUT sends costs a string slice, where a tree costs a parse and
a serialisation per message. Only text the stub writes itself goes through :func:`esc`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date

from conformance.errors import Finding
from conformance.wareki import to_wareki
from simulators.reference.core import reason_names

# --- text helpers (regex over the raw XML; fragments stay escaped) -------------------------------------------
_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
_RE: dict[str, re.Pattern[str]] = {}


def esc(s: str) -> str:
    """Escape text for an element or attribute (everything the stub writes that was not cut from XML)."""
    return s.translate(_ESC)


def _pat(tag: str) -> re.Pattern[str]:
    p = _RE.get(tag)
    if p is None:
        p = _RE[tag] = re.compile(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", re.S)
    return p


def inner(xml: str, tag: str) -> str | None:
    """The raw content of the first ``<tag>`` element (None if absent)."""
    m = _pat(tag).search(xml)
    return m.group(1) if m else None


def text(xml: str, tag: str) -> str | None:
    v = inner(xml, tag)
    return v.strip() if v is not None else None


def all_inner(xml: str, tag: str) -> list[str]:
    return _pat(tag).findall(xml)


def el(tag: str, content: str | None) -> str:
    return "" if content is None else f"<{tag}>{content}</{tag}>"


def jdate(western: date) -> str:
    return f"<Western>{western.isoformat()}</Western><Wareki>{to_wareki(western)}</Wareki>"


def fill_jdate(raw: str) -> str:
    """A JDateType content with its 和暦 filled in when only the Western date was given."""
    raw = raw.strip()
    if "<Wareki>" in raw or "<Western>" not in raw:
        return raw
    w = text(raw, "Western") or ""
    try:
        return jdate(date.fromisoformat(w))
    except ValueError:
        return raw


def western(raw: str | None) -> date | None:
    w = text(raw or "", "Western")
    try:
        return date.fromisoformat(w) if w else None
    except ValueError:
        return None


def date_text(raw: str | None) -> str:
    """A date as printed (plain text): 和暦（西暦）, or the 不詳 text."""
    raw = raw or ""
    w, d = text(raw, "Wareki"), text(raw, "Western")
    if d:
        return f"{w}（{d}）" if w else d
    return html.unescape(text(raw, "Uncertain") or "")


def address_text(raw: str | None) -> str:
    if not raw:
        return ""
    """An address as printed (plain text, unescaped)."""
    if "<Overseas>" in raw:
        return html.unescape(text(raw, "Overseas") or "")
    return html.unescape("".join(text(raw, t) or "" for t in ("Prefecture", "City", "Town", "Block", "Building")))


def squash(xml: str) -> str:
    return re.sub(r">\s+<", "><", xml.strip())


# --- the record -------------------------------------------------------------------------------------------
RESIDENT, MOVING_OUT, DELETED = "住民", "転出予定", "消除"
REASONS = reason_names()
NUMBER_TARGET = "税務"


@dataclass(slots=True)
class Person:
    """One resident as XML fragments (contents of Name, BirthDate, Address … without their tags)."""

    code: str
    mn: str | None
    name: str
    birth: str
    sex: str
    hh: str
    head: str
    rel: str
    addr: str
    since: str | None
    addr_since: str | None
    prev: str | None = None
    honseki: str | None = None
    foreign: str | None = None
    card: str | None = None
    idno: str = ""
    status: str = RESIDENT
    seq: int = 0
    last: str = ""
    planned: tuple[str, str, str | None, str] | None = None  # to_lg, when (JDate), address, notified
    confirmed: tuple[str, str] | None = None  # 転入通知 received: move-in date (JDate), address
    entries: str = ""  # 個別記載事項: <IndividualEntry> elements (F16), last in a ResidentType

    def identity(self) -> str:
        return (f"<JuminhyoCode>{self.code}</JuminhyoCode>{el('MyNumber', self.mn)}<Name>{self.name}</Name>"
                f"<BirthDate>{self.birth}</BirthDate><Sex>{self.sex}</Sex><Address>{self.addr}</Address>")

    def household(self) -> str:
        return f"<Household><HouseholdNo>{self.hh}</HouseholdNo><HeadName>{self.head}</HeadName>" \
               f"<Relationship>{self.rel}</Relationship></Household>"

    def history(self, *, prev: bool = True, honseki: bool = True) -> str:
        return (el("ResidentSince", self.since) + el("AddressSince", self.addr_since)
                + (el("PreviousAddress", self.prev) if prev else "")
                + (el("Honseki", self.honseki) if honseki else "") + el("Foreign", self.foreign))

    def resident(self, with_number: bool = True) -> str:
        return (f"<JuminhyoCode>{self.code}</JuminhyoCode>{el('MyNumber', self.mn) if with_number else ''}"
                f"<Name>{self.name}</Name><BirthDate>{self.birth}</BirthDate><Sex>{self.sex}</Sex>"
                f"{self.household()}<Address>{self.addr}</Address>{self.history()}{self.entries}")

    def member(self, *, mn: bool = False, code: bool = False, household: bool = True, honseki: bool = False,
               state: bool = False, card: bool = False, prev: bool = True) -> str:
        """DocMemberType in its order; the optional items only when asked."""
        return ("<Member>" + (f"<JuminhyoCode>{self.code}</JuminhyoCode>" if code else "")
                + (el("MyNumber", self.mn) if mn else "")
                + f"<Name>{self.name}</Name><BirthDate>{self.birth}</BirthDate><Sex>{self.sex}</Sex>"
                + (self.household() if household else "") + f"<Address>{self.addr}</Address>"
                + self.history(prev=prev, honseki=honseki)
                + (f"<Status>{self.status}</Status>{el('LastChange', self.last or None)}" if state else "")
                + (el("CardNo", self.card) if card else "") + "</Member>")


def item(label: str, value: str | None = None, *, before: str | None = None, after: str | None = None) -> str:
    """DocItemType from plain text (escaped here)."""
    def e(tag: str, v: str | None) -> str:
        return el(tag, None if v is None else esc(v[:2000]))

    return f"<Item><Label>{esc(label[:200])}</Label>{e('Value', value)}{e('Before', before)}{e('After', after)}</Item>"


def document(kind: str, title: str, day: str, lg: str, members: list[str], items: list[str]) -> str:
    return (f'<Document kind="{kind}"><Title>{esc(title)}</Title><IssuedDate>{day}</IssuedDate>'
            f"<IssuerLgCode>{lg}</IssuerLgCode>{''.join(members)}{''.join(items)}</Document>")


class Refusal(Exception):
    """A business refusal: ``Result/Status refused`` with a code; nothing recorded, nothing sent."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(slots=True)
class Ctx:
    """What every message an operation causes shares: SentAt and BusinessDate of its cause, correlation."""

    sent_at: str
    day: str
    cause: str


@dataclass(slots=True)
class Answer:
    status: str = "accepted"
    code: str | None = None
    detail: str | None = None
    documents: str = ""


RECEIVER = {"IdentityNotice": "cs", "ResidentTransfer": "others", "AddresseeRecord": "addressee",
            "MunicipalNotice": "immlink", "CardManagementInfo": "card", "IdentityQuery": "cs",
            "CardIssuanceRequest": "cs", "MoveInNotice": "cs", "FuhyoNotice": "cs", "MoveOutCertInfo": "cs",
            "WideAreaCopyInfo": "cs", "NumberGenerationRequest": "cs", "NoticeDestination": "cs",
            "CardStatusChange": "cs", "CardVerificationRequest": "cs", "ResidentCodeChange": "cs",
            "KosekiEntryNotice": "cs", "FuhyoMismatchNotice": "cs"}
TERMINAL = frozenset({"IdentityQuery", "CardIssuanceRequest", "CardStatusChange", "CardVerificationRequest"})
_ENV = ("<?xml version='1.0' encoding='UTF-8'?>\n"
        '<Envelope xmlns="urn:juki-harness:1" version="1"><Header><MessageId>{mid}</MessageId>{corr}'
        '<MessageType>{mt}</MessageType><Sender actor="{sa}" lgCode="{sl}"/><Receiver actor="{ra}" lgCode="{rl}"/>'
        "<SentAt>{sent}</SentAt><BusinessDate>{day}</BusinessDate>{retry}</Header><Body>{body}</Body></Envelope>")
_HDR = re.compile(r"<Envelope\s[^>]*?xmlns=\"urn:juki-harness:1\"[^>]*>\s*<Header>(.*?)</Header>\s*<Body>(.*)"
                  r"</Body>\s*</Envelope>\s*$", re.S)
_PARTY = re.compile(r'<(Sender|Receiver)\s+actor="([^"]*)"\s+lgCode="([^"]*)"\s*/>')


@dataclass(slots=True)
class Head:
    """The header fields of a received envelope."""

    mid: str
    mtype: str
    sender: tuple[str, str]
    receiver: tuple[str, str]
    sent_at: str
    day: str
    corr: str | None


def read(data: bytes) -> tuple[Head, str] | Finding:
    """Header and body text of an envelope, or why it cannot be read (without building a tree)."""
    try:
        doc = data.decode("utf-8")
    except UnicodeDecodeError:
        return Finding("XML-ENCODING", "the body is not UTF-8")
    m = _HDR.search(doc)
    if m is None:
        return Finding("ENV-HEADER", "not an envelope of urn:juki-harness:1 (default namespace) with a Header "
                       "and a Body, or the document is cut off")
    hdr, body = m.group(1), m.group(2)
    parties = {p[0]: (p[1], p[2]) for p in _PARTY.findall(hdr)}
    mid, mtype, sent, day = (text(hdr, t) for t in ("MessageId", "MessageType", "SentAt", "BusinessDate"))
    if not (mid and mtype and sent and day and len(parties) == 2):
        return Finding("ENV-HEADER", "the header needs MessageId, MessageType, Sender, Receiver, SentAt and "
                       "BusinessDate")
    return Head(mid, mtype, parties["Sender"], parties["Receiver"], sent, day, text(hdr, "CorrelationId")), body
