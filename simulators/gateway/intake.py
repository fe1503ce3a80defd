"""Intake: authenticate, parse, validate, resolve the arrow, refuse or record — every message's way in.

Per message (``submit``)::

    credential -> 401 GW-AUTH       Sender@actor not the credential's -> 403 GW-SENDER
    lanes full (HTTP intake only) -> waits briefly, then 503 GW-BUSY + Retry-After (nothing recorded)
    parse + XSD + rules -> 400      unknown type -> 400      no arrow -> 404 GW-NO-ARROW
    receiver down (fault downtime, maintenance, hours when the tenant enforces them) -> 503 GW-DOWN
    fault error -> its status       otherwise: trace.append(...) returns once durable, then
      async: 202, delivery in the background (simulators.gateway.delivery)
      sync:  forwarded, the answer validated and recorded on the response arrow, 200 + answer

Every refusal goes through ``refuse`` (the ONE place refusals are recorded) and is answered with an
ErrorReport envelope. Documents that ``conformance.xmlsafe.expensive`` flags are validated in a worker thread
(at most ``OFFLOOP_WORKERS`` at a time) so one huge envelope does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from lxml import etree

from conformance.envelope import body_of, envelope, header, rehead, serialise
from conformance.errors import Finding
from conformance.identifiers import is_valid_lg_code
from conformance.validate import Checked
from conformance.xmlsafe import MAX_BYTES, reparse, too_deep
from simulators.base import Message, SendResult
from simulators.clock import JUKI_NET_ACTORS, KIOSK_ACTORS
from simulators.edge import REQUEST_BODY, REQUEST_SOURCE, RefusalLimiter, refusal_note
from simulators.faults import Decision
from simulators.gateway.auth import Principal, of_actors, simulated
from simulators.gateway.delivery import DeliveryMixin
from simulators.gateway.values import (
    COUNTER_OPS,
    NO_PEEK,
    SUT_ACTORS,
    Delivery,
    Outcome,
    Peek,
    body_ids,
    finding,
    peek_checked,
    peek_header,
)


class IntakeMixin(DeliveryMixin):
    """``submit`` (HTTP and control API), ``send`` (in-process simulators), ``counter``, refusals."""

    async def send(self, *, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                   body: etree._Element, tenant: str | None, correlation_id: str | None = None,
                   business_date: date | None = None) -> SendResult:
        """A simulated actor sends a message: same validation and trace path as any message, in process."""
        out = await self.send_outcome(sender=sender, receiver=receiver, message_type=message_type, body=body,
                                      tenant=tenant, correlation_id=correlation_id,
                                      business_date=business_date)
        return out.send_result()

    async def send_outcome(self, *, sender: tuple[str, str], receiver: tuple[str, str],
                           message_type: str, body: etree._Element, tenant: str | None,
                           correlation_id: str | None = None, business_date: date | None = None) -> Outcome:
        """``send`` with the full outcome (the ErrorReport bytes of a refusal, too)."""
        now = self.now(tenant)
        h = header(message_type, sender, receiver, sent_at=now, business_date=business_date or now.date(),
                   correlation_id=correlation_id)
        principal = self._simulated(sender[0])
        root = envelope(h, body)
        data = serialise(root)
        checked = self._check_built(root, data)
        if checked is None:  # anything but a clean pass: the bytes take the HTTP path (findings with lines)
            out = await self.submit(data, principal=principal, tenant=tenant, origin="sim")
        else:
            out = await self._process(checked, data, principal, tenant)
        out.message_id = out.message_id or h.message_id
        return out

    def _simulated(self, actor: str) -> Principal:
        principal = self._principals.get(actor)
        if principal is None:
            principal = self._principals[actor] = simulated(actor)
        return principal

    async def relay(self, msg: Message, *, sender: tuple[str, str], receiver: tuple[str, str],
                    correlation_id: str | None = None) -> SendResult:
        """A simulator passes ``msg``'s body on unchanged (the CS relaying to the prefecture, a peer …).

        Why not ``send``: the body was parsed, validated and accepted with ``msg``. When the relay's arrow
        carries the same data class, no check of that body can come out differently, so its bytes are kept,
        the new header is written before them (``envelope.rehead``) and the result is parsed once — instead
        of copying the tree, building, serialising and validating the whole envelope again (about a fifth
        of a relayed message's CPU). The relay is then recorded and delivered like any message. Anything
        else (another data class, bytes not as ``build`` writes them) takes ``send``.
        """
        fast = self._reheaded(msg, sender, receiver, correlation_id)
        if fast is None:
            return await self.send(sender=sender, receiver=receiver, message_type=msg.header.message_type,
                                   body=copy.deepcopy(msg.body), tenant=msg.tenant, correlation_id=correlation_id)
        checked, data, mid = fast
        out = await self._process(checked, data, self._simulated(sender[0]), msg.tenant)
        out.message_id = out.message_id or mid
        return out.send_result()

    def _reheaded(self, msg: Message, sender: tuple[str, str], receiver: tuple[str, str],
                  correlation_id: str | None) -> tuple[Checked, bytes, str] | None:
        """The relay of ``msg`` as a ``Checked`` and its bytes, when its body's checks carry over (see
        ``relay``); None otherwise."""
        cat = self.catalogue
        typ = msg.header.message_type
        arrow = cat.resolve_arrow(sender[0], receiver[0], typ)
        src = cat.arrows.get(msg.arrow) if msg.arrow is not None else None
        dst = cat.arrows.get(arrow) if arrow is not None else None
        if not msg.raw or src is None or dst is None or src.data_class != dst.data_class \
                or not is_valid_lg_code(sender[1]) or not is_valid_lg_code(receiver[1]):
            return None
        now = self.now(msg.tenant)
        h = header(typ, sender, receiver, sent_at=now, business_date=now.date(), correlation_id=correlation_id)
        data = rehead(msg.raw, h)
        if data is None or len(data) > MAX_BYTES:
            return None
        try:
            root = reparse(data)
        except etree.XMLSyntaxError:
            return None
        hdr: dict[str, str | None] = {
            "message_id": h.message_id, "correlation_id": h.correlation_id, "message_type": typ,
            "sender_actor": sender[0], "sender_lg": sender[1], "receiver_actor": receiver[0],
            "receiver_lg": receiver[1], "sent_at": h.sent_at.isoformat(timespec="seconds"),
            "business_date": h.business_date.isoformat(), "retry_reason": None}
        checked = Checked(root, hdr, arrow, [], True, cat.message_types[typ], dst.data_class)
        return checked, data, h.message_id

    def _check_built(self, root: etree._Element, data: bytes) -> Any:
        """Validate an envelope a simulator built, as built: ``data`` must be its serialisation.

        The tree is what parsing ``data`` would give, so XSD and rules see the same document without the
        parse; the hardened parser's limits are checked on it (size, depth). Returns the ``Checked`` only
        when it is ok and nothing differs from a parse (no processing instruction or entity node);
        otherwise None, and the caller submits the bytes, so a refusal reads exactly as over HTTP.
        """
        check_element = getattr(self.validator, "check_element", None)
        if check_element is None or len(data) > MAX_BYTES or too_deep(root, data=data) is not None:
            return None
        if next(root.iter(etree.ProcessingInstruction, etree.Entity), None) is not None:
            return None
        checked = check_element(root, raw=data)
        return checked if checked.ok else None

    async def admit(self) -> bool:
        """Backpressure for external intake: room (``has_room``), waiting up to ``busy_wait_s`` for it.
        True = admitted (call ``_leave`` after)."""
        if self.has_room():
            self.intake += 1
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_wait_s
        while not self.has_room():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), left)
            except TimeoutError:
                return False
        self.intake += 1
        return True

    def _leave(self) -> None:
        self.intake -= 1
        if self.has_room():
            self._space.set()

    async def submit(self, data: bytes, *, actors: frozenset[str] | None = None,
                     principal: Principal | None = None, tenant: str | None = None,
                     origin: str = "http") -> Outcome:
        """Authenticate, validate, record and deliver one envelope.

        ``principal`` (or the bare ``actors`` a credential may send as) is who sent it; neither = no or an
        unknown credential. ``origin`` "http" is external intake and meets backpressure."""
        if principal is None and actors is not None:
            principal = of_actors(actors)
        if principal is None:
            fs = [finding("GW-AUTH", "missing or unknown credential (Authorization: Bearer <token>)")]
            return await self.refuse(401, fs, data, None, tenant=tenant)
        if origin != "http":
            return await self._process(await self.check(data), data, principal, tenant)
        if not await self.admit():
            self.busy += 1
            fs = [finding("GW-BUSY", f"{self.queued} deliveries queued ({self.queued_local} to simulators), "
                          f"{self.intake} messages being taken in (limits {self.lane_limit}, {self.local_limit} "
                          "with simulators): retry later")]
            return Outcome(503, None, fs, self.error_envelope(fs, None, tenant), retry_after=1)
        try:
            return await self._process(await self.check(data), data, principal, tenant)
        finally:
            self._leave()

    async def _process(self, checked: Any, data: bytes, principal: Principal,
                       tenant: str | None) -> Outcome:
        """``submit`` once the document is checked (parsed from ``data``, or built in process as ``data``)."""
        root: etree._Element | None = checked.root
        peek = peek_checked(checked)
        if peek is not None and (checked.ok or peek.sender_actor is not None):  # unreadable header: 400 below
            why = principal.refusal(peek)
            if why is not None:
                return await self.refuse(403, [why], data, peek, tenant=tenant)
        if root is None or peek is None:
            fs = list(checked.findings) or [finding("XML-SYNTAX", "not an envelope")]
            return await self.refuse(400, fs, data, peek, tenant=tenant)
        mtype = peek.message_type or ""
        mt = self.catalogue.message_types.get(mtype)
        if mt is None:
            fs = list(checked.findings) or [finding(
                "ENV-TYPE", f"unknown message type {mtype!r}", "/j:Envelope/j:Header/j:MessageType")]
            return await self.refuse(400, fs, data, peek, tenant=tenant)
        arrow = self.catalogue.resolve_arrow(peek.sender_actor or "", peek.receiver_actor or "", mtype)
        if arrow is None or mt.mode == "response":
            why_ = ("a response type travels only in the HTTP answer to its request" if mt.mode == "response"
                    else f"no arrow of the catalogue carries {mtype} from {peek.sender_actor} to "
                    f"{peek.receiver_actor}")
            return await self.refuse(404, [finding("GW-NO-ARROW", why_, "/j:Envelope/j:Header")], data, peek,
                                     tenant=tenant)
        denied = principal.arrow_refusal(arrow)
        if denied is not None:
            return await self.refuse(403, [denied], data, peek, arrow=arrow, tenant=tenant)
        if not checked.ok:
            return await self.refuse(400, list(checked.findings), data, peek, arrow=arrow, tenant=tenant)
        if tenant is None:
            tenant, ids = self._attribute(peek, root)
        else:
            ids = body_ids(root)
        receiver = peek.receiver_actor or ""
        now = self.now(tenant)
        decision = self.faults.decide(arrow=arrow, actor=receiver, message_type=mtype, tenant=tenant, now=now)
        down = self._down(receiver, tenant, now, decision)
        if down is not None:
            return await self.refuse(503, [finding("GW-DOWN", down)], data, peek, arrow=arrow,
                                     tenant=tenant, ids=ids)
        if decision.error is not None:
            e = decision.error
            return await self.refuse(e.status, [finding(e.code or "GW-FAULT", e.message or
                                     f"fault injected by rule(s) {', '.join(decision.rules)}")],
                                     data, peek, arrow=arrow, tenant=tenant, ids=ids)
        dup = (peek.sender_actor or "", peek.message_id or "")
        seen = mt.mode == "async" and dup in self._accepted_ids
        note = None
        if decision.rules:
            note = "fault " + ",".join(decision.rules) + (" drop" if decision.drop else "")
        if seen:
            note = (note + "; " if note else "") + "duplicate MessageId: recorded, not delivered again"
        rec = await self.store.append(
            kind="message", verdict="accepted", payload=data, tenant=tenant, arrow=arrow,
            sender_actor=peek.sender_actor, sender_lg=peek.sender_lg, receiver_actor=receiver,
            receiver_lg=peek.receiver_lg, message_type=mtype, message_id=peek.message_id,
            correlation_id=peek.correlation_id, note=note, virtual_time=now)
        if not seen:
            self._accepted_ids.add(dup)
        self.accepted[arrow] = self.accepted.get(arrow, 0) + 1
        self._remember(rec, tenant, peek, ids)
        hdr = checked.header
        sender_sim = self.sims.get(peek.sender_actor or "")
        msg: Message | None = None
        if sender_sim is not None or receiver in self.sims:
            try:
                msg = self._message(root, arrow, tenant, data, hdr)
            except Exception:  # _apply logs what a bad header does
                msg = None
        if sender_sim is not None:
            self._apply(sender_sim, root, arrow, tenant, data, "out", msg, hdr=hdr)
        d = Delivery(data, root, peek, arrow, tenant, mt, rec.seq, decision, hdr=hdr, msg=msg)
        if mt.mode == "sync":
            return await self._sync(d)
        if decision.latency_s and receiver not in SUT_ACTORS and receiver not in self.targets:
            await asyncio.sleep(decision.latency_s)  # a slow simulator is slow to acknowledge
        if not seen and not decision.drop and receiver != "resident":
            self._schedule(d)
        return Outcome(202, peek.message_id, seq=rec.seq)

    def _down(self, receiver: str, tenant: str | None, now: datetime, decision: Decision) -> str | None:
        if decision.down:
            return f"{receiver} is down (fault rule(s) {', '.join(decision.rules)})"
        if receiver not in SUT_ACTORS and receiver not in self.sims and receiver not in self.targets \
                and receiver != "resident":
            return f"no simulator or URL is configured for actor {receiver!r}"
        t = self.tenants.get(tenant) if tenant is not None else None
        enforce = t.enforce_hours if t is not None else self.config.gateway.enforce_hours
        if not enforce:
            return None
        cal = t.calendar if t is not None else self.calendar
        if receiver in JUKI_NET_ACTORS:
            ok, what = cal.juki_net_open(now), "Juki-Net is closed (operating hours or maintenance)"
        elif receiver in KIOSK_ACTORS:
            ok, what = cal.kiosk_open(now), "convenience-store issuance is closed (hours or maintenance)"
        else:
            ok, what = not cal.in_maintenance(now, receiver), f"{receiver} is in a maintenance window"
        return None if ok else f"{what} at {now.isoformat()}"

    async def refuse(self, status: int, findings: list[Finding], data: bytes, peek: Peek | None, *,
                     arrow: int | None = None, tenant: str | None = None, ids: Iterable[str] = ()) -> Outcome:
        """THE place a refusal of the gateway is recorded (kind ``refused``) and answered (ErrorReport).

        Issue 13: a refusal for want of a credential or of a right to send (401, 403) costs nothing durable:
        its record keeps source, size and SHA-256 but not the payload, and a source gets only
        ``limits.refusals_per_minute`` such records a minute — beyond that 429 ``GW-RATE`` + Retry-After."""
        mid = peek.message_id if peek is not None else None
        note = f"HTTP {status}"
        payload = data
        source = REQUEST_SOURCE.get()
        if status in (401, 403) and source is not None:
            lim = self.__dict__.get("_refusal_limiter")
            if lim is None:
                lim = self.__dict__["_refusal_limiter"] = RefusalLimiter(
                    self.config.gateway.limits.refusals_per_minute)
            ok, suppressed, retry = lim.allow(source)
            if not ok:
                fs = [finding("GW-RATE", f"too many refused requests from {source}: retry in {int(retry)} s")]
                return Outcome(429, mid, fs, self.error_envelope(fs, peek, tenant), retry_after=int(retry))
            body = REQUEST_BODY.get()
            size, digest = (body.size, body.sha256) if body is not None else (
                len(data), hashlib.sha256(data).hexdigest())
            payload, note = b"", refusal_note(status, source, size, digest, suppressed)
        if tenant is None and peek is not None:
            tenant = self._tenant_of_refused(peek)
        p = peek or NO_PEEK
        rec = await self.store.append(
            kind="refused", verdict="refused", payload=payload, tenant=tenant, arrow=arrow,
            sender_actor=p.sender_actor, sender_lg=p.sender_lg, receiver_actor=p.receiver_actor,
            receiver_lg=p.receiver_lg, message_type=p.message_type, message_id=mid,
            correlation_id=p.correlation_id, findings=findings, note=note,
            virtual_time=self.now(tenant))
        if tenant is None:
            self._remember(rec, None, None, ids)
        return Outcome(status, mid, findings, self.error_envelope(findings, peek, tenant), seq=rec.seq)

    async def counter(self, data: bytes, tenant: str | None) -> Outcome:
        """The harness's counter operation: record on the op's ``in`` arrow, forward, record ``out``."""
        checked = await self.check(data)
        root: etree._Element | None = checked.root
        peek = peek_header(root)
        if root is None or peek is None or not checked.ok:
            fs = list(checked.findings) or [finding("XML-SYNTAX", "not an envelope")]
            return await self.refuse(400, fs, data, peek, tenant=tenant)
        route = (peek.message_type, peek.sender_actor, peek.receiver_actor)
        if route != ("CounterRequest", "counter", "juki"):
            return await self.refuse(404, [finding("GW-NO-ARROW", "/counter takes a CounterRequest from "
                                                   "counter to juki")], data, peek, tenant=tenant)
        body = body_of(root)
        op_el = next((c for c in body if isinstance(c.tag, str) and etree.QName(c).localname in COUNTER_OPS),
                     None)
        op = self.catalogue.counter_operations.get(COUNTER_OPS[etree.QName(op_el).localname]) \
            if op_el is not None else None
        if op is None:
            return await self.refuse(400, [finding("ENV-COUNTER-OP", "no known operation element in the "
                                                   "CounterRequest")], data, peek, tenant=tenant)
        ids = body_ids(root)
        rec = await self.store.append(
            kind="message", verdict="accepted", payload=data, tenant=tenant, arrow=op.arrow_in,
            sender_actor="counter", sender_lg=peek.sender_lg, receiver_actor="juki",
            receiver_lg=peek.receiver_lg,
            message_type="CounterRequest", message_id=peek.message_id, correlation_id=peek.correlation_id,
            note=f"counter operation {op.op}", virtual_time=self.now(tenant))
        self._remember(rec, tenant, peek, ids)
        mt = self.catalogue.message_types["CounterRequest"]
        d = Delivery(data, root, peek, op.arrow_in, tenant, mt, rec.seq)
        status, answer = await self._post_with_retries(d, self.counter_target, once=True)
        if status is None:
            return await self._sync_failed(d, 503, "GW-DOWN", "the SUT's counter adapter cannot be reached")
        if status != 200:
            return Outcome(status, peek.message_id, [finding("GW-ANSWER", f"the counter adapter answered "
                                                             f"HTTP {status}")], answer)
        return await self._record_answer(d, answer, None, op.arrow_out)
