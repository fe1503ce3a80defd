"""中間サーバー・プラットフォーム (with the 情報提供ネットワークシステム): keeps the 副本 the addressee system
provisions (16) and the 符号 it obtains, and asks for 符号 (``SymbolRequest`` on 16, started by a scenario's
control send or :meth:`IntermediateSimulator.request_symbol`).

Why it also checks the provision: the platform never receives 個人番号 — a provision that carries one is noted
(``with_my_number``) so a test can see it, besides the gateway's data-class rule.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformance.envelope import new_id
from conformance.rules import find_my_numbers
from simulators.base import Message, SendResult
from simulators.toolbox import E, SimBase, child, jdate_key, remember, to_xml, txt


class IntermediateSimulator(SimBase, actor="intermediate"):
    """中間サーバー・プラットフォーム."""

    def new_state(self) -> dict[str, Any]:
        return {
            "provisions": {},  # 宛名番号 -> latest provision summary
            "provision_count": 0,
            "with_my_number": [],  # ProvisionNo of provisions that carried a 12-digit valid 個人番号
            "symbols": {},  # 宛名番号 -> 符号
            "requests": {},  # RequestNo -> {"addressee_no", "status", "symbol", "message_id"}
            "seen": {},
        }

    def apply(self, msg: Message, direction: str) -> None:
        st = self.state(msg.tenant)
        mid = msg.header.message_id
        if not remember(st["seen"], mid):
            return
        typ, body = msg.header.message_type, msg.body
        if direction == "out" and typ == "SymbolRequest":
            st["requests"][txt(body, "RequestNo") or mid] = {
                "addressee_no": txt(body, "AddresseeNo"), "status": "sent", "symbol": None, "message_id": mid}
        elif direction == "in" and typ == "IntermediateProvision":
            no = txt(body, "AddresseeNo") or ""
            addr = child(body, "Address")
            st["provisions"][no] = {
                "provision_no": txt(body, "ProvisionNo"), "name_kanji": txt(body, "Name/Kanji"),
                "name_kana": txt(body, "Name/Kana"), "name_latin": txt(body, "Name/Latin"),
                "birth_date": jdate_key(child(body, "BirthDate")), "sex": txt(body, "Sex"),
                "address": to_xml(addr) if addr is not None else None, "symbol": txt(body, "Symbol"),
                "reason": (r.get("code") if (r := child(body, "Change/Reason")) is not None else None),
                "message_id": mid,
            }
            st["provision_count"] += 1
            if any(find_my_numbers(str(t)) for t in body.itertext()):
                st["with_my_number"].append(txt(body, "ProvisionNo"))
            if txt(body, "Symbol"):
                st["symbols"][no] = txt(body, "Symbol")
        elif direction == "in" and typ == "SymbolAcquisitionResult":
            no = txt(body, "AddresseeNo") or ""
            req = st["requests"].setdefault(txt(body, "RequestNo") or mid, {
                "addressee_no": no, "status": None, "symbol": None, "message_id": None})
            req["status"] = txt(body, "Result/Status")
            sym = txt(body, "Symbol")
            if sym:
                req["symbol"] = sym
                st["symbols"][no] = sym

    async def react(self, msg: Message) -> etree._Element | None:
        self.apply(msg, "in")
        return None

    async def request_symbol(self, tenant: str | None, addressee_no: str) -> SendResult:
        """Ask the addressee system for the 符号 of a 宛名番号 (SymbolRequest on 16)."""
        body = E.SymbolRequest(E.RequestNo(new_id("SYR")), E.AddresseeNo(addressee_no))
        return await self.send(tenant, self.to("addressee"), "SymbolRequest", body)
