"""入管通知連携 (the municipality-side link to the Immigration Services Agency): takes the SUT's 市町村通知
(29, sync), passes it to the agency (27, sync) and returns the agency's result to the SUT.

Why a separate actor: the catalogue draws 29 and 27 as two arrows (ROUTES.md), so both hops are on the trace.
When the agency cannot be reached or answers with something else, the link answers ``refused`` with code
``IMMLINK-UPSTREAM-<status>`` (``held`` for 503): the SUT must resend the notice later with a RetryReason.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from simulators.base import Message
from simulators.toolbox import E, SimBase, corr, deep, result_el, txt


class ImmLinkSimulator(SimBase, actor="immlink"):
    """入管通知連携."""

    def new_state(self) -> dict[str, Any]:
        return {"notices": {}}  # NoticeNo -> {"attempts": [{"message_id", "status", "code"}]}

    def apply(self, msg: Message, direction: str) -> None:
        if direction == "out" and msg.header.message_type == "MunicipalNoticeResult":
            self._note(msg.tenant, txt(msg.body, "NoticeNo") or "", msg.header.correlation_id or "",
                       txt(msg.body, "Result/Status"), txt(msg.body, "Result/Code"))

    def _note(self, tenant: str | None, notice_no: str, message_id: str, status: str | None,
              code: str | None) -> None:
        entry = self.state(tenant)["notices"].setdefault(notice_no, {"attempts": []})
        if not any(a["message_id"] == message_id for a in entry["attempts"]):
            entry["attempts"].append({"message_id": message_id, "status": status, "code": code})

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "MunicipalNotice":
            return None
        t = msg.tenant
        res = await self.ask(t, self.to("immigration"), "MunicipalNotice", deep(msg.body),
                              correlation_id=corr(msg))
        got = res.response.body if res.ok and res.response is not None else None
        if got is not None and etree.QName(got).localname == "MunicipalNoticeResult":
            answer = deep(got)
        else:
            answer = E.MunicipalNoticeResult(
                E.NoticeNo(txt(msg.body, "NoticeNo") or "N"),
                result_el("held" if res.status == 503 else "refused", f"IMMLINK-UPSTREAM-{res.status}",
                          "出入国在留管理庁に通知できませんでした"))
        self._note(t, txt(msg.body, "NoticeNo") or "", msg.header.message_id, txt(answer, "Result/Status"),
                   txt(answer, "Result/Code"))
        return answer
