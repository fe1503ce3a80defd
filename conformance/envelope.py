"""Build and read envelopes: the one way every sender (simulators, reference SUT, engine, samples) makes a message.

An envelope's header carries what sequence checks need without parsing bodies: ids, type, sender and receiver
(actor + 地方公共団体コード), the virtual-clock send time and the business date (処理日) that deadline rules use.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from conformance.errors import Finding
from conformance.xmlsafe import NS, q

J = ElementMaker(namespace=NS, nsmap={None: NS})
"""Element factory for the project namespace: ``J.IdentityNotice(J.Identity(...))``."""

ENVELOPE_VERSION = "1"
_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


def new_id(prefix: str = "M") -> str:
    """A process-unique id (message ids, request numbers): cheap, readable, never a 12-digit number."""
    return f"{prefix}-{_prefix}-{next(_counter):08d}"


@dataclass(frozen=True, slots=True)
class Header:
    message_type: str
    sender_actor: str
    sender_lg: str
    receiver_actor: str
    receiver_lg: str
    sent_at: datetime
    business_date: date
    message_id: str = ""
    correlation_id: str | None = None
    retry_reason: str | None = None

    def with_new_id(self) -> Header:
        return replace(self, message_id=new_id())

    def reply(self, message_type: str, sent_at: datetime, business_date: date | None = None) -> Header:
        """Header of an answer to this message: receiver and sender swapped, CorrelationId = this MessageId."""
        return Header(
            message_type=message_type, sender_actor=self.receiver_actor, sender_lg=self.receiver_lg,
            receiver_actor=self.sender_actor, receiver_lg=self.sender_lg, sent_at=sent_at,
            business_date=business_date or self.business_date, message_id=new_id(),
            correlation_id=self.message_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "correlation_id": self.correlation_id,
            "message_type": self.message_type, "sender_actor": self.sender_actor, "sender_lg": self.sender_lg,
            "receiver_actor": self.receiver_actor, "receiver_lg": self.receiver_lg,
            "sent_at": self.sent_at.isoformat(), "business_date": self.business_date.isoformat(),
            "retry_reason": self.retry_reason,
        }


def header(
    message_type: str, sender: tuple[str, str], receiver: tuple[str, str], *, sent_at: datetime,
    business_date: date | None = None, correlation_id: str | None = None, message_id: str | None = None,
) -> Header:
    """A new header; ``sender``/``receiver`` are (actor, lgCode)."""
    return Header(
        message_type=message_type, sender_actor=sender[0], sender_lg=sender[1], receiver_actor=receiver[0],
        receiver_lg=receiver[1], sent_at=sent_at, business_date=business_date or sent_at.date(),
        message_id=message_id or new_id(), correlation_id=correlation_id,
    )


_NSMAP: Any = {None: NS}  # lxml-stubs types nsmap keys as str; None is the default namespace
_ENVELOPE, _HEADER, _BODY = q("Envelope"), q("Header"), q("Body")
_MID, _CID, _TYPE, _SENDER, _RECEIVER = q("MessageId"), q("CorrelationId"), q("MessageType"), q("Sender"), \
    q("Receiver")
_SENT, _BDATE, _RETRY = q("SentAt"), q("BusinessDate"), q("RetryReason")


def envelope(h: Header, body: etree._Element) -> etree._Element:
    """The envelope element with header ``h`` around ``body`` (``body`` is moved into it, not copied).

    ``build`` serialises exactly this tree; the gateway validates it as built (no re-parse of its own bytes).
    """
    sub = etree.SubElement
    env = etree.Element(_ENVELOPE, nsmap=_NSMAP)
    env.set("version", ENVELOPE_VERSION)
    hdr = sub(env, _HEADER)
    sub(hdr, _MID).text = h.message_id or new_id()
    if h.correlation_id:
        sub(hdr, _CID).text = h.correlation_id
    sub(hdr, _TYPE).text = h.message_type
    s = sub(hdr, _SENDER)
    s.set("actor", h.sender_actor)
    s.set("lgCode", h.sender_lg)
    r = sub(hdr, _RECEIVER)
    r.set("actor", h.receiver_actor)
    r.set("lgCode", h.receiver_lg)
    sub(hdr, _SENT).text = h.sent_at.isoformat(timespec="seconds")
    sub(hdr, _BDATE).text = h.business_date.isoformat()
    if h.retry_reason:
        sub(hdr, _RETRY).text = h.retry_reason
    sub(env, _BODY).append(body)
    return env


def serialise(env: etree._Element) -> bytes:
    """An envelope's bytes as ``build`` writes them (UTF-8, with XML declaration)."""
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def build(h: Header, body: etree._Element) -> bytes:
    """Serialize an envelope with header ``h`` around ``body`` (UTF-8, with XML declaration)."""
    return serialise(envelope(h, body))


#: how ``serialise`` opens every envelope (the declaration and the Envelope start tag), up to its Header
HEAD = b"<?xml version='1.0' encoding='UTF-8'?>\n<Envelope xmlns=\"" + NS.encode("ascii") + (
    b'" version="' + ENVELOPE_VERSION.encode("ascii") + b'">')
_PLAIN = re.compile(r"[0-9A-Za-z._:+\-]*\Z")  # header values written as they are (nothing to escape)


def header_bytes(h: Header) -> bytes | None:
    """The Header element exactly as ``build`` writes it, without building a tree; None when a value is not
    plain (it would need escaping: take ``build``)."""
    parts = [h.message_id, h.correlation_id or "", h.message_type, h.sender_actor, h.sender_lg,
             h.receiver_actor, h.receiver_lg, h.retry_reason or ""]
    if not h.message_id or not all(_PLAIN.match(v) for v in parts):
        return None
    cid = f"<CorrelationId>{h.correlation_id}</CorrelationId>" if h.correlation_id else ""
    retry = f"<RetryReason>{h.retry_reason}</RetryReason>" if h.retry_reason else ""
    return (f"<Header><MessageId>{h.message_id}</MessageId>{cid}<MessageType>{h.message_type}</MessageType>"
            f'<Sender actor="{h.sender_actor}" lgCode="{h.sender_lg}"/>'
            f'<Receiver actor="{h.receiver_actor}" lgCode="{h.receiver_lg}"/>'
            f"<SentAt>{h.sent_at.isoformat(timespec='seconds')}</SentAt>"
            f"<BusinessDate>{h.business_date.isoformat()}</BusinessDate>{retry}</Header>").encode("ascii")


def rehead(data: bytes, h: Header) -> bytes | None:
    """``data`` (an envelope as ``build`` opens it) with its Header replaced by ``h`` and every byte from
    its Body on kept as it is: a relay passes a body on verbatim.

    None when ``data`` does not open as ``build`` writes, or its Header holds a comment, CDATA or processing
    instruction (a ``</Header>`` inside one would fool the cut), or a header value needs escaping.
    """
    if not data.startswith(HEAD):
        return None
    end = data.find(b"</Header>", len(HEAD))
    if end < 0:
        return None
    old = data[len(HEAD):end]
    if b"<!" in old or b"<?" in old or not old.lstrip().startswith(b"<Header>"):
        return None
    rest = data[end + len(b"</Header>"):]
    if not rest.lstrip().startswith(b"<Body>"):
        return None
    new = header_bytes(h)
    return None if new is None else HEAD + new + rest


def _text(parent: etree._Element, local: str) -> str | None:
    el = parent.find(q(local))
    return el.text if el is not None else None


def read_header(root: etree._Element) -> Header:
    """Read the header of a parsed (and schema-valid) envelope."""
    h = root.find(q("Header"))
    if h is None:
        raise ValueError("not an envelope: no Header")
    s, r = h.find(q("Sender")), h.find(q("Receiver"))
    assert s is not None and r is not None
    return Header(
        message_id=_text(h, "MessageId") or "", correlation_id=_text(h, "CorrelationId"),
        message_type=_text(h, "MessageType") or "", sender_actor=s.get("actor", ""),
        sender_lg=s.get("lgCode", ""), receiver_actor=r.get("actor", ""), receiver_lg=r.get("lgCode", ""),
        sent_at=datetime.fromisoformat(_text(h, "SentAt") or "1970-01-01T00:00:00+00:00"),
        business_date=date.fromisoformat(_text(h, "BusinessDate") or "1970-01-01"),
        retry_reason=_text(h, "RetryReason"),
    )


def body_of(root: etree._Element) -> etree._Element:
    """The single body element of an envelope."""
    b = root[1] if len(root) > 1 else None  # where a valid envelope has it
    if b is None or b.tag != _BODY:
        b = root.find(_BODY)
    if b is None or len(b) == 0:
        raise ValueError("not an envelope: empty Body")
    return b[0]


def error_report(findings: Iterable[Finding], refused_message_id: str | None = None) -> etree._Element:
    """An ErrorReport body: one Finding element per finding (code, XPath, line, message)."""
    rep: etree._Element = J.ErrorReport()
    if refused_message_id:
        rep.append(J.RefusedMessageId(refused_message_id))
    for f in findings:
        fe = J.Finding(J.Code(f.code))
        if f.xpath:
            fe.append(J.XPath(f.xpath))
        if f.line is not None:
            fe.append(J.Line(str(f.line)))
        fe.append(J.Message(f.message[:2000]))
        rep.append(fe)
    if len(rep.findall(q("Finding"))) == 0:
        rep.append(J.Finding(J.Code("GW-UNKNOWN"), J.Message("refused")))
    return rep


def findings_of(report: etree._Element) -> list[Finding]:
    """Read the findings of an ErrorReport body back into values."""
    out = []
    for fe in report.findall(q("Finding")):
        line = _text(fe, "Line")
        out.append(Finding(code=_text(fe, "Code") or "", message=_text(fe, "Message") or "",
                           xpath=_text(fe, "XPath"), line=int(line) if line else None))
    return out


def text(el: etree._Element | None, path: str) -> str | None:
    """Text at a relative path of local names separated by '/', e.g. text(body, 'Identity/JuminhyoCode')."""
    if el is None:
        return None
    cur: etree._Element | None = el
    for part in path.split("/"):
        if cur is None:
            return None
        cur = cur.find(q(part))
    return cur.text if cur is not None else None
