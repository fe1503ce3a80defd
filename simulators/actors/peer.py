"""他市町村: many other municipalities, each with its own lgCode, residents, family registers and inbox.

What a peer does, as the real moving-out / 本籍地 / issuing municipality would:

- **転出証明書情報の求め** (``MoveOutCertRequest`` received on 1): for each subject who is 転出予定 (to the
  requesting municipality, when the plan names one), it builds the 転出証明書情報 from its register. The
  catalogue has no arrow from a peer to the SUT for ``MoveOutCertInfo`` (2 carries requests and notices), so,
  as on Juki-Net, the answer travels through the national server: the peer hands it to the national
  simulator in process, which sends it on 4 to the CS (→ 9 to the SUT) with CorrelationId = the request's
  correlation id. Unknown or not-moving subjects: nothing is sent (the request is noted as unanswered).
- **転入通知** (``MoveInNotice``): records the confirmed move-in date and address per person **without
  overwriting the planned ones**; a later notice wins over an earlier one; the person becomes 消除.
- **附票記載事項通知** (``FuhyoNotice``): recorded per person. When the peer's family register (seed kind
  ``koseki``) holds the person and 氏名・生年月日・性別 differ, it answers with a ``FuhyoMismatchNotice``
  on 2.
- ``FuhyoMismatchNotice``, ``KosekiEntryNotice`` (a name change is applied to the resident),
  ``WideAreaCopyInfo`` (matched to the request the peer sent) and ``MoveOutCertInfo`` (people moving from the
  SUT to this peer) are recorded.

Seeding (``seed(tenant, kind, data)``, ``data["lg_code"]`` names the peer):
``residents`` — xml residents; optional fields ``status`` ("住民" | "転出予定"), ``planned_move_out_date``,
``notified_date``, ``move_in_lg`` (default the SUT), ``planned_address`` (AddressType xml), ``cards``
({住民票コード: {"card_no", "cert_serial"}}). Giving ``planned_move_out_date`` implies 転出予定.
``koseki`` — xml residents with ``Honseki`` whose 本籍 is this peer.
"""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

from lxml import etree

from conformance.codec import address_el
from conformance.envelope import new_id
from conformance.errors import HarnessError
from conformance.model import Address
from conformance.residents import municipality_for
from conformance.wareki import to_wareki
from conformance.xmlsafe import q
from simulators.base import Message, SendResult
from simulators.toolbox import (
    E,
    SimBase,
    capped,
    child,
    corr,
    deep,
    from_xml,
    identity_from_resident,
    identity_keys,
    jdate_key,
    kana_key,
    remember,
    residents_in,
    seed_fields,
    sibling,
    stable_token,
    to_xml,
    txt,
)


def _muni() -> dict[str, Any]:
    return {
        "residents": {},  # 住民票コード -> resident record (see _resident)
        "koseki": {},  # 住民票コード or kana|birth -> ResidentType xml (with Honseki)
        "move_in_notices": [],
        "fuhyo": {},  # person key -> [notice summaries]
        "mismatches": {},  # NoticeNo -> summary (received)
        "koseki_entries": {},  # NoticeNo -> summary (received)
        "wide_area": {},  # RequestNo -> {"request": summary | None, "result": summary | None}
        "moveout_infos": {},  # CertificateNo -> summary (received: people moving from the SUT here)
        "moc_requests": {},  # RequestNo -> {"answered": CertificateNo | None, "reason": str | None}
        "unknown": [],  # notices about persons this peer does not hold
        "sent": {},  # message type -> count
        "seen": {},  # message ids applied (idempotency)
    }


def _person_key(el: etree._Element) -> str:
    jc = txt(el, "JuminhyoCode")
    if jc:
        return jc
    return f"{kana_key(txt(el, 'Name/Kana') or txt(el, 'Name/Latin'))}|{jdate_key(child(el, 'BirthDate'))}"


def _key_of(el: etree._Element | None) -> str:
    return _person_key(el) if el is not None else "?"


def _jdate(d: date, tag: str) -> etree._Element:
    el = E(tag, E.Western(d.isoformat()))
    with contextlib.suppress(HarnessError):  # a date before 明治 has no 和暦; the 西暦 alone is valid
        el.append(E.Wareki(to_wareki(d)))
    return el


def _entry(r: dict[str, Any]) -> dict[str, Any]:
    return {"identity": r["identity"], "change": None, "deleted": r["status"] == "消除", **r.get("keys", {})}


class PeerSimulator(SimBase, actor="peer"):
    """Other municipalities (one state per lgCode, inside each tenant)."""

    def new_state(self) -> dict[str, Any]:
        return {"municipalities": {}}

    def muni(self, tenant: str | None, lg: str) -> dict[str, Any]:
        ms = self.state(tenant)["municipalities"]
        m: dict[str, Any] | None = ms.get(lg)
        if m is None:
            m = ms[lg] = _muni()
        return m

    # --- seeding -------------------------------------------------------------------------------------------
    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        fields = seed_fields(data)
        lg = str(fields.get("lg_code") or "")
        if not lg:
            raise ValueError("a peer seed needs lg_code")
        m = self.muni(tenant, lg)
        self.register(tenant, lg)
        if kind == "koseki":
            for r in residents_in(data):
                m["koseki"][_person_key(r)] = to_xml(r)
                self.register(tenant, txt(r, "JuminhyoCode"))
            return
        planned_date = fields.get("planned_move_out_date")
        status = str(fields.get("status") or ("転出予定" if planned_date else "住民"))
        cards = fields.get("cards") or {}
        for r in residents_in(data):
            jc = txt(r, "JuminhyoCode") or ""
            card = cards.get(jc) or {}
            rec: dict[str, Any] = {
                "xml": to_xml(r), "identity": to_xml(identity_from_resident(r)),
                "keys": identity_keys(identity_from_resident(r)), "status": status,
                "planned": None, "confirmed": None, "notices": [], "card_no": card.get("card_no"),
                "cert_serial": card.get("cert_serial"), "certificate_no": None,
            }
            if status == "転出予定":
                rec["planned"] = {
                    "date": str(planned_date or self.now(tenant).date().isoformat()),
                    "notified": str(fields.get("notified_date") or self.now(tenant).date().isoformat()),
                    "move_in_lg": str(fields.get("move_in_lg") or self.port.sut_lg),
                    "address": fields.get("planned_address"),
                }
            m["residents"][jc] = rec
            self.register(tenant, jc, txt(r, "MyNumber"), txt(r, "Foreign/ResidenceCardNo"),
                          rec["card_no"], rec["cert_serial"])

    # --- for the national server --------------------------------------------------------------------------
    def identities(self, tenant: str | None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for m in self.state(tenant)["municipalities"].values():
            for jc, r in m["residents"].items():
                out[jc] = _entry(r)
        return out

    def identity(self, tenant: str | None, jc: str) -> dict[str, Any] | None:
        """``identities(tenant).get(jc)`` without building the others (the last municipality holding it)."""
        found = None
        for m in self.state(tenant)["municipalities"].values():
            r = m["residents"].get(jc)
            if r is not None:
                found = r
        return None if found is None else _entry(found)

    # --- 転出証明書情報 -----------------------------------------------------------------------------------
    def _find(self, m: dict[str, Any], subject: etree._Element) -> dict[str, Any] | None:
        jc = txt(subject, "JuminhyoCode")
        if jc:
            return m["residents"].get(jc)  # type: ignore[no-any-return]
        number = txt(subject, "MyNumber")
        kana = kana_key(txt(subject, "Name/Kana"))
        birth = jdate_key(child(subject, "BirthDate"))
        for r in m["residents"].values():
            el = from_xml(r["xml"])
            if number and txt(el, "MyNumber") == number:
                return r  # type: ignore[no-any-return]
            if not number and kana and kana == kana_key(txt(el, "Name/Kana")) \
                    and birth == jdate_key(child(el, "BirthDate")):
                return r  # type: ignore[no-any-return]
        return None

    def moveout_info(self, tenant: str | None, lg: str, codes: list[str], *, request_no: str | None = None,
                     move_in_lg: str | None = None) -> etree._Element | None:
        """The 転出証明書情報 of residents ``codes`` of peer ``lg`` (those 転出予定), or None if none is."""
        m = self.muni(tenant, lg)
        recs = [m["residents"][c] for c in codes if c in m["residents"]]
        recs = [r for r in recs if r["status"] == "転出予定" and r["planned"]
                and (move_in_lg is None or r["planned"]["move_in_lg"] in (None, move_in_lg))]
        if not recs:
            return None
        plan = recs[0]["planned"]
        target = move_in_lg or plan["move_in_lg"] or self.port.sut_lg
        cert_no = f"MOC-{lg}-{stable_token(tenant or '', lg, request_no or new_id('X'), *codes, n=10)}"
        info = E.MoveOutCertInfo(E.CertificateNo(cert_no))
        if request_no:
            info.append(E.RequestNo(request_no))
        info.append(E.MoveOutLgCode(lg))
        info.append(E.MoveInLgCode(target))
        info.append(_jdate(date.fromisoformat(plan["date"]), "PlannedMoveOutDate"))
        info.append(E.NotifiedDate(plan["notified"]))
        if plan.get("address"):
            addr = deep(from_xml(plan["address"]))
            addr.tag = addr.tag.rsplit("}", 1)[0] + "}PlannedAddress"
            info.append(addr)
        else:
            mu = municipality_for(target)
            info.append(address_el("PlannedAddress", Address(lg_code=mu.lg_code, prefecture=mu.prefecture,
                                                             city=mu.city, town="未定")))
        for r in recs:
            member = E.Member(deep(from_xml(r["xml"])))
            if r.get("card_no"):
                member.append(E.CardNo(r["card_no"]))
            info.append(member)
        return info

    async def send_moveout(self, tenant: str | None, lg: str, codes: list[str], *,
                           request_no: str | None = None, move_in_lg: str | None = None,
                           correlation_id: str | None = None) -> SendResult | None:
        """Have national deliver this peer's 転出証明書情報 to the SUT (arrow 4), e.g. for 特例転入."""
        info = self.moveout_info(tenant, lg, codes, request_no=request_no, move_in_lg=move_in_lg)
        national = sibling(self.port, "national")
        if info is None or national is None or not hasattr(national, "deliver_moveout"):
            return None
        cert_no = txt(info, "CertificateNo")
        m = self.muni(tenant, lg)
        for member in info.findall(q("Member")):
            rec = m["residents"].get(txt(member, "Resident/JuminhyoCode") or "")
            if rec is not None:
                rec["certificate_no"] = cert_no
        res: SendResult = await national.deliver_moveout(tenant, info, correlation_id=correlation_id)
        return res

    async def _answer_moveout_request(self, msg: Message, lg: str) -> None:
        t, body = msg.tenant, msg.body
        m = self.muni(t, lg)
        request_no = txt(body, "RequestNo") or ""
        move_in_lg = txt(body, "MoveInLgCode") or msg.header.sender_lg
        codes: list[str] = []
        for subject in body.findall(q("Subject")):
            r = self._find(m, subject)
            if r is not None:
                codes.append(txt(from_xml(r["xml"]), "JuminhyoCode") or "")
        entry = m["moc_requests"].setdefault(request_no, {"answered": None, "reason": None})
        if sibling(self.port, "national") is None:
            entry["reason"] = "no national server in process to deliver the answer"
            return
        info = self.moveout_info(t, lg, codes, request_no=request_no, move_in_lg=move_in_lg)
        if info is None:
            entry["reason"] = "not 転出予定 to the requester" if codes else "unknown subjects"
            return
        res = await self.send_moveout(t, lg, codes, request_no=request_no, move_in_lg=move_in_lg,
                                      correlation_id=corr(msg))
        entry["answered"] = txt(info, "CertificateNo")
        entry["status"] = res.status if res is not None else None

    # --- 附票: the peer as 本籍地 ---------------------------------------------------------------------------
    async def _check_fuhyo(self, msg: Message, lg: str) -> None:
        m = self.muni(msg.tenant, lg)
        person = child(msg.body, "Person")
        if person is None:
            return
        k = m["koseki"].get(_person_key(person))
        if k is None:
            return
        kos = from_xml(k)
        honseki = child(kos, "Honseki")
        if honseki is None:
            return
        mismatches: list[tuple[str, str, str]] = []

        def differ(label: str, a: str | None, b: str | None, key: Any = None) -> None:
            ka, kb = (key(a), key(b)) if key else (a, b)
            if ka != kb:
                mismatches.append((label, a or "（記載なし）", b or "（記載なし）"))

        differ("氏名", txt(person, "Name/Kanji"), txt(kos, "Name/Kanji"))
        differ("氏名の振り仮名", txt(person, "Name/Kana"), txt(kos, "Name/Kana"), kana_key)
        differ("生年月日", jdate_key(child(person, "BirthDate")), jdate_key(child(kos, "BirthDate")))
        if txt(person, "Sex"):
            differ("性別", txt(person, "Sex"), txt(kos, "Sex"))
        if not mismatches:
            return
        kp = E.Person()
        jc = txt(kos, "JuminhyoCode")
        if jc:
            kp.append(E.JuminhyoCode(jc))
        for name in ("Name", "BirthDate", "Sex"):
            c = child(kos, name)
            if c is not None:
                kp.append(deep(c))
        kp.append(deep(honseki))
        notice = E.FuhyoMismatchNotice(E.NoticeNo(new_id("FMN")),
                                       E.RefNoticeNo(txt(msg.body, "NoticeNo") or "N"), kp)
        for item, in_notice, in_koseki in mismatches:
            notice.append(E.Mismatch(E.Item(item), E.InFuhyoNotice(in_notice), E.InKoseki(in_koseki)))
        await self.send(msg.tenant, self.to("cs"), "FuhyoMismatchNotice", notice, correlation_id=corr(msg),
                        sender_lg=lg)

    # --- Simulator ----------------------------------------------------------------------------------------
    def _lg(self, msg: Message, direction: str) -> str:
        h = msg.header
        return (h.receiver_lg if direction == "in" else h.sender_lg) or ""

    def apply(self, msg: Message, direction: str) -> None:
        lg = self._lg(msg, direction)
        m = self.muni(msg.tenant, lg)
        mid = msg.header.message_id
        if not remember(m["seen"], mid):
            return
        typ, body = msg.header.message_type, msg.body
        if direction == "out":
            m["sent"][typ] = m["sent"].get(typ, 0) + 1
            if typ == "WideAreaCopyRequest":
                m["wide_area"].setdefault(txt(body, "RequestNo") or "", {"request": None, "result": None})[
                    "request"] = {"subject": _key_of(child(body, "Subject")),
                                  "scope": txt(body, "Scope"), "message_id": mid}
            return
        if typ == "MoveInNotice":
            self._apply_move_in(m, msg)
        elif typ == "FuhyoNotice":
            person = child(body, "Person")
            key = _person_key(person) if person is not None else "?"
            m["fuhyo"].setdefault(key, []).append({
                "notice_no": txt(body, "NoticeNo"), "message_id": mid,
                "address_lg": txt(body, "AddressLgCode"),
                "address": to_xml(a) if (a := child(body, "Address")) is not None else None,
                "address_since": jdate_key(child(body, "AddressSince")),
                "reason": (c.get("code") if (c := child(body, "Change/Reason")) is not None else None),
                "seq": txt(body, "Change/Seq")})
        elif typ == "FuhyoMismatchNotice":
            m["mismatches"][txt(body, "NoticeNo") or mid] = {
                "ref": txt(body, "RefNoticeNo"), "person": _key_of(child(body, "Person")),
                "items": [txt(x, "Item") for x in body.findall(q("Mismatch"))], "message_id": mid}
        elif typ == "KosekiEntryNotice":
            person = child(body, "Person")
            key = _person_key(person) if person is not None else "?"
            m["koseki_entries"][txt(body, "NoticeNo") or mid] = {
                "person": key, "kind": txt(body, "EntryKind"),
                "entry_date": jdate_key(child(body, "EntryDate")),
                "honseki_lg": txt(body, "HonsekiLgCode"), "message_id": mid}
            new_name = child(body, "NewName")
            rec = m["residents"].get(key)
            if rec is not None and new_name is not None:
                el = from_xml(rec["xml"])
                old = child(el, "Name")
                if old is not None:
                    nn = deep(new_name)
                    nn.tag = old.tag
                    old.getparent().replace(old, nn)  # type: ignore[union-attr]
                    rec["xml"] = to_xml(el)
                    rec["identity"] = to_xml(identity_from_resident(el))
                    rec["keys"] = identity_keys(identity_from_resident(el))
        elif typ == "WideAreaCopyInfo":
            members = body.findall(q("Member"))
            m["wide_area"].setdefault(txt(body, "RequestNo") or "", {"request": None, "result": None})[
                "result"] = {"status": txt(body, "Result/Status"),
                             "members": [_person_key(x) for x in members],
                             "has_honseki": any(child(x, "Honseki") is not None for x in members),
                             "has_my_number": any(child(x, "MyNumber") is not None for x in members),
                             "message_id": mid}
        elif typ == "MoveOutCertInfo":
            m["moveout_infos"][txt(body, "CertificateNo") or mid] = {
                "request_no": txt(body, "RequestNo"), "from": txt(body, "MoveOutLgCode"),
                "to": txt(body, "MoveInLgCode"), "planned_date": jdate_key(child(body, "PlannedMoveOutDate")),
                "members": [txt(x, "Resident/JuminhyoCode") for x in body.findall(q("Member"))],
                "message_id": mid}
        elif typ == "MoveOutCertRequest":
            m["moc_requests"].setdefault(txt(body, "RequestNo") or mid, {"answered": None, "reason": None})

    def _apply_move_in(self, m: dict[str, Any], msg: Message) -> None:
        body, mid = msg.body, msg.header.message_id
        addr = child(body, "NewAddress")
        confirmed = {
            "move_in_date": jdate_key(child(body, "MoveInDate")), "notified": txt(body, "NotifiedDate"),
            "address": to_xml(addr) if addr is not None else None, "move_in_lg": txt(body, "MoveInLgCode"),
            "notice_no": txt(body, "NoticeNo"), "certificate_no": txt(body, "CertificateNo"),
            "message_id": mid,
        }
        codes = [txt(p, "JuminhyoCode") or "" for p in body.findall(q("Person"))]
        capped(m["move_in_notices"], {**confirmed, "persons": codes})
        for jc in codes:
            rec = m["residents"].get(jc)
            if rec is None:
                m["unknown"].append({"type": "MoveInNotice", "juminhyo_code": jc, "message_id": mid})
                continue
            rec["confirmed"] = dict(confirmed)  # the latest notice wins; "planned" is never touched
            rec["notices"].append(mid)
            rec["status"] = "消除"

    async def react(self, msg: Message) -> etree._Element | None:
        self.apply(msg, "in")
        lg = self._lg(msg, "in")
        self.register(msg.tenant, lg)
        typ = msg.header.message_type
        if typ == "MoveOutCertRequest":
            await self._answer_moveout_request(msg, lg)
        elif typ == "FuhyoNotice":
            await self._check_fuhyo(msg, lg)
        return None
