"""The gateway's values and constants: routing fields, outcomes, tenants, targets, deliveries, identifiers.

Why a bottom module: every part of the gateway (intake, delivery, tenancy, replay, HTTP) and the control API
speak in these types; keeping them here, with no import of the parts, is what keeps the package free of an
import circle.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from lxml import etree

from conformance.catalogue import Catalogue, MessageType
from conformance.errors import Finding
from conformance.model import Municipality
from conformance.xmlsafe import NSMAP, q
from simulators.base import Message, SendResult
from simulators.clock import OperatingCalendar
from simulators.faults import CLEAN, Decision

#: Actors whose messages the SUT receives at its inbound endpoint (``counter`` on arrow 35).
SUT_ACTORS: frozenset[str] = frozenset({"juki", "counter"})
#: Body elements whose text attributes a message to a tenant (design.md "Tenancy").
ID_ELEMENTS: tuple[str, ...] = (
    "JuminhyoCode", "NewJuminhyoCode", "OldJuminhyoCode", "PreviousJuminhyoCode", "HeadJuminhyoCode",
    "MyNumber", "ResidenceCardNo", "NewResidenceCardNo", "CertSerial", "CardNo", "IdentificationNo",
    "ApplicationId", "ApplicationNo", "BookingId", "CertificateNo", "MoveOutCertificateNo",
)
_IDS = etree.XPath("|".join(f"/j:Envelope/j:Body//j:{e}/text()" for e in ID_ELEMENTS), namespaces=NSMAP,
                   smart_strings=False)
"""The one precompiled XPath that extracts identifiers from an envelope's body (a union: ~12 µs)."""
IDS_ANY = etree.XPath("|".join(f"//j:{e}/text()" for e in ID_ELEMENTS), namespaces=NSMAP,
                      smart_strings=False)
_ID_TAGS = tuple(q(e) for e in ID_ELEMENTS)

#: CounterRequest operation element -> catalogue counter operation.
COUNTER_OPS: dict[str, str] = {
    "MovingNotification": "moving_notification", "OfficialCorrection": "official_correction",
    "CopyRequest": "issue_copy", "MoveOutCertificateIssue": "issue_moveout_certificate",
    "SpecialMoveInPending": "special_movein_pending", "SpecialMoveInConfirm": "special_movein_confirm",
    "KosekiEntry": "koseki_entry", "IdentityQueryOp": "identity_query", "CardIssueOp": "card_issue",
    "MyNumberChangeOp": "my_number_change", "CardVerifyOp": "card_verify",
    "ResidentCodeChangeOp": "resident_code_change", "CardHandoverOp": "card_handover",
    "EApplicationProcessOp": "eapplication_process", "ImmigrationSlipsOp": "immigration_slips",
}
ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:\-]{0,79}\Z")
LG_RE = re.compile(r"[0-9]{6}\Z")
XML_TYPE = "application/xml; charset=utf-8"
MAX_STORED_ANSWER = 64 * 1024
_HEADER = q("Header")
ENVELOPE = q("Envelope")
_BODY = q("Body")
_H_MID, _H_CID, _H_TYPE = q("MessageId"), q("CorrelationId"), q("MessageType")
_H_SENDER, _H_RECEIVER = q("Sender"), q("Receiver")


def body_ids(root: etree._Element) -> list[str]:
    """Identifier values in an envelope's body (the tenant attribution keys), in document order.

    The same values as the XPath ``_IDS`` (text nodes of the identifier elements under Body), found with
    one tag-filtered ``iter`` (C) over the Body: an identifier is a simple-typed element, so its text is
    ``.text``; one with children or comments (never valid, but possible in a refused message) takes the
    XPath.
    """
    if root.tag != ENVELOPE or len(root) != 2 or root[1].tag != _BODY:
        return cast(list[str], _IDS(root))
    out: list[str] = []
    for el in root[1].iter(_ID_TAGS):
        if len(el):
            return cast(list[str], _IDS(root))
        t = el.text
        if t:
            out.append(t)
    return out


def ids_in_data(data: Any) -> list[str]:
    """Identifier values in seed data (keys like juminhyo_code, my_number, card_no ...)."""
    keys = {re.sub(r"(?<!^)(?=[A-Z])", "_", e).lower() for e in ID_ELEMENTS} | set(ID_ELEMENTS)
    out: list[str] = []
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, Mapping):
            for k, v in x.items():
                if k in keys and isinstance(v, str):
                    out.append(v)
                else:
                    stack.append(v)
        elif isinstance(x, list | tuple):
            stack.extend(x)
    return out


# ------------------------------------------------------------------------------------------ validation

class CheckedLike(Protocol):
    """What the gateway reads from ``conformance.validate.Checked``."""

    root: etree._Element | None
    findings: list[Finding]
    ok: bool


class ValidatorLike(Protocol):
    def check(self, data: bytes, *, file: str | None = None, arrow: int | None = None) -> Any: ...


def default_validator() -> ValidatorLike:
    """``conformance.validate.Validator`` (schema compiled once)."""
    from conformance.validate import Validator  # late: it compiles the schema
    v: ValidatorLike = Validator()
    return v


# --------------------------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class Peek:
    """The header fields the gateway routes by, read without trusting the document (may be empty)."""

    message_id: str | None
    correlation_id: str | None
    message_type: str | None
    sender_actor: str | None
    sender_lg: str | None
    receiver_actor: str | None
    receiver_lg: str | None


NO_PEEK = Peek(None, None, None, None, None, None, None)


def peek_checked(checked: Any) -> Peek | None:
    """Routing fields from a ``Checked`` (its header dict is read once by the validator)."""
    root = checked.root
    if root is None or root.tag != ENVELOPE:
        return peek_header(root)
    h = checked.header
    return Peek(h["message_id"], h["correlation_id"], h["message_type"], h["sender_actor"], h["sender_lg"],
                h["receiver_actor"], h["receiver_lg"])


def peek_header(root: etree._Element | None) -> Peek | None:
    """Routing fields of an envelope, or None when it has no Header."""
    if root is None:
        return None
    h = root.find(_HEADER)
    if h is None:
        return None
    s, r = h.find(_H_SENDER), h.find(_H_RECEIVER)

    def txt(tag: str) -> str | None:
        el = h.find(tag)
        return el.text.strip() if el is not None and el.text else None

    return Peek(txt(_H_MID), txt(_H_CID), txt(_H_TYPE), None if s is None else s.get("actor"),
                None if s is None else s.get("lgCode"), None if r is None else r.get("actor"),
                None if r is None else r.get("lgCode"))


@dataclass(slots=True)
class Outcome:
    """What the gateway answered: HTTP status, the body bytes, findings; for sync types the answer."""

    status: int
    message_id: str | None
    findings: list[Finding] = field(default_factory=list)
    body: bytes = b""
    response: Message | None = None
    seq: int | None = None
    retry_after: int | None = None  # seconds, for 503 GW-BUSY

    def send_result(self) -> SendResult:
        return SendResult(self.status, self.message_id or "", self.response, list(self.findings))


@dataclass(slots=True)
class Tenant:
    """A scenario's world as the gateway knows it: peers (distinct lgCodes), calendar, hours enforcement."""

    id: str
    name: str
    seed: int
    peers: list[Municipality]
    calendar: OperatingCalendar
    enforce_hours: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.id, "name": self.name, "seed": self.seed,
                "peers": [{"lg_code": p.lg_code, "prefecture": p.prefecture, "city": p.city,
                           "postal_prefix": p.postal_prefix} for p in self.peers],
                "enforce_hours": self.enforce_hours}


@dataclass(frozen=True, slots=True)
class Target:
    """An HTTP endpoint the gateway delivers to (the SUT or a real actor)."""

    name: str
    url: str
    token: str
    ssl: ssl.SSLContext | None


@dataclass(slots=True)
class Delivery:
    """An accepted message on its way to its receiver (a lane item)."""

    data: bytes
    root: etree._Element
    peek: Peek
    arrow: int
    tenant: str | None
    mt: MessageType
    seq: int
    decision: Decision = CLEAN
    record: bool = True  # False for /direct (benchmark baseline): nothing is traced
    hdr: Mapping[str, str | None] | None = None  # the validator's header dict (valid envelopes only)
    msg: Message | None = None  # the simulators' view, built once for the sender's apply and the receiver


def finding(code: str, message: str, xpath: str | None = None) -> Finding:
    return Finding(code=code, message=message, xpath=xpath)


def valid_actor(a: str | None, cat: Catalogue) -> bool:
    return a is not None and a in cat.actors
