"""出入国在留管理庁 (Immigration Services Agency): receives 市町村通知 (27, sync) and answers with a result;
sends 法務省通知 (28) to the SUT when a scenario makes it (control send).

What it refuses (``IMM-CARD``): a 在留カード番号 that is not two letters, eight digits, two letters; one
the agency knows is no longer valid (seed kind ``invalid_cards``, or replaced by a 在留カード再交付 the
agency sent in a ``MojNotice``); and — once the agency was seeded with foreign residents (seed kind
``residents``) — one it does not know. Without seeded residents every well-formed number is accepted. Each
attempt of a notice is kept (a refused notice is resent by the SUT with the same NoticeNo and a
RetryReason).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformance.identifiers import is_valid_residence_card_no
from simulators.base import Message
from simulators.toolbox import E, SimBase, child, jdate_key, residents_in, result_el, seed_fields, txt


class ImmigrationSimulator(SimBase, actor="immigration"):
    """出入国在留管理庁."""

    def new_state(self) -> dict[str, Any]:
        return {
            "persons": {},  # 在留カード番号 -> {"name", "birth_date", "nationality", "category"}
            "strict": False,
            "invalid_cards": {},  # 在留カード番号 -> reason
            "notices": {},  # NoticeNo -> {"kind", "card_no", "status", "code", "attempts": [...]}
            "moj_sent": {},  # NoticeNo -> {"kind", "card_no", "new_card_no", "effective"}
        }

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        st = self.state(tenant)
        fields = seed_fields(data)
        if kind == "invalid_cards":
            for c in fields.get("cards", []):
                st["invalid_cards"][str(c)] = str(fields.get("reason") or "無効")
                self.register(tenant, str(c))
            return
        for r in residents_in(data):
            card = txt(r, "Foreign/ResidenceCardNo")
            if not card:
                continue
            st["persons"][card] = {"name": txt(r, "Name/Latin") or txt(r, "Name/Kanji"),
                                   "birth_date": jdate_key(child(r, "BirthDate")),
                                   "nationality": txt(r, "Foreign/Nationality"),
                                   "category": txt(r, "Foreign/Category")}
            st["strict"] = True
            self.register(tenant, card, txt(r, "JuminhyoCode"))

    def _judge(self, st: dict[str, Any], card: str) -> tuple[str, str | None, str | None]:
        if not is_valid_residence_card_no(card):
            return "refused", "IMM-CARD", f"在留カード番号 {card} の形式が正しくありません"
        if card in st["invalid_cards"]:
            why = st["invalid_cards"][card]
            return "refused", "IMM-CARD", f"在留カード番号 {card} は有効ではありません（{why}）"
        if st["strict"] and card not in st["persons"]:
            return "refused", "IMM-CARD", f"在留カード番号 {card} に該当する者がいません"
        return "accepted", None, None

    def _receive(self, msg: Message) -> dict[str, Any]:
        """Judge and record one attempt of a 市町村通知 (idempotent per MessageId)."""
        st = self.state(msg.tenant)
        body = msg.body
        notice_no = txt(body, "NoticeNo") or msg.header.message_id
        card = txt(body, "Person/ResidenceCardNo") or ""
        entry: dict[str, Any] = st["notices"].setdefault(notice_no, {
            "kind": txt(body, "Kind"), "card_no": card, "status": None, "code": None, "detail": None,
            "attempts": []})
        if any(a["message_id"] == msg.header.message_id for a in entry["attempts"]):
            return entry
        status, code, detail = self._judge(st, card)
        entry.update(status=status, code=code, detail=detail, card_no=card, kind=txt(body, "Kind"))
        entry["attempts"].append({"message_id": msg.header.message_id, "status": status, "code": code,
                                  "retry_reason": msg.header.retry_reason})
        return entry

    def apply(self, msg: Message, direction: str) -> None:
        typ, body = msg.header.message_type, msg.body
        if direction == "in" and typ == "MunicipalNotice":
            self._receive(msg)
        elif direction == "out" and typ == "MojNotice":
            st = self.state(msg.tenant)
            old = txt(body, "Person/ResidenceCardNo") or ""
            new = txt(body, "Changes/NewResidenceCardNo")
            st["moj_sent"][txt(body, "NoticeNo") or msg.header.message_id] = {
                "kind": txt(body, "Kind"), "card_no": old, "new_card_no": new,
                "effective": txt(body, "EffectiveDate")}
            if new and new != old:
                st["invalid_cards"][old] = "再交付"
                person = st["persons"].pop(old, None)
                if person is not None or st["strict"]:
                    st["persons"][new] = person or {}

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "MunicipalNotice":
            return None
        entry = self._receive(msg)
        self.register(msg.tenant, entry["card_no"])
        return E.MunicipalNoticeResult(E.NoticeNo(txt(msg.body, "NoticeNo") or "N"),
                                       result_el(entry["status"], entry["code"], entry["detail"]))
