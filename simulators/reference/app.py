"""The reference SUT's HTTP surfaces: POST /inbound, POST /counter, GET /contract, GET /health.

Why the surfaces refuse before they record: a malformed, invalid or misaddressed envelope is answered 400
with an ErrorReport and leaves no trace in the register (not even its MessageId), so the same message sent
again after a fix is processed normally. A valid message is applied and its MessageId remembered in one
transaction; a duplicate MessageId is answered as the first time (202, or the stored sync answer).

The edge is bounded like the gateway's (``simulators.edge``): header/body/idle timeouts and a connection
limit, bodies over ``MAX_BYTES`` refused with an ErrorReport ``XML-SIZE`` (413) before they are read, and a
large document validated in a worker thread so ``/health`` keeps answering while it is checked. With
``tls_cert``/``tls_key`` it serves HTTPS; with ``tls_client_ca`` too, the gateway must present a certificate.

Usage::

    async with ReferenceSut(RefConfig(...)) as sut:      # or: async with start_reference_sut(cfg) as sut
        sut.url, sut.inbound_url, sut.counter_url
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance.codec import result_el
from conformance.envelope import Header, J, body_of, build, error_report, header, read_header
from conformance.errors import Finding, HarnessError
from conformance.validate import Checked, Validator
from conformance.xmlsafe import MAX_BYTES, expensive, q
from simulators.edge import GuardedRunner
from simulators.reference import defects
from simulators.reference.config import RefConfig
from simulators.reference.core import Core
from simulators.reference.counter import OPERATIONS, OpResult, run_operation
from simulators.reference.inbound import INBOUND, SYNC_ANSWERS, on_answer
from simulators.reference.outbox import Outbox
from simulators.reference.store import Store

__all__ = ["CONTRACT_VERSION", "ReferenceSut", "counter_operations", "start_reference_sut"]

log = logging.getLogger("simulators.reference")
_XML = "application/xml; charset=utf-8"
CONTRACT_VERSION = catalogue_mod.default().counter_contract_version


def counter_operations() -> list[str]:
    """The CounterRequest operation elements this SUT implements (GET /contract)."""
    return list(OPERATIONS)


class ReferenceSut:
    """One running reference SUT: store, outbox worker and HTTP server on ``cfg.host:cfg.port``."""

    def __init__(self, cfg: RefConfig) -> None:
        self.cfg = cfg
        self.port = cfg.port
        self._runner: web.AppRunner | None = None
        self.store: Store | None = None
        self.outbox: Outbox | None = None
        self.core: Core | None = None
        self.validator = Validator()
        self._big_validator = Validator()  # used by one worker thread at a time (large documents)
        self._big_lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}

    # --- lifecycle ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
        return f"{'https' if self.cfg.tls_cert else 'http'}://{host}:{self.port}"

    @property
    def inbound_url(self) -> str:
        return f"{self.url}/inbound"

    @property
    def counter_url(self) -> str:
        return f"{self.url}/counter"

    def __str__(self) -> str:
        return self.url

    async def start(self) -> None:
        store = Store(self.cfg.db_path)
        outbox = Outbox(store, self.cfg)
        core = Core(self.cfg, store, outbox)
        outbox.on_answer = lambda msg, answer: on_answer(core, msg, answer)
        self.store, self.outbox, self.core = store, outbox, core
        app = web.Application(client_max_size=MAX_BYTES, middlewares=[self._too_large])
        app.router.add_post("/inbound", self._inbound)
        app.router.add_post("/counter", self._counter)
        app.router.add_get("/contract", self._contract)
        app.router.add_get("/health", self._health)
        runner = GuardedRunner(app, limits=self.cfg.limits, access_log=None, handle_signals=False)
        await runner.setup()
        ssl_ctx = None
        if self.cfg.tls_cert and self.cfg.tls_key:
            from simulators.config import tls_server_context

            ssl_ctx = tls_server_context(self.cfg.tls_cert, self.cfg.tls_key, self.cfg.tls_client_ca)
        site = web.TCPSite(runner, self.cfg.host, self.cfg.port, ssl_context=ssl_ctx, backlog=1024)
        await site.start()
        self._runner = runner
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                self.port = int(addr[1])
                break
        await outbox.start()  # resumes whatever a previous run left pending

    async def stop(self) -> None:
        if self.outbox is not None:
            await self.outbox.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- helpers ------------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.cfg.inbound_token}"

    def _error(self, status: int, findings: list[Finding], refused: Header | None) -> web.Response:
        """An ErrorReport envelope from this SUT to the refused message's sender (or to CS)."""
        assert self.core is not None
        to = (
            (refused.sender_actor, refused.sender_lg)
            if refused is not None and refused.sender_actor
            else ("cs", self.cfg.lg_code)
        )
        h = header(
            "ErrorReport",
            ("juki", self.cfg.lg_code),
            to,
            sent_at=self.core.now(),
            correlation_id=refused.message_id if refused is not None and refused.message_id else None,
        )
        body = build(h, error_report(findings, refused.message_id if refused is not None else None))
        return web.Response(status=status, body=body, content_type="application/xml", charset="utf-8")

    @web.middleware
    async def _too_large(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """413 as an ErrorReport with XML-SIZE (not aiohttp's plain text), before the body is read."""
        size = request.content_length
        if size is not None and size > MAX_BYTES:
            return self._too_large_answer(size)
        try:
            resp: web.StreamResponse = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return self._too_large_answer(None)
        except ConnectionResetError:  # the edge cut a slow body off: nothing to answer, nothing to log
            return web.Response(status=408)
        return resp

    def _too_large_answer(self, size: int | None) -> web.Response:
        what = f"{size} bytes" if size is not None else f"more than {MAX_BYTES} bytes"
        resp = self._error(413, [Finding("XML-SIZE", f"the document is {what}; the limit is {MAX_BYTES} "
                                         "bytes")], None)
        resp.force_close()  # the unread body is not drained: the connection ends with the answer
        return resp

    async def _check_async(self, data: bytes) -> tuple[Checked, Header | None]:
        """``_check``, in a worker thread when the document is large (the event loop keeps answering)."""
        if not expensive(data):
            return self._check(data)
        async with self._big_lock:
            return await asyncio.to_thread(self._check, data, self._big_validator)

    def _check(self, data: bytes, validator: Validator | None = None) -> tuple[Checked, Header | None]:
        checked = (validator or self.validator).check(data)
        h: Header | None = None
        if checked.root is not None:
            try:
                h = read_header(checked.root)
            except (ValueError, AssertionError, TypeError):
                h = None
        return checked, h

    # --- POST /inbound ------------------------------------------------------------------------------------
    async def _inbound(self, request: web.Request) -> web.Response:
        assert self.core is not None and self.store is not None
        if not self._authorised(request) and not defects.on(self.cfg, "inbound-no-auth"):
            return self._error(
                401, [Finding("SUT-AUTH", "missing or wrong credential (Authorization: Bearer)")], None
            )
        data = await request.read()
        checked, h = await self._check_async(data)
        if not checked.ok or h is None or checked.root is None:
            if defects.on(self.cfg, "accept-malformed"):
                return web.Response(status=202)
            findings = list(checked.findings) or [Finding("ENV-HEADER", "the envelope header cannot be read")]
            return self._error(400, findings, h)
        mtype = h.message_type
        handler = INBOUND.get(mtype)
        receiver_ok = h.receiver_lg == self.cfg.lg_code and (
            h.receiver_actor == "juki" or (h.receiver_actor == "counter" and mtype == "EApplication")
        )
        if not receiver_ok:
            return self._error(
                400,
                [
                    Finding(
                        "ENV-RECEIVER",
                        f"this is the existing system of {self.cfg.lg_code}; the message is addressed "
                        f"to {h.receiver_actor}/{h.receiver_lg}",
                        xpath="/j:Envelope/j:Header/j:Receiver",
                    )
                ],
                h,
            )
        if handler is None:
            return self._error(
                400,
                [
                    Finding(
                        "ENV-TYPE",
                        f"the existing system does not take {mtype}",
                        xpath="/j:Envelope/j:Header/j:MessageType",
                    )
                ],
                h,
            )
        seen = self.store.seen_get(h.message_id)
        if seen is not None and not defects.on(self.cfg, "reprocess-duplicate"):
            status, response = seen
            if response:
                return web.Response(
                    status=status, body=response, content_type="application/xml", charset="utf-8"
                )
            return web.Response(status=status)
        self.core.observe(h)
        body = body_of(checked.root)
        try:
            with self.store.tx():
                answer = handler(self.core, h, body)
                payload: bytes | None = None
                status = 202
                if mtype in SYNC_ANSWERS:
                    assert answer is not None
                    reply = h.reply(SYNC_ANSWERS[mtype], self.core.now(h.sent_at))
                    payload = build(reply, answer)
                    status = 200
                self.store.seen_put(h.message_id, mtype, status, payload)
        except HarnessError as e:
            return self._error(400, e.findings, h)
        self.outbox_kick()
        if payload is not None:
            return web.Response(status=status, body=payload, content_type="application/xml", charset="utf-8")
        return web.Response(status=status)

    def outbox_kick(self) -> None:
        if self.outbox is not None:
            self.outbox.kick()

    # --- POST /counter ------------------------------------------------------------------------------------
    async def _counter(self, request: web.Request) -> web.Response:
        assert self.core is not None and self.store is not None
        if not self._authorised(request) and not defects.on(self.cfg, "inbound-no-auth"):
            return self._error(
                401, [Finding("SUT-AUTH", "missing or wrong credential (Authorization: Bearer)")], None
            )
        data = await request.read()
        checked, h = await self._check_async(data)
        if not checked.ok or h is None or checked.root is None:
            findings = list(checked.findings) or [Finding("ENV-HEADER", "the envelope header cannot be read")]
            return self._error(400, findings, h)
        if h.message_type != "CounterRequest":
            return self._error(
                400,
                [
                    Finding(
                        "ENV-TYPE",
                        f"the counter adapter takes CounterRequest, not {h.message_type}",
                        xpath="/j:Envelope/j:Header/j:MessageType",
                    )
                ],
                h,
            )
        seen = self.store.seen_get(h.message_id)
        if seen is not None and seen[1]:
            return web.Response(status=seen[0], body=seen[1], content_type="application/xml", charset="utf-8")
        running = self._inflight.get(h.message_id)
        if running is not None:  # the same request again while staff still wait: one operation, one answer
            payload = await asyncio.shield(running)
            return web.Response(status=200, body=payload, content_type="application/xml", charset="utf-8")
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[h.message_id] = fut
        try:
            payload = await self._operate(h, body_of(checked.root))
            fut.set_result(payload)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: a waiting duplicate re-raises it, nobody else needs to
            raise
        finally:
            self._inflight.pop(h.message_id, None)
        return web.Response(status=200, body=payload, content_type="application/xml", charset="utf-8")

    async def _operate(self, h: Header, req: etree._Element) -> bytes:
        """Run one counter operation and build (and remember) its CounterResult envelope."""
        assert self.core is not None and self.store is not None
        self.core.observe(h)
        op_date = date.fromisoformat(req.findtext(q("OperationDate")) or h.business_date.isoformat())
        op = next(
            (
                c
                for c in req
                if isinstance(c.tag, str) and etree.QName(c).localname not in ("OperationDate", "Staff")
            ),
            None,
        )
        if op is None:
            res = OpResult(status="refused", code="COUNTER-NO-OP", detail="no operation element")
        else:
            try:
                res = await run_operation(self.core, op_date, op, h.message_id, h.sent_at)
            except HarnessError as e:
                f = e.findings[0] if e.findings else Finding("COUNTER-INPUT", str(e))
                res = OpResult(status="refused", code=f.code, detail=f.message)
        self.outbox_kick()
        out = J.CounterResult(
            result_el(res.status, res.code, res.detail), J.ReceiptNo(_receipt_no(self.store))
        )
        for d in res.documents:
            out.append(d)
        reply = h.reply("CounterResult", self.core.now(h.sent_at), business_date=op_date)
        payload = defects.rewrite(self.cfg, etree.QName(op).localname if op is not None else "", build(reply, out))
        self.store.seen_put(h.message_id, "CounterRequest", 200, payload)
        return payload

    # --- GET /contract, /health ---------------------------------------------------------------------------
    async def _contract(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "contract": CONTRACT_VERSION,
                "operations": counter_operations(),
                "lg_code": self.cfg.lg_code,
                "implementation": "juki-harness reference SUT",
            }
        )

    async def _health(self, request: web.Request) -> web.Response:
        pending = self.outbox.pending_count() if self.outbox is not None else 0
        return web.json_response({"ok": True, "lg_code": self.cfg.lg_code, "outbox_pending": pending})


def _receipt_no(store: Store) -> str:
    return f"U{store.next_number('receipt'):010d}"


@asynccontextmanager
async def start_reference_sut(cfg: RefConfig) -> AsyncIterator[ReferenceSut]:
    """Run a reference SUT for the duration of the block (``str(sut)`` is its base URL)."""
    async with ReferenceSut(cfg) as sut:
        yield sut
