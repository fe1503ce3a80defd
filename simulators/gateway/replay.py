"""Replay: on start, rebuild tenants, identifiers, accepted ids and simulator state from the trace.

Simulators are event-sourced: for every accepted message or response the sending simulator got
``apply(msg, "out")`` and the receiving one ``apply(msg, "in")``; replay calls ``apply`` (and ``seed``) only,
so state comes back and nothing is sent again. The trace is read a page at a time (``TraceStore.scan``), so
a long trace does not have to fit in memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime

from conformance.errors import HarnessError
from conformance.model import Municipality
from conformance.record import TraceRecord
from conformance.xmlsafe import parse
from simulators.clock import OperatingCalendar
from simulators.gateway.tenancy import TenancyMixin
from simulators.gateway.values import Tenant, body_ids, peek_header

log = logging.getLogger("juki.gateway")


class ReplayMixin(TenancyMixin):
    """``_replay`` (called by ``start``)."""

    def _replay(self) -> None:
        n = 0
        for rec in self.store.scan():
            n += 1
            try:
                if rec.kind == "event":
                    self._replay_event(rec)
                elif rec.kind in ("message", "response", "refused"):
                    self._replay_message(rec)
            except Exception:
                log.exception("replay of trace record %d failed", rec.seq)
        self.replayed = n

    def _replay_message(self, rec: TraceRecord) -> None:
        tenant = self.tenant_of(rec)
        try:
            root = parse(rec.payload)
        except HarnessError:
            return
        peek = peek_header(root)
        self._remember(rec, tenant, peek, body_ids(root) if rec.kind != "refused" else [])
        if rec.verdict != "accepted" or peek is None:
            return
        if rec.kind == "message":
            self._accepted_ids.add((rec.sender_actor or "", rec.message_id or ""))
        try:
            msg = self._message(root, rec.arrow, tenant, rec.payload)
        except (ValueError, AssertionError):
            return
        sender = self.sims.get(rec.sender_actor or "")
        if sender is not None:
            self._apply(sender, root, rec.arrow, tenant, rec.payload, "out", msg)
        receiver = self.sims.get(rec.receiver_actor or "")
        dropped = rec.note is not None and (" drop" in rec.note or "not delivered" in rec.note)
        if receiver is not None and not dropped:
            self._apply(receiver, root, rec.arrow, tenant, rec.payload, "in", msg)

    def _replay_event(self, rec: TraceRecord) -> None:
        ev = json.loads(rec.payload.decode("utf-8"))
        kind = ev.get("event")
        tid = rec.tenant
        if kind == "tenant.create":
            cal = OperatingCalendar(self.hours)
            self._install_tenant(Tenant(
                ev["tenant"], ev.get("name", ""), int(ev.get("seed", 0)),
                [Municipality(p["lg_code"], p["prefecture"], p["city"], p.get("postal_prefix", ""))
                 for p in ev.get("peers", [])], cal, bool(ev.get("enforce_hours", False))))
        elif kind == "tenant.delete" and tid is not None:
            self.delete_tenant(tid)
        elif kind == "seed":
            with contextlib.suppress(HarnessError):
                self.seed(tid, ev["actor"], ev["kind"], ev.get("args", {}))
        elif kind == "clock":
            clock = self.clocks.get(tid)
            if ev.get("frozen") and not clock.frozen:
                clock.freeze("replayed from the trace")
            clock.set(datetime.fromisoformat(ev["now"]), "replayed from the trace")
            if ev.get("frozen") is False and clock.frozen:
                clock.unfreeze("replayed from the trace")
        elif kind == "hours" and tid in self.tenants:
            maint = ev.get("maintenance")
            if ev.get("replace"):  # recorded since maintenance given = the whole list
                self.set_hours(tid, enforce=ev.get("enforce"), maintenance=maint)
            else:  # older traces: windows were added
                t = self.set_hours(tid, enforce=ev.get("enforce"))
                for m in maint or ():
                    t.calendar.add_maintenance(datetime.fromisoformat(str(m["start"])),
                                               datetime.fromisoformat(str(m["end"])), m.get("actors"))
        elif kind == "register" and tid is not None:
            for v in ev.get("values", ()):
                self.register(tid, v)
