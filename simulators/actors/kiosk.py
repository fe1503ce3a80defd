"""コンビニ等のキオスク端末 (multi-copy machine): the resident holds the card over it and enters the PIN (33);
the kiosk sends the request signed by the card to the centre (26) and prints what comes back (25 → 32).

The card signs only when its PIN was verified (``PinOk``); otherwise the request goes with an empty
signature and the centre refuses it (``CENTRE-PIN``), so every attempt leaves a request and an answer on the
trace. "Printing" is a ``PrintedCertificate`` sent to the resident on 32 through the gateway: the pages are
counted in the PDF, and its SHA-256 must be the one the centre sent (a mismatch is not printed). A refused
image is not printed. The same operation or image twice is handled once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from lxml import etree

from conformance.envelope import new_id
from simulators.actors.centre import card_key, sign, signing_input
from simulators.base import Message
from simulators.toolbox import E, SimBase, child, corr, deep, txt

_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF, counted from its page objects."""
    return len(_PAGE.findall(pdf))


class KioskSimulator(SimBase, actor="kiosk"):
    """Kiosk terminals."""

    def new_state(self) -> dict[str, Any]:
        return {
            "operations": {},  # OperationNo -> {"request_no", "serial", "kiosk_id", "pin_ok", "message_id"}
            "requests": {},  # RequestNo -> {"operation_no", "status", "code", "pages", "sha256", "printed"}
            "_by_message": {},  # MessageId of a KioskOperation -> its OperationNo (the index of operations)
        }

    def apply(self, msg: Message, direction: str) -> None:
        st = self.state(msg.tenant)
        typ, body = msg.header.message_type, msg.body
        if direction == "out" and typ == "KioskCertificateRequest":
            rno = txt(body, "RequestNo") or ""
            st["requests"].setdefault(rno, {"operation_no": None, "status": None, "code": None, "pages": None,
                                            "sha256": None, "printed": False,
                                            "correlation_id": msg.header.correlation_id})
            op = msg.header.correlation_id
            o = st["operations"].get(st["_by_message"].get(op)) if op else None
            if o is not None and o["message_id"] == op:
                o["request_no"] = rno
        elif direction == "in" and typ == "KioskOperation":
            key = txt(body, "OperationNo") or msg.header.message_id
            if key not in st["operations"]:
                st["operations"][key] = {
                    "request_no": None, "serial": txt(body, "CertSerial"), "kiosk_id": txt(body, "KioskId"),
                    "pin_ok": txt(body, "PinOk") in ("true", "1"), "message_id": msg.header.message_id}
                st["_by_message"][msg.header.message_id] = key
        elif direction == "in" and typ == "CertificateImage":
            req = st["requests"].setdefault(txt(body, "RequestNo") or "", {
                "operation_no": None, "status": None, "code": None, "pages": None, "sha256": None,
                "printed": False})
            req["status"], req["code"] = txt(body, "Result/Status"), txt(body, "Result/Code")
        elif direction == "out" and typ == "PrintedCertificate":
            req = st["requests"].get(txt(body, "RequestNo") or "")
            if req is not None:
                req["printed"] = True
                req["pages"] = int(txt(body, "Pages") or "0")
                req["sha256"] = txt(body, "Sha256")

    async def react(self, msg: Message) -> etree._Element | None:
        typ = msg.header.message_type
        if typ == "KioskOperation":
            await self._operate(msg)
        elif typ == "CertificateImage":
            await self._print(msg)
        return None

    async def _operate(self, msg: Message) -> None:
        t, body = msg.tenant, msg.body
        st = self.state(t)
        op_no = txt(body, "OperationNo") or msg.header.message_id
        known = st["operations"].get(op_no)
        if known is not None and known.get("request_no"):
            return  # the same operation again: one request only
        self.apply(msg, "in")
        op = st["operations"][op_no]
        serial = txt(body, "CertSerial") or ""
        kiosk_id = txt(body, "KioskId") or "K"
        request_no = new_id("KR")
        op["request_no"] = request_no
        request = child(body, "Request")
        signature = ""
        if op["pin_ok"]:
            signature = sign(card_key(serial), signing_input(request_no, kiosk_id, serial, request))
        out = E.KioskCertificateRequest(E.RequestNo(request_no), E.KioskId(kiosk_id), E.CertSerial(serial),
                                        E.Signature(signature))
        if request is not None:
            out.append(deep(request))
        self.register(t, serial, request_no)
        st["requests"].setdefault(request_no, {"operation_no": op_no, "status": "sent", "code": None,
                                               "pages": None, "sha256": None, "printed": False})
        await self.send(t, self.to("centre"), "KioskCertificateRequest", out, correlation_id=corr(msg))

    async def _print(self, msg: Message) -> None:
        t, body = msg.tenant, msg.body
        st = self.state(t)
        rno = txt(body, "RequestNo") or ""
        if st["requests"].get(rno, {}).get("printed"):
            return
        self.apply(msg, "in")
        req = st["requests"][rno]
        if txt(body, "Result/Status") != "accepted":
            return
        try:
            pdf = base64.b64decode(txt(body, "Document") or "", validate=True)
        except (binascii.Error, ValueError):
            pdf = b""
        digest = hashlib.sha256(pdf).hexdigest()
        if not pdf or digest != (txt(body, "Sha256") or "").lower():
            req["status"], req["code"] = "refused", "KIOSK-DIGEST"
            return
        pages = pdf_pages(pdf)
        req.update(printed=True, pages=pages, sha256=digest)
        printed = E.PrintedCertificate(E.RequestNo(rno), E.KioskId(txt(body, "KioskId") or "K"),
                                       E.Pages(str(pages)), E.Sha256(digest))
        await self.send(t, ("resident", self.port.sut_lg), "PrintedCertificate", printed,
                        correlation_id=corr(msg))
