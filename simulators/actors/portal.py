"""マイナポータル（サービス検索・電子申請機能）: takes a resident's online 転出届 (38), checks it is made
in the permitted window, and hands it to the municipality (35, to the counter of the SUT).

The window (引越しワンストップ, DOMAIN.md): SubmittedAt — the submission time on the tenant's virtual clock —
must fall, as a JST date, between 30 days before and 10 days after the PlannedMoveOutDate (both inclusive);
otherwise the portal refuses the application (:class:`~simulators.toolbox.Refusal` ``PORTAL-WINDOW``,
recorded as refused on 38). The SUT must check the window too (``EAPP-WINDOW``): a scenario that wants an
out-of-window application to reach the SUT sends it as the portal directly on 35. An application for another
municipality is kept but not forwarded; the same ApplicationId is forwarded once. The electronic signature is
not verified here (the resident side of the harness does not hold signing keys).

The lag (DOMAIN.md, 引越しワンストップ): an application reaches the municipality about two hours after it is made,
on the tenant's virtual clock — when that time falls in the counter's business hours (8:30–17:15 on a business
day: weekdays, not a public holiday, not 12/29–1/3); otherwise at the opening of the next business day. A
scenario moves the virtual clock (``clock`` step) to let it arrive; :func:`arrival` says when.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from simulators.base import Message
from simulators.clock import OperatingCalendar
from simulators.toolbox import Refusal, SimBase, corr, deep, txt

JST = ZoneInfo("Asia/Tokyo")
BEFORE, AFTER = timedelta(days=30), timedelta(days=10)
LAG = timedelta(hours=2)
POLL_S = 0.05  # real seconds between looks at the virtual clock while applications wait
GIVE_UP_S = 600.0  # real seconds after which a tenant's undelivered applications are dropped (tenant gone)


def arrival(made: datetime, calendar: OperatingCalendar | None = None, lag: timedelta = LAG) -> datetime:
    """When an application made at ``made`` reaches the municipality (see the module docstring)."""
    cal = calendar or OperatingCalendar()
    due = (made if made.tzinfo else made.replace(tzinfo=JST)).astimezone(JST) + lag
    if cal.counter_open(due):
        return due
    opening = cal.hours.counter[0]
    day = due.date()
    if cal.is_business_day(day) and due.time() < opening:
        return datetime.combine(day, opening, JST)
    return datetime.combine(cal.add_business_days(day, 1), opening, JST)


def in_window(submitted: datetime, planned: date) -> bool:
    local = (submitted if submitted.tzinfo else submitted.replace(tzinfo=JST)).astimezone(JST).date()
    return planned - BEFORE <= local <= planned + AFTER


class PortalSimulator(SimBase, actor="portal"):
    """My Naportal e-application."""

    #: None forwards at once (unit tests of other parts); the default is the real lag
    lag: timedelta | None = LAG

    def __init__(self, port: Any) -> None:
        super().__init__(port)
        self._pollers: dict[str | None, asyncio.Task[None]] = {}
        #: tenant -> applications on their way: (arrival, body, correlation id, the application's state)
        self._waiting: dict[str | None, list[tuple[datetime, etree._Element, str, dict[str, Any]]]] = {}

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
        done["forwarded"] = "waiting"
        if self.lag is None:
            await self._forward(t, done, deep(body), corr(msg))
            return None
        due = arrival(self.now(t), lag=self.lag)
        done["due"] = due.isoformat()
        self._waiting.setdefault(t, []).append((due, deep(body), corr(msg), done))
        self._poll(t)
        return None

    async def _forward(self, t: str | None, done: dict[str, Any], body: etree._Element, correlation: str) -> None:
        done["forwarded"] = "sending"
        res = await self.send(t, ("counter", self.port.sut_lg), "EApplication", body, correlation_id=correlation)
        done["forwarded"] = res.message_id if res.ok else None
        done["forward_status"] = res.status

    async def release_due(self, tenant: str | None) -> int:
        """Forward every waiting application whose arrival time has come on the tenant's clock; how many."""
        waiting = self._waiting.get(tenant, [])
        now = self.now(tenant)
        ready = [w for w in waiting if w[0] <= now]
        self._waiting[tenant] = [w for w in waiting if w[0] > now]
        for _due, body, correlation, done in sorted(ready, key=lambda w: w[0]):
            await self._forward(tenant, done, body, correlation)
        return len(ready)

    def _poll(self, tenant: str | None) -> None:
        task = self._pollers.get(tenant)
        if task is None or task.done():
            self._pollers[tenant] = asyncio.get_running_loop().create_task(self._poll_loop(tenant))

    async def _poll_loop(self, tenant: str | None) -> None:
        """Watch the virtual clock while applications wait; stops when none is left (or the tenant is gone)."""
        loop = asyncio.get_running_loop()
        stop = loop.time() + GIVE_UP_S
        with contextlib.suppress(asyncio.CancelledError):
            while self._waiting.get(tenant):
                if loop.time() > stop:
                    self._waiting.pop(tenant, None)
                    return
                await self.release_due(tenant)
                await asyncio.sleep(POLL_S)
