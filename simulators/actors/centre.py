"""証明書交付センター (J-LIS): checks the kiosk's request signed with the card's user certificate, maps the
certificate to the municipality and its 識別番号, relays to that municipality's issuance server (20, sync) and
sends the certificate image (or the refusal) to the kiosk (25).

The signature: the real one is an RSA signature by the 利用者証明用電子証明書 after the card's PIN is
verified. The simulation keeps the shape: HMAC-SHA256 over the request's fields (:func:`signing_input`) with a
per-card key (:func:`card_key`, derived from the serial, or a ``key`` given when seeding), base64. The card
signs only after its PIN was verified, so an empty signature means "PIN not verified".

Refusals, each a ``CertificateImage`` with Result refused: outside service hours 6:30–23:00 or 12/29–1/3 on
the tenant's virtual clock (``CENTRE-HOURS``), unknown or revoked certificate (``CENTRE-SERIAL``,
``CENTRE-REVOKED`` — also when card management holds the card as 失効 or 廃止, e.g. after a death), no
signature (``CENTRE-PIN``), wrong signature (``CENTRE-SIGNATURE``), the issuance server's not-found or
refusal (its code, e.g. ``CERT-NOT-FOUND``), a document whose SHA-256 does not match
(``CENTRE-DIGEST``). No 個人番号 anywhere on this route.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from simulators.base import Message
from simulators.toolbox import E, SimBase, child, corr, deep, result_el, seed_fields, sibling, txt

JST = ZoneInfo("Asia/Tokyo")
CARD_SECRET = b"juki-harness/card-user-certificate/v1"
OPEN, CLOSE = time(6, 30), time(23, 0)


def card_key(serial: str) -> bytes:
    """The signing key of the card whose user certificate has ``serial`` (what the chip holds)."""
    return hmac.new(CARD_SECRET, serial.encode("ascii"), hashlib.sha256).digest()


def signing_input(request_no: str, kiosk_id: str, serial: str, request: etree._Element | None) -> bytes:
    """The bytes the card signs: the request number, kiosk, serial and every requested field, in order."""
    fields = [request_no, kiosk_id, serial]
    for path in ("CertificateKind", "Scope", "Copies", "Options/Relationship", "Options/Honseki"):
        fields.append((txt(request, path) or "").strip())
    return "|".join(fields).encode("utf-8")


def sign(key: bytes, data: bytes) -> str:
    return base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode("ascii")


def service_open(now: datetime) -> bool:
    """Convenience-store issuance hours: 6:30–23:00 JST, closed 12/29–1/3."""
    local = now.astimezone(JST)
    if (local.month == 12 and local.day >= 29) or (local.month == 1 and local.day <= 3):
        return False
    return OPEN <= local.time() < CLOSE


class CentreSimulator(SimBase, actor="centre"):
    """証明書交付センター."""

    def new_state(self) -> dict[str, Any]:
        return {
            "cards": {},  # CertSerial -> {"lg_code", "identification_no", "key" (hex) | None, "revoked"}
            "requests": {},  # RequestNo -> {"status", "code", "kiosk_id", "serial", "message_id"}
        }

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        """kind "cards": ``cards`` = [{cert_serial, lg_code?, identification_no, key? (hex), revoked?}]."""
        fields = seed_fields(data)
        st = self.state(tenant)
        for c in fields.get("cards", []):
            serial = str(c.get("cert_serial") or c.get("serial"))
            st["cards"][serial] = {
                "lg_code": str(c.get("lg_code") or fields.get("lg_code") or self.port.sut_lg),
                "identification_no": str(c["identification_no"]), "key": c.get("key"),
                "revoked": bool(c.get("revoked", False)),
            }
            self.register(tenant, serial, str(c["identification_no"]))

    def apply(self, msg: Message, direction: str) -> None:
        st = self.state(msg.tenant)
        body = msg.body
        if direction == "in" and msg.header.message_type == "KioskCertificateRequest":
            st["requests"].setdefault(txt(body, "RequestNo") or "", {
                "status": None, "code": None, "kiosk_id": txt(body, "KioskId"),
                "serial": txt(body, "CertSerial"), "message_id": msg.header.message_id})
        elif direction == "out" and msg.header.message_type == "CertificateImage":
            req = st["requests"].setdefault(txt(body, "RequestNo") or "", {
                "status": None, "code": None, "kiosk_id": txt(body, "KioskId"), "serial": None,
                "message_id": None})
            req["status"], req["code"] = txt(body, "Result/Status"), txt(body, "Result/Code")

    def _card_lapsed(self, tenant: str | None, serial: str) -> bool:
        """The card management system knows the card as no longer valid (失効 after a death, 廃止): its user
        certificate is revoked with it (the centre checks the revocation list, CRL/OCSP)."""
        card_sim = sibling(self.port, "card")
        if card_sim is None or not isinstance(card_sim, SimBase):
            return False
        st = card_sim.state(tenant)
        card = st.get("cards", {}).get(st.get("by_serial", {}).get(serial, ""))
        return card is not None and card.get("status") in ("失効", "廃止")

    def _check(self, tenant: str | None, body: etree._Element) -> tuple[str, str, str] | dict[str, Any]:
        """The card's record when the request may go on, else (status, code, detail)."""
        st = self.state(tenant)
        if not service_open(self.now(tenant)):
            return ("refused", "CENTRE-HOURS", "証明書の交付時間外です（6:30〜23:00、12/29〜1/3を除く）")
        serial = txt(body, "CertSerial") or ""
        card = st["cards"].get(serial)
        if card is None:
            return ("refused", "CENTRE-SERIAL", "利用者証明用電子証明書が確認できません")
        if card["revoked"] or self._card_lapsed(tenant, serial):
            return ("refused", "CENTRE-REVOKED", "利用者証明用電子証明書は失効しています")
        try:
            sig = base64.b64decode(txt(body, "Signature") or "", validate=True)
        except (binascii.Error, ValueError):
            sig = b"?"
        if not sig:
            return ("refused", "CENTRE-PIN", "暗証番号が照合されていないため署名がありません")
        key = bytes.fromhex(card["key"]) if card.get("key") else card_key(serial)
        data = signing_input(txt(body, "RequestNo") or "", txt(body, "KioskId") or "", serial,
                             child(body, "Request"))
        expected = hmac.new(key, data, hashlib.sha256).digest()
        if not hmac.compare_digest(sig, expected):
            return ("refused", "CENTRE-SIGNATURE", "署名を検証できません")
        return card  # type: ignore[no-any-return]

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "KioskCertificateRequest":
            return None
        self.apply(msg, "in")
        t, body = msg.tenant, msg.body
        request_no = txt(body, "RequestNo") or "R"
        kiosk_id = txt(body, "KioskId") or "K"
        image = E.CertificateImage(E.RequestNo(request_no), E.KioskId(kiosk_id))
        checked = self._check(t, body)
        if isinstance(checked, tuple):
            image.append(result_el(*checked))
        else:
            relay = E.RelayedCertificateRequest(E.RequestNo(request_no),
                                                E.IdentificationNo(checked["identification_no"]),
                                                E.LgCode(checked["lg_code"]))
            request = child(body, "Request")
            if request is not None:
                relay.append(deep(request))
            res = await self.ask(t, ("certserver", checked["lg_code"]), "RelayedCertificateRequest", relay,
                                  correlation_id=corr(msg))
            issued = res.response.body if res.ok and res.response is not None else None
            if issued is None or etree.QName(issued).localname != "IssuedCertificate":
                image.append(result_el("refused", f"CENTRE-CERTSERVER-{res.status}",
                                       "証明書交付サーバから回答がありません"))
            elif txt(issued, "Result/Status") != "accepted":
                image.append(result_el("refused", txt(issued, "Result/Code") or "CENTRE-NOT-ISSUED",
                                       txt(issued, "Result/Detail")))
            else:
                doc = txt(issued, "Document") or ""
                digest = txt(issued, "Sha256") or ""
                try:
                    actual = hashlib.sha256(base64.b64decode(doc, validate=True)).hexdigest()
                except (binascii.Error, ValueError):
                    actual = ""
                if not doc or actual != digest.lower():
                    image.append(result_el("refused", "CENTRE-DIGEST", "証明書のハッシュ値が一致しません"))
                else:
                    image.append(result_el("accepted"))
                    image.append(E.Document(doc))
                    image.append(E.Sha256(digest))
        st = self.state(t)["requests"][txt(body, "RequestNo") or ""]
        st["status"], st["code"] = txt(image, "Result/Status"), txt(image, "Result/Code")
        await self.send(t, ("kiosk", msg.header.sender_lg or self.to("kiosk")[1]), "CertificateImage", image,
                        correlation_id=corr(msg))
        return None
