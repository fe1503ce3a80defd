"""個人番号カード管理システム (J-LIS): cards per person, issuance, verification, status, 通知書
destinations and カード管理情報 from the SUT.

Why it checks what it checks: a card is issued only to a person with a valid 個人番号 (番号法17条; refused
``CARD-MYNUMBER`` otherwise); verification says Valid only for a known, current (not 廃止/失効/一時停止, not
expired) card whose certificate serial matches and whose PIN was verified, and Matches when the person the
counter wants to confirm is the holder. Card numbers (``C`` + 11) and certificate serials (16 hex) are derived
from (tenant, ApplicationNo), so replaying the trace re-issues the same card; the same ApplicationNo again
answers with the card already issued. A new card for a person abolishes the previous one (再交付).
Validity: the holder's 10th birthday after issuance (5th under 18), as on the real card.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from conformance.identifiers import is_valid_my_number
from conformance.xmlsafe import parse
from simulators.base import Message
from simulators.toolbox import (
    HEX,
    E,
    SimBase,
    child,
    identity_from_resident,
    residents_in,
    result_el,
    seed_fields,
    stable_token,
    to_xml,
    txt,
)

ACTIVE = "有効"


def _birthday(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February
        return date(year, 3, 1)


def valid_until(birth: date | None, issued: date) -> date:
    """The card's expiry: the 10th birthday after issuance (5th when the holder is under 18)."""
    if birth is None:
        return _birthday(issued, issued.year + 10)
    age = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day))
    n = 10 if age >= 18 else 5
    first = _birthday(birth, issued.year)
    if first <= issued:
        first = _birthday(birth, issued.year + 1)
    return _birthday(birth, first.year + n - 1)


def _iso(s: str | None) -> date | None:
    try:
        return date.fromisoformat(s) if s else None
    except ValueError:
        return None


def _index(st: dict[str, Any], jc: str, card_no: str) -> None:
    held = st["_by_code"].get(jc, ())
    if card_no not in held:
        st["_by_code"][jc] = (*held, card_no)


def _held_by(st: dict[str, Any], jc: str) -> list[dict[str, Any]]:
    """The cards held by ``jc`` (through the index: a card issuance must not read every card)."""
    cards = (st["cards"].get(no) for no in st["_by_code"].get(jc, ()))
    return [c for c in cards if c is not None and c["juminhyo_code"] == jc]


class CardSimulator(SimBase, actor="card"):
    """J-LIS card management."""

    def new_state(self) -> dict[str, Any]:
        return {
            "cards": {},  # CardNo -> card record
            "by_serial": {},  # CertSerial -> CardNo
            "_by_code": {},  # 住民票コード -> CardNos (the index of cards by holder)
            "applications": {},  # ApplicationNo -> {"status", "code", "detail", "card_no"}
            "changes": {},  # ChangeNo -> {"status", "code", "card_status"}
            "destinations": {},  # 住民票コード -> [NoticeDestination summaries]
            "management": {},  # InfoNo -> CardManagementInfo summary
            "verifications": 0,
        }

    # --- pure state transitions (idempotent, shared by apply and react) ---------------------------------
    def _issue(self, tenant: str | None, body: etree._Element) -> dict[str, Any]:
        st = self.state(tenant)
        app = txt(body, "ApplicationNo") or ""
        done = st["applications"].get(app)
        if done is not None:
            return done  # type: ignore[no-any-return]
        number = txt(body, "Identity/MyNumber")
        jc = txt(body, "Identity/JuminhyoCode") or ""
        if not number or not is_valid_my_number(number):
            done = {"status": "refused", "code": "CARD-MYNUMBER", "card_no": None,
                    "detail": "有効な個人番号のない者にはカードを交付できません"}
            st["applications"][app] = done
            return done
        attempt = 0
        while True:
            card_no = "C" + stable_token("card", tenant or "", app, str(attempt), n=11)
            serial = stable_token("serial", tenant or "", app, str(attempt), n=16, alphabet=HEX)
            attempt += 1
            if card_no not in st["cards"] and serial not in st["by_serial"]:
                break
        for other in _held_by(st, jc):
            if other["status"] == ACTIVE:
                other["status"] = "廃止"
                other["status_reason"] = "再交付"
        issued = _iso(txt(body, "HandoverDate")) or date(2000, 1, 1)
        identity = child(body, "Identity")
        _index(st, jc, card_no)
        st["cards"][card_no] = {
            "card_no": card_no, "cert_serial": serial, "juminhyo_code": jc, "my_number": number,
            "identity": to_xml(identity) if identity is not None else None, "status": ACTIVE,
            "status_reason": None, "issued": issued.isoformat(),
            "valid_until": valid_until(_iso(txt(body, "Identity/BirthDate/Western")), issued).isoformat(),
            "application_no": app, "continued_use_deadline": None,
        }
        st["by_serial"][serial] = card_no
        done = {"status": "accepted", "code": None, "detail": None, "card_no": card_no}
        st["applications"][app] = done
        return done

    def _status_change(self, tenant: str | None, body: etree._Element) -> dict[str, Any]:
        st = self.state(tenant)
        change_no = txt(body, "ChangeNo") or ""
        done = st["changes"].get(change_no)
        if done is not None:
            return done  # type: ignore[no-any-return]
        card = st["cards"].get(txt(body, "CardNo") or "")
        new = txt(body, "NewStatus") or ""
        if card is None:
            done = {"status": "not-found", "code": "CARD-UNKNOWN", "card_status": "不明"}
        elif card["juminhyo_code"] != txt(body, "JuminhyoCode"):
            done = {"status": "refused", "code": "CARD-PERSON", "card_status": card["status"]}
        elif card["status"] in ("廃止", "失効"):
            done = {"status": "refused", "code": "CARD-ABOLISHED", "card_status": card["status"]}
        elif new == "一時停止解除":
            if card["status"] != "一時停止":
                done = {"status": "refused", "code": "CARD-NOT-SUSPENDED", "card_status": card["status"]}
            else:
                card["status"], card["status_reason"] = ACTIVE, txt(body, "ReasonText")
                done = {"status": "accepted", "code": None, "card_status": ACTIVE}
        else:
            card["status"], card["status_reason"] = new, txt(body, "ReasonText")
            done = {"status": "accepted", "code": None, "card_status": new}
        st["changes"][change_no] = done
        return done

    def _destination(self, tenant: str | None, msg: Message) -> None:
        st = self.state(tenant)
        body = msg.body
        jc = txt(body, "JuminhyoCode") or ""
        entries = st["destinations"].setdefault(jc, [])
        if any(e["message_id"] == msg.header.message_id for e in entries):
            return
        dest = child(body, "Destination")
        entries.append({"request_no": txt(body, "RequestNo"), "my_number": txt(body, "MyNumber"),
                        "destination": to_xml(dest) if dest is not None else None,
                        "head_name": txt(body, "HeadName"), "message_id": msg.header.message_id})

    def _management(self, tenant: str | None, msg: Message) -> None:
        st = self.state(tenant)
        body = msg.body
        info_no = txt(body, "InfoNo") or msg.header.message_id
        if info_no in st["management"]:
            return
        card_no = txt(body, "CardNo") or ""
        card = st["cards"].get(card_no)
        event = txt(body, "Event") or ""
        addr = child(body, "Address")
        st["management"][info_no] = {
            "card_no": card_no, "juminhyo_code": txt(body, "JuminhyoCode"), "event": event,
            "event_date": txt(body, "EventDate"), "deadline": txt(body, "ContinuedUseDeadline"),
            "known": card is not None,
            "holder_matches": card is not None and card["juminhyo_code"] == txt(body, "JuminhyoCode"),
            "message_id": msg.header.message_id,
        }
        if card is None:
            return
        if event == "失効":
            card["status"], card["status_reason"] = "失効", "死亡等"
        elif event == "転出":
            card["continued_use_deadline"] = txt(body, "ContinuedUseDeadline")
        elif event == "転入継続利用":
            # with a deadline: the 転入届 is made but the card not yet presented (90 days from the 転入届)
            card["continued_use_deadline"] = txt(body, "ContinuedUseDeadline")
        if addr is not None and card["identity"]:
            ident = parse(card["identity"])
            old = child(ident, "Address")
            if old is not None:
                new = etree.fromstring(etree.tostring(addr))
                new.tag = old.tag
                ident.replace(old, new)
                card["identity"] = to_xml(ident)

    # --- answers -------------------------------------------------------------------------------------------
    def _verify(self, tenant: str | None, body: etree._Element) -> etree._Element:
        st = self.state(tenant)
        st["verifications"] += 1
        out = E.CardVerificationResult(E.VerificationNo(txt(body, "VerificationNo") or "V"))
        card = st["cards"].get(txt(body, "CardNo") or "")
        today = self.now(tenant).date()
        problem: tuple[str, str, str] | None = None
        if card is None:
            problem = ("not-found", "CARD-UNKNOWN", "カードが登録されていません")
        elif card["cert_serial"] != txt(body, "CertSerial"):
            problem = ("refused", "CARD-SERIAL", "電子証明書のシリアル番号がカードと一致しません")
        elif txt(body, "PinVerified") not in ("true", "1"):
            problem = ("refused", "CARD-PIN", "暗証番号が照合されていません")
        elif card["status"] != ACTIVE:
            problem = ("refused", "CARD-STATUS", f"カードは{card['status']}です")
        elif (vu := _iso(card["valid_until"])) is not None and today > vu:
            problem = ("refused", "CARD-EXPIRED", f"有効期限 {card['valid_until']} を過ぎています")
        if problem is not None:
            out.append(result_el(*problem))
            out.append(E.Valid("false"))
            return out
        assert card is not None
        out.append(result_el("accepted"))
        out.append(E.Valid("true"))
        want = txt(body, "JuminhyoCode")
        if want:
            out.append(E.Matches("true" if want == card["juminhyo_code"] else "false"))
        if card["identity"]:
            out.append(identity_from_resident(parse(card["identity"])))
        return out

    # --- Simulator ----------------------------------------------------------------------------------------
    def apply(self, msg: Message, direction: str) -> None:
        if direction != "in":
            return
        typ, t = msg.header.message_type, msg.tenant
        if typ == "CardIssuanceRequest":
            self._issue(t, msg.body)
        elif typ == "CardStatusChange":
            self._status_change(t, msg.body)
        elif typ == "NoticeDestination":
            self._destination(t, msg)
        elif typ == "CardManagementInfo":
            self._management(t, msg)

    async def react(self, msg: Message) -> etree._Element | None:
        typ, t, body = msg.header.message_type, msg.tenant, msg.body
        if typ == "CardIssuanceRequest":
            done = self._issue(t, body)
            out = E.CardIssuanceResult(E.ApplicationNo(txt(body, "ApplicationNo") or "A"),
                                       result_el(done["status"], done["code"], done["detail"]))
            if done["card_no"]:
                card = self.state(t)["cards"][done["card_no"]]
                out.append(E.CardNo(card["card_no"]))
                out.append(E.CertSerial(card["cert_serial"]))
                out.append(E.ValidUntil(card["valid_until"]))
                self.register(t, card["card_no"], card["cert_serial"], card["juminhyo_code"])
            return out
        if typ == "CardVerificationRequest":
            return self._verify(t, body)
        if typ == "CardStatusChange":
            done = self._status_change(t, body)
            return E.CardStatusResult(E.ChangeNo(txt(body, "ChangeNo") or "C"),
                                      result_el(done["status"], done["code"]),
                                      E.CardNo(txt(body, "CardNo") or "C00000000000"),
                                      E.Status(done["card_status"]))
        self.apply(msg, "in")
        return None

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        """kind "cards": ``cards`` = [{card_no, cert_serial, juminhyo_code, status?, valid_until?, issued?}];
        the xml residents give the holders' 本人確認情報."""
        st = self.state(tenant)
        fields = seed_fields(data)
        people = {txt(r, "JuminhyoCode") or "": r for r in residents_in(data)}
        for c in fields.get("cards", []):
            jc = str(c.get("juminhyo_code") or "")
            r = people.get(jc)
            issued = str(c.get("issued") or self.now(tenant).date().isoformat())
            birth = _iso(txt(r, "BirthDate/Western")) if r is not None else None
            card = {
                "card_no": str(c["card_no"]), "cert_serial": str(c["cert_serial"]), "juminhyo_code": jc,
                "my_number": (txt(r, "MyNumber") if r is not None else None) or c.get("my_number"),
                "identity": to_xml(identity_from_resident(r)) if r is not None else None,
                "status": str(c.get("status") or ACTIVE), "status_reason": None, "issued": issued,
                "valid_until": str(c.get("valid_until")
                                   or valid_until(birth, date.fromisoformat(issued)).isoformat()),
                "application_no": c.get("application_no"), "continued_use_deadline": None,
            }
            _index(st, jc, card["card_no"])
            st["cards"][card["card_no"]] = card
            st["by_serial"][card["cert_serial"]] = card["card_no"]
            self.register(tenant, card["card_no"], card["cert_serial"], jc, card["my_number"])
