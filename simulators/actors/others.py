"""他業務システム (tax, health insurance, pension, care, welfare, elections, education): a sink that keeps
every ``ResidentTransfer`` per target, so a test can see which business system got which change of whom —
and whether a 個人番号 went to a target (only the 利用事務 may receive it).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformance.xmlsafe import q
from simulators.base import Message
from simulators.toolbox import SimBase, capped, child, remember, txt


class OthersSimulator(SimBase, actor="others"):
    """Other business systems."""

    def new_state(self) -> dict[str, Any]:
        return {"targets": {}, "count": 0, "seen": {}}

    def apply(self, msg: Message, direction: str) -> None:
        if direction != "in" or msg.header.message_type != "ResidentTransfer":
            return
        st = self.state(msg.tenant)
        mid = msg.header.message_id
        if not remember(st["seen"], mid):
            return
        body = msg.body
        reason = child(body, "Change/Reason")
        capped(st["targets"].setdefault(txt(body, "Target") or "?", []), {
            "transfer_no": txt(body, "TransferNo"), "juminhyo_code": txt(body, "Resident/JuminhyoCode"),
            "reason": reason.get("code") if reason is not None else None, "seq": txt(body, "Change/Seq"),
            "has_my_number": child(body, "Resident/MyNumber") is not None, "message_id": mid,
            "entries": [txt(e, "Kind") for e in body.iterfind(f"{q('Resident')}/{q('IndividualEntry')}")],
        }, 2_000)
        st["count"] += 1

    async def react(self, msg: Message) -> etree._Element | None:
        self.apply(msg, "in")
        self.register(msg.tenant, txt(msg.body, "Resident/JuminhyoCode"))
        return None
