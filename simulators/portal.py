"""マイナポータル（サービス検索・電子申請機能）: takes a resident's online 転出届 (38), checks it is made
in the permitted window, and hands it to the municipality (35, to the counter of the SUT).

The window (引越しワンストップ, DOMAIN.md): SubmittedAt — the submission time on the tenant's virtual clock —
must fall, as a JST date, between 30 days before and 10 days after the PlannedMoveOutDate (both inclusive);
otherwise the portal refuses the application (:class:`~simulators.registry.Refusal` ``PORTAL-WINDOW``,
recorded as refused on 38). The SUT must check the window too (``EAPP-WINDOW``): a scenario that wants an
out-of-window application to reach the SUT sends it as the portal directly on 35. An application for another
municipality is kept but not forwarded; the same ApplicationId is forwarded once. The electronic signature is
not verified here (the resident side of the harness does not hold signing keys).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from simulators.base import Message
from simulators.registry import Refusal, SimBase, corr, deep, txt

JST = ZoneInfo("Asia/Tokyo")
BEFORE, AFTER = timedelta(days=30), timedelta(days=10)


def in_window(submitted: datetime, planned: date) -> bool:
    local = (submitted if submitted.tzinfo else submitted.replace(tzinfo=JST)).astimezone(JST).date()
    return planned - BEFORE <= local <= planned + AFTER


class PortalSimulator(SimBase):
    """My Naportal e-application."""

    actor = "portal"

    def new_state(self) -> dict[str, Any]:
        return {"applications": {}}  # ApplicationId -> {"status", "code", "submitted", "planned", ...}

    def _judge(self, tenant: str | None, msg: Message) -> dict[str, Any]:
        st = self.state(tenant)
        body = msg.body
        app_id = txt(body, "ApplicationId") or msg.header.message_id
        done = st["applications"].get(app_id)
        if done is not None:
            return done  # type: ignore[no-any-return]
        submitted_s, planned_s = txt(body, "SubmittedAt") or "", txt(body, "PlannedMoveOutDate") or ""
        try:
            ok = in_window(datetime.fromisoformat(submitted_s), date.fromisoformat(planned_s))
        except ValueError:
            ok = False
        if not ok:
            status, code = "refused", "PORTAL-WINDOW"
        elif txt(body, "LgCode") != self.port.sut_lg:
            status, code = "kept", "PORTAL-OTHER-LG"
        else:
            status, code = "accepted", None
        done = st["applications"][app_id] = {
            "status": status, "code": code, "submitted": submitted_s, "planned": planned_s,
            "kind": txt(body, "Kind"), "lg_code": txt(body, "LgCode"), "message_id": msg.header.message_id,
            "forwarded": None,
        }
        return done

    def apply(self, msg: Message, direction: str) -> None:
        if msg.header.message_type != "EApplication":
            return
        if direction == "in":
            self._judge(msg.tenant, msg)
        else:
            app = self.state(msg.tenant)["applications"].get(txt(msg.body, "ApplicationId") or "")
            if app is not None:
                app["forwarded"] = msg.header.message_id

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "EApplication":
            return None
        t, body = msg.tenant, msg.body
        done = self._judge(t, msg)
        self.register(t, txt(body, "ApplicationId"), txt(body, "CertSerial"))
        if done["status"] == "refused":
            raise Refusal("PORTAL-WINDOW", f"転出届は転出予定日 {done['planned']} の30日前から10日後までに"
                                           f"申請してください（申請日時 {done['submitted']}）")
        if done["status"] != "accepted" or done["forwarded"]:
            return None
        done["forwarded"] = "sending"
        res = await self.send(t, ("counter", self.port.sut_lg), "EApplication", deep(body),
                              correlation_id=corr(msg))
        done["forwarded"] = res.message_id if res.ok else None
        done["forward_status"] = res.status
        return None
