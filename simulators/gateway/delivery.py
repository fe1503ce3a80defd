"""Delivery: bounded lanes per (receiver, tenant), in order, HTTP with retries, sync answers, raw deliveries.

Backpressure (issue 10 item 2): ``queued`` counts every delivery sitting in a lane (``queued_local`` those
to in-process simulators), ``intake`` every external message being taken in; external intake
(``IntakeMixin.admit``) waits while ``queued + intake`` is at ``lane_limit`` or ``queued_local + intake`` at
``local_limit`` (``base.LOCAL_LIMIT`` says why it is small), and answers 503 GW-BUSY when it stays there.
Relays (messages that simulators send while reacting) are never refused for lack of room: each accepted
message causes a bounded number of them, so the lanes stay bounded by ``lane_limit`` times that number, and
nothing accepted is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping

import aiohttp
from lxml import etree

from conformance.envelope import build, read_header
from conformance.errors import Finding, HarnessError
from conformance.record import TraceRecord
from conformance.xmlsafe import parse
from simulators.base import Simulator
from simulators.faults import Reorderer
from simulators.gateway.replay import ReplayMixin
from simulators.gateway.values import (
    MAX_STORED_ANSWER,
    SUT_ACTORS,
    XML_TYPE,
    Delivery,
    Outcome,
    Target,
    body_ids,
    finding,
    peek_header,
)
from simulators.toolbox import Refusal

log = logging.getLogger("juki.gateway")
_BATCH = 256


class DeliveryMixin(ReplayMixin):
    """Lanes, retries and answers."""

    def _schedule(self, d: Delivery) -> None:
        dec = d.decision
        items = [d, d] if dec.duplicate else [d]
        if dec.reorder:
            key = (d.tenant, d.arrow)
            r = self._reorderers.get(key)
            if r is None or r.window != dec.reorder:
                if r is not None:
                    for it in r.flush():
                        self._enqueue(it)
                r = self._reorderers[key] = Reorderer(dec.reorder)
            released: list[Delivery] = []
            for it in items:
                released.extend(r.push(it))
            if len(r):
                if key not in self._reorder_timers:
                    self._reorder_timers[key] = asyncio.get_running_loop().call_later(
                        self._reorder_flush_s, self._flush_reorder, key)
            else:
                timer = self._reorder_timers.pop(key, None)
                if timer is not None:
                    timer.cancel()
            items = released
        for it in items:
            self._enqueue(it)

    def _flush_reorder(self, key: tuple[str | None, int]) -> None:
        timer = self._reorder_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        r = self._reorderers.get(key)
        if r is not None:
            for it in r.flush():
                self._enqueue(it)

    def _enqueue(self, d: Delivery) -> None:
        key = (d.peek.receiver_actor or "", d.tenant)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
        lane.append(d)
        self.queued += 1
        if key[0] in self.sims:
            self.queued_local += 1
        if key not in self._lane_tasks:
            self._lane_tasks[key] = asyncio.create_task(self._run_lane(key, lane), name=f"lane-{key}")

    def has_room(self) -> bool:
        """Room for one more external message: all deliveries plus intake under ``lane_limit``, and those to
        in-process simulators plus intake under ``local_limit`` (see ``base.LOCAL_LIMIT``)."""
        return self.queued + self.intake < self.lane_limit and self.queued_local + self.intake < self.local_limit

    def _done(self, n: int, local: bool) -> None:
        """``n`` deliveries left their lane: wake intake waiting for room."""
        self.queued -= n
        if local:
            self.queued_local -= n
        if self.has_room():
            self._space.set()

    async def _run_lane(self, key: tuple[str, str | None], lane: deque[Delivery]) -> None:
        """Deliver a receiver's messages for one tenant in order.

        In-process simulators take a batch at a time concurrently: each ``react`` runs up to its first
        ``await`` in queue order, so what they send is submitted (and sequenced) in that order. HTTP targets
        take one message at a time, so a retried message holds back the ones after it (store-and-forward).
        """
        local = key[0] in self.sims
        try:
            while lane:
                if local:
                    batch = [lane.popleft() for _ in range(min(len(lane), _BATCH))]
                    try:
                        await asyncio.gather(*(self._deliver_local(d) for d in batch))
                    finally:
                        self._done(len(batch), True)
                else:
                    d = lane.popleft()
                    try:
                        await self._deliver_http(d)
                    finally:
                        self._done(1, False)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery lane %s failed", key)
        finally:
            self._lane_tasks.pop(key, None)
            if not lane:
                self._lanes.pop(key, None)
            elif not self._closing:  # restart for items added while failing
                self._lane_tasks[key] = asyncio.create_task(self._run_lane(key, lane))

    async def _react(self, d: Delivery) -> etree._Element | None:
        """apply(in) then react on the receiving simulator; may raise Refusal."""
        sim = self.sims[d.peek.receiver_actor or ""]
        msg = self._apply(sim, d.root, d.arrow, d.tenant, d.data, "in", d.msg, hdr=d.hdr)
        if msg is None:
            return None
        return await sim.react(msg)

    async def _deliver_local(self, d: Delivery) -> None:
        """An async delivery to an in-process simulator; a refusal or failure becomes a trace record."""
        try:
            await self._react(d)
        except Refusal as r:
            if d.record and not self._closing:
                await self._refused_by(d, [r.finding()])
        except Exception as exc:
            actor = d.peek.receiver_actor
            log.exception("%s.react failed on %s", actor, d.peek.message_id)
            if d.record and not self._closing:
                with contextlib.suppress(HarnessError):
                    await self._delivery_failed(d, [finding("GW-SIMULATOR", f"simulator {actor} failed: "
                                                            f"{exc!r}")], "simulator failure")

    async def _refused_by(self, d: Delivery, findings: list[Finding]) -> TraceRecord:
        """The receiving simulator refused the message: record it as refused with the simulator's finding."""
        p = d.peek
        return await self.store.append(
            kind="refused", verdict="refused", payload=d.data, tenant=d.tenant, arrow=d.arrow,
            sender_actor=p.sender_actor, sender_lg=p.sender_lg, receiver_actor=p.receiver_actor,
            receiver_lg=p.receiver_lg, message_type=d.mt.id, message_id=p.message_id,
            correlation_id=p.correlation_id, findings=findings,
            note=f"refused by simulator {p.receiver_actor}",
            virtual_time=self.now(d.tenant))

    async def _delivery_failed(self, d: Delivery, findings: list[Finding], note: str) -> TraceRecord:
        p = d.peek
        return await self.store.append(
            kind="delivery", verdict="failed", tenant=d.tenant, arrow=d.arrow, sender_actor=p.sender_actor,
            sender_lg=p.sender_lg, receiver_actor=p.receiver_actor, receiver_lg=p.receiver_lg,
            message_type=d.mt.id, message_id=p.message_id, correlation_id=p.correlation_id, findings=findings,
            note=note, virtual_time=self.now(d.tenant))

    def _target(self, receiver: str) -> Target | None:
        if receiver in SUT_ACTORS:
            return self.sut_target
        return self.targets.get(receiver)

    async def _post(self, target: Target, data: bytes, *, token: str | None = None,
                    headers: Mapping[str, str] | None = None, timeout: float | None = None) -> tuple[int, bytes]:
        assert self.http is not None, "gateway not started"
        hdrs = {"Authorization": f"Bearer {token or target.token}", "Content-Type": XML_TYPE, **(headers or {})}
        limit = aiohttp.ClientTimeout(total=timeout) if timeout is not None else None
        async with self.http.post(target.url, data=data, headers=hdrs, ssl=target.ssl or True,
                                  timeout=limit) as resp:
            return resp.status, await resp.read()

    async def _record_attempt(self, d: Delivery, attempt: int, attempts: int, status: int | None,
                              answer: bytes, error: str | None, elapsed: float, giving_up: bool) -> None:
        ok = status is not None and status < 300
        what = f"HTTP {status}" if status is not None else f"error {error}"
        note = f"attempt {attempt}/{attempts}: {what} in {elapsed * 1000:.1f} ms"
        if giving_up and not ok:
            note += "; giving up"
        await self.store.append(
            kind="delivery", verdict="delivered" if ok else "failed", payload=answer[:MAX_STORED_ANSWER],
            tenant=d.tenant, arrow=d.arrow, sender_actor=d.peek.sender_actor, sender_lg=d.peek.sender_lg,
            receiver_actor=d.peek.receiver_actor, receiver_lg=d.peek.receiver_lg, message_type=d.mt.id,
            message_id=d.peek.message_id, correlation_id=d.peek.correlation_id, note=note,
            virtual_time=self.now(d.tenant))

    async def _post_with_retries(self, d: Delivery, target: Target, *, once: bool = False
                                 ) -> tuple[int | None, bytes]:
        """POST the exact bytes (same MessageId) until 2xx/4xx or attempts run out; record every attempt.

        ``once``: a counter request — one attempt with the longer counter time limit, never resent."""
        if d.decision.latency_s:
            await asyncio.sleep(d.decision.latency_s)  # a slow link to the SUT or a real actor
        cfg = self.config.gateway.delivery
        attempts = 1 if once else cfg.attempts
        timeout = cfg.counter_timeout_seconds if once else None
        status: int | None = None
        answer = b""
        for attempt in range(1, attempts + 1):
            t0 = time.perf_counter()
            error = None
            try:
                status, answer = await self._post(target, d.data, timeout=timeout)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, answer, error = None, b"", f"{type(exc).__name__}: {exc}"
            retry = status is None or status >= 500 or status in (408, 429)
            last = attempt == attempts or not retry or self._closing
            await self._record_attempt(d, attempt, attempts, status, answer, error,
                                       time.perf_counter() - t0, last)
            if last:
                break
            await asyncio.sleep(min(cfg.backoff_seconds * 2 ** (attempt - 1), cfg.max_backoff_seconds))
        return status, answer

    async def _deliver_http(self, d: Delivery) -> None:
        target = self._target(d.peek.receiver_actor or "")
        if target is not None:
            await self._post_with_retries(d, target)

    async def _sync(self, d: Delivery) -> Outcome:
        """Forward a sync request; validate and record the answer on the response arrow; return it."""
        receiver = d.peek.receiver_actor or ""
        mid = d.peek.message_id
        sim = self.sims.get(receiver)
        if d.decision.latency_s:
            await asyncio.sleep(d.decision.latency_s)
        if sim is not None:
            try:
                body = await self._react(d)
            except Refusal as r:
                fs = [r.finding()]
                await self._refused_by(d, fs)
                return Outcome(400, mid, fs, self.error_envelope(fs, d.peek, d.tenant))
            except Exception as exc:
                log.exception("%s.react failed on %s", receiver, mid)
                return await self._sync_failed(d, 502, "GW-SIMULATOR",
                                               f"simulator {receiver} failed: {exc!r}")
            if body is None:  # issue 13: e.g. CertificateDataRequest juki -> certserver (it goes the other way)
                sender = d.peek.sender_actor or "?"
                return await self._sync_failed(d, 404, "GW-NOT-TAKEN",
                                               f"{receiver} takes no {d.mt.id} from {sender}: on arrow {d.arrow} "
                                               f"a {d.mt.id} travels from {receiver} to {sender} (it asks, "
                                               f"{sender} answers)")
            req = read_header(d.root)
            answer = build(req.reply(d.mt.response or "", self.now(d.tenant)), body)
        else:
            target = self._target(receiver)
            if target is None:
                return await self._sync_failed(d, 503, "GW-DOWN", f"no route to {receiver}")
            status, answer = await self._post_with_retries(d, target)
            if status is None:
                return await self._sync_failed(d, 503, "GW-DOWN", f"{receiver} cannot be reached")
            if status != 200:
                return Outcome(status, mid, [finding("GW-ANSWER", f"{receiver} answered HTTP {status}")],
                               answer)
        return await self._record_answer(d, answer, sim)

    async def _sync_failed(self, d: Delivery, status: int, code: str, message: str) -> Outcome:
        fs = [finding(code, message)]
        await self._delivery_failed(d, fs, f"HTTP {status}")
        return Outcome(status, d.peek.message_id, fs, self.error_envelope(fs, d.peek, d.tenant))

    async def _record_answer(self, d: Delivery, answer: bytes, responder: Simulator | None,
                             arrow: int | None = None) -> Outcome:
        checked = await self.check(answer)
        root: etree._Element | None = checked.root
        p = peek_header(root)
        findings = list(checked.findings)
        expected = d.mt.response
        if p is not None and expected and p.message_type != expected:
            findings.append(finding("GW-RESPONSE", f"a {d.mt.id} is answered by {expected}, not "
                                    f"{p.message_type}", "/j:Envelope/j:Header/j:MessageType"))
        if p is not None and p.correlation_id != d.peek.message_id:
            findings.append(finding("GW-RESPONSE", "the answer's CorrelationId must be the request's "
                                    f"MessageId {d.peek.message_id}", "/j:Envelope/j:Header/j:CorrelationId"))
        ok = root is not None and p is not None and not findings
        resp_arrow = arrow if arrow is not None else d.mt.response_arrows.get(d.arrow)
        tenant = d.tenant
        ids: list[str] = body_ids(root) if root is not None else []
        rec = await self.store.append(
            kind="response", verdict="accepted" if ok else "refused", payload=answer, tenant=tenant,
            arrow=resp_arrow, sender_actor=p.sender_actor if p else d.peek.receiver_actor,
            sender_lg=p.sender_lg if p else d.peek.receiver_lg,
            receiver_actor=p.receiver_actor if p else d.peek.sender_actor,
            receiver_lg=p.receiver_lg if p else d.peek.sender_lg,
            message_type=p.message_type if p else expected, message_id=p.message_id if p else None,
            correlation_id=p.correlation_id if p else d.peek.message_id, findings=findings,
            virtual_time=self.now(tenant))
        self._remember(rec, tenant, p, ids)
        if not ok or root is None:
            return Outcome(502, d.peek.message_id, findings, answer, seq=rec.seq)
        msg = self._message(root, resp_arrow, tenant, answer)
        if responder is not None:
            self._apply(responder, root, resp_arrow, tenant, answer, "out", msg)
        requester = self.sims.get(d.peek.sender_actor or "")
        if requester is not None:
            self._apply(requester, root, resp_arrow, tenant, answer, "in", msg)
        return Outcome(200, d.peek.message_id, [], answer, msg, seq=rec.seq)

    async def deliver_raw(self, tenant: str | None, data: bytes, token: str | None = None
                          ) -> tuple[int, bytes]:
        """Bytes straight to the SUT's inbound endpoint (robustness scenarios), recorded as a delivery."""
        t0 = time.perf_counter()
        try:
            status, answer = await self._post(self.sut_target, data, token=token)
            note = f"deliver-raw: HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            status, answer, note = 503, b"", f"deliver-raw: error {type(exc).__name__}: {exc}"
        note += f" in {(time.perf_counter() - t0) * 1000:.1f} ms"
        peek = None
        with contextlib.suppress(HarnessError):
            peek = peek_header(parse(data))
        await self.store.append(
            kind="delivery", verdict="delivered" if status < 300 else "failed", payload=data, tenant=tenant,
            sender_actor=peek.sender_actor if peek else None, receiver_actor="juki",
            message_type=peek.message_type if peek else None, message_id=peek.message_id if peek else None,
            note=note, virtual_time=self.now(tenant))
        return status, answer

    async def direct(self, actor: str, data: bytes) -> tuple[int, bytes]:
        """Benchmark baseline: hardened parse and the simulator, no validation, no trace, no faults."""
        sim = self.sims.get(actor)
        if sim is None:
            return 404, b""
        root = parse(data)
        peek = peek_header(root)
        if peek is None:
            return 400, b""
        mt = self.catalogue.message_types.get(peek.message_type or "")
        if mt is None:
            return 400, b""
        tenant, _ = self._attribute(peek, root)
        arrow = self.catalogue.resolve_arrow(peek.sender_actor or "", peek.receiver_actor or "", mt.id) or 0
        d = Delivery(data, root, peek, arrow, tenant, mt, 0, record=False)
        if mt.mode == "sync":
            try:
                body = await self._react(d)
            except Refusal:
                return 400, b""
            if body is None:
                return 502, b""
            return 200, build(read_header(root).reply(mt.response or "", self.now(None)), body)
        self._enqueue(d)
        return 202, b""
