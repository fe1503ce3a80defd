"""A small stand-in gateway for testing the reference SUT over real HTTP on loopback, and request builders.

Why not the real gateway: the reference SUT's own tests must isolate the SUT (its order, retries, restart
and content) from the simulators; the defect self-test and vendors' smoke tests can reuse this too.
:class:`FakeGateway` validates every message the SUT sends with the project's Validator (schema, rules,
arrow), records it, answers sync types with a friendly world (cards issued, notices accepted), and answers
number and code requests asynchronously by POSTing to the SUT's ``/inbound`` as the real CS would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

import aiohttp
from aiohttp import web
from lxml import etree

from conformance.codec import address_el, foreign_el, honseki_el, jdate_el, name_el
from conformance.envelope import Header, J, body_of, build, error_report, header, read_header
from conformance.errors import Finding
from conformance.identifiers import make_my_number
from conformance.model import JDate, Resident
from conformance.validate import Validator
from conformance.xmlsafe import NS, parse, q
from simulators.clock import JST

__all__ = [
    "E",
    "FakeGateway",
    "Received",
    "counter_request",
    "documents",
    "items",
    "members",
    "official_record",
    "person_el",
    "text",
]

START = datetime(2026, 3, 30, 10, 0, tzinfo=JST)
_NSMAP: dict[Any, str] = {None: NS}


@dataclass(slots=True)
class Received:
    """One message the SUT sent to the gateway, as received (with the gateway's answer status)."""

    header: Header
    body: etree._Element
    raw: bytes
    arrow: int | None
    status: int

    @property
    def type(self) -> str:
        return self.header.message_type


Answer = Callable[["FakeGateway", Received], etree._Element | None]
Reaction = Callable[["FakeGateway", Received], Coroutine[Any, Any, None]]


class TypedMaker:
    """:data:`conformance.envelope.J` with the element type known to mypy (tests build many bodies)."""

    def __getattr__(self, tag: str) -> Callable[..., etree._Element]:
        return cast(Callable[..., etree._Element], getattr(J, tag))

    def __call__(self, tag: str, *children: Any, **attrib: str) -> etree._Element:
        return cast(etree._Element, J(tag, *children, **attrib))


E = TypedMaker()
"""Typed element factory: ``E.CopyRequest(E.JuminhyoCode(...))`` returns ``etree._Element``."""


def text(el: etree._Element | None, path: str) -> str | None:
    """Text at a '/'-separated path of local names (None if absent)."""
    cur = el
    for part in path.split("/"):
        if cur is None:
            return None
        cur = cur.find(q(part))
    return None if cur is None else (cur.text or "")


def _new_my_number() -> str:
    return make_my_number("".join(secrets.choice(string.digits) for _ in range(11)))


def _alnum(n: int) -> str:
    return "".join(secrets.choice(string.digits + string.ascii_uppercase) for _ in range(n))


def _result(status: str = "accepted", code: str | None = None) -> etree._Element:
    res: etree._Element = J.Result(J.Status(status))
    if code:
        res.append(J.Code(code))
    return res


def _card_issued(gw: FakeGateway, m: Received) -> etree._Element:
    out: etree._Element = J.CardIssuanceResult(
        J.ApplicationNo(text(m.body, "ApplicationNo") or "A"),
        _result(),
        J.CardNo("C" + _alnum(11)),
        J.CertSerial(secrets.token_hex(16).upper()),
        J.ValidUntil("2036-03-30"),
    )
    return out


def _card_verified(gw: FakeGateway, m: Received) -> etree._Element:
    out: etree._Element = J.CardVerificationResult(
        J.VerificationNo(text(m.body, "VerificationNo") or "V"), _result(), J.Valid("true")
    )
    return out


def _card_status(gw: FakeGateway, m: Received) -> etree._Element:
    out: etree._Element = J.CardStatusResult(
        J.ChangeNo(text(m.body, "ChangeNo") or "S"),
        _result(),
        J.CardNo(text(m.body, "CardNo") or "C00000000000"),
        J.Status(text(m.body, "NewStatus") or "廃止"),
    )
    return out


def _municipal(gw: FakeGateway, m: Received) -> etree._Element:
    out: etree._Element = J.MunicipalNoticeResult(J.NoticeNo(text(m.body, "NoticeNo") or "N"), _result())
    return out


def _identity_query(gw: FakeGateway, m: Received) -> etree._Element:
    out: etree._Element = J.IdentityQueryResult(
        J.QueryNo(text(m.body, "QueryNo") or "Q"), _result("not-found", "NOT-FOUND")
    )
    return out


async def _designate(gw: FakeGateway, m: Received) -> None:
    body = J.NumberToDesignate(
        J.RequestNo(text(m.body, "RequestNo") or "G"),
        J.JuminhyoCode(text(m.body, "Identity/JuminhyoCode") or ""),
        J.MyNumber(_new_my_number()),
    )
    await gw.deliver("NumberToDesignate", body, correlation_id=m.header.message_id)


async def _code_result(gw: FakeGateway, m: Received) -> None:
    body = J.ResidentCodeChangeResult(
        J.RequestNo(text(m.body, "RequestNo") or "J"),
        _result(),
        J.NewJuminhyoCode(text(m.body, "NewJuminhyoCode") or ""),
    )
    await gw.deliver("ResidentCodeChangeResult", body, correlation_id=m.header.message_id)


class FakeGateway:
    """POST /msg on 127.0.0.1 that records, validates and answers what the reference SUT sends."""

    def __init__(
        self, *, lg_code: str = "131016", sut_token: str = "sut-secret", gateway_token: str = "gateway-secret"
    ) -> None:
        self.lg_code = lg_code
        self.sut_token = sut_token
        self.gateway_token = gateway_token
        self.validator = Validator()
        self.received: list[Received] = []
        self.invalid: list[tuple[bytes, list[Finding]]] = []
        self.attempts: list[Header] = []  # every POST that carried a readable header, accepted or not
        self.down = False
        self.refuse_types: set[str] = set()
        self.answers: dict[str, Answer] = {
            "CardIssuanceRequest": _card_issued,
            "CardVerificationRequest": _card_verified,
            "CardStatusChange": _card_status,
            "MunicipalNotice": _municipal,
            "IdentityQuery": _identity_query,
        }
        self.reactions: dict[str, Reaction] = {
            "NumberGenerationRequest": _designate,
            "ResidentCodeChange": _code_result,
        }
        self.sut_url = ""
        self.now = START
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/msg", self._msg)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._runner = runner
        for addr in runner.addresses:
            if isinstance(addr, tuple):
                self.port = int(addr[1])
                break
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- receiving ----------------------------------------------------------------------------------------
    async def _msg(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.sut_token}":
            return web.Response(status=401)
        data = await request.read()
        checked = self.validator.check(data)
        h = (
            read_header(checked.root)
            if checked.root is not None and checked.header.get("message_id")
            else None
        )
        if h is not None:
            self.attempts.append(h)
        if self.down:
            return self._error(503, [Finding("GW-DOWN", "the receiver is down (test)")])
        if not checked.ok or h is None or checked.root is None:
            self.invalid.append((data, list(checked.findings)))
            return self._error(400, list(checked.findings))
        if h.message_type in self.refuse_types:
            return self._error(400, [Finding("GW-TEST", "refused by the test")])
        body = body_of(checked.root)
        answer_fn = self.answers.get(h.message_type)
        status = 200 if answer_fn is not None else 202
        rec = Received(h, body, data, checked.arrow, status)
        self.received.append(rec)
        self._changed.set()
        if answer_fn is not None:
            answer = answer_fn(self, rec)
            if answer is None:
                return self._error(503, [Finding("GW-DOWN", "no answer (test)")])
            out = build(h.reply(etree.QName(answer).localname, self.now), answer)
            return web.Response(status=200, body=out, content_type="application/xml")
        react = self.reactions.get(h.message_type)
        if react is not None:
            task = asyncio.create_task(react(self, rec))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    def _error(self, status: int, findings: list[Finding]) -> web.Response:
        h = header("ErrorReport", ("cs", self.lg_code), ("juki", self.lg_code), sent_at=self.now)
        return web.Response(
            status=status, body=build(h, error_report(findings)), content_type="application/xml"
        )

    # --- reading what was received ------------------------------------------------------------------------
    def of(self, *types: str) -> list[Received]:
        return [m for m in self.received if not types or m.type in types]

    def types(self) -> list[str]:
        return [m.type for m in self.received]

    def mark(self) -> int:
        """The number of messages received so far (to look only at what follows)."""
        return len(self.received)

    def since(self, mark: int, *types: str) -> list[Received]:
        return [m for m in self.received[mark:] if not types or m.type in types]

    async def wait_for(
        self, message_type: str, count: int = 1, timeout: float = 5.0, since: int = 0
    ) -> list[Received]:
        """Wait for ``count`` messages of ``message_type`` after ``since`` (AssertionError on timeout)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            got = self.since(since, message_type)
            if len(got) >= count:
                return got
            if loop.time() > end:
                raise AssertionError(
                    f"expected {count} {message_type}, got {len(got)}; received {self.types()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the SUT's outbox is empty and no answer of this gateway is still on its way."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if not self._tasks and await self._sut_pending() == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the SUT did not settle within {timeout}s; received {self.types()}")

    async def _sut_pending(self) -> int:
        assert self._session is not None
        async with self._session.get(f"{self.sut_url}/health") as r:
            data = await r.json()
        return int(data.get("outbox_pending", 0))

    # --- sending to the SUT -------------------------------------------------------------------------------
    async def post_sut(self, path: str, data: bytes, token: str | None = None) -> tuple[int, bytes]:
        assert self._session is not None
        async with self._session.post(
            f"{self.sut_url}{path}",
            data=data,
            headers={
                "Authorization": f"Bearer {token or self.gateway_token}",
                "Content-Type": "application/xml",
            },
        ) as r:
            return r.status, await r.read()

    def envelope(
        self,
        message_type: str,
        body: etree._Element,
        *,
        sender: tuple[str, str] | None = None,
        receiver: tuple[str, str] | None = None,
        business_date: date | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> bytes:
        h = header(
            message_type,
            sender or ("cs", self.lg_code),
            receiver or ("juki", self.lg_code),
            sent_at=self.now,
            business_date=business_date or self.now.date(),
            message_id=message_id,
            correlation_id=correlation_id,
        )
        return build(h, body)

    async def deliver(self, message_type: str, body: etree._Element, **kw: Any) -> tuple[int, bytes]:
        """POST an envelope to the SUT's /inbound as the gateway does (sender ``cs`` unless given)."""
        return await self.post_sut("/inbound", self.envelope(message_type, body, **kw))

    async def counter(
        self, op_date: date, op: etree._Element, *, message_id: str | None = None, raw: bool = False
    ) -> etree._Element:
        """Drive one counter operation; returns the CounterResult body."""
        req = J.CounterRequest(J.OperationDate(op_date.isoformat()), J.Staff("窓口担当"), op)
        env = self.envelope(
            "CounterRequest",
            req,
            sender=("counter", self.lg_code),
            business_date=op_date,
            message_id=message_id,
        )
        status, data = await self.post_sut("/counter", env)
        assert status == 200, (status, data[:500])
        checked = self.validator.check(data)
        assert checked.ok, [f.for_people() for f in checked.findings]
        result: etree._Element = body_of(parse(data))
        return result

    def advance(self, days: int = 0, seconds: int = 0) -> None:
        self.now = self.now + timedelta(days=days, seconds=seconds)


def counter_request(op_date: date, op: etree._Element, lg_code: str = "131016") -> bytes:
    """A complete CounterRequest envelope (for raw posts)."""
    h = header(
        "CounterRequest", ("counter", lg_code), ("juki", lg_code), sent_at=START, business_date=op_date
    )
    return build(h, J.CounterRequest(J.OperationDate(op_date.isoformat()), op))


def person_el(
    r: Resident, *, tag: str = "Person", ids: bool = True, relationship: bool = True, card: bool = True
) -> etree._Element:
    """CounterPersonType from a model resident (codes only with ``ids``; card number only with ``card``)."""
    el: etree._Element = etree.Element(q(tag), nsmap=_NSMAP)
    if ids:
        etree.SubElement(el, q("JuminhyoCode")).text = r.juminhyo_code
        if r.my_number:
            etree.SubElement(el, q("MyNumber")).text = r.my_number
    name_el("Name", r.name, el)
    jdate_el("BirthDate", r.birth_date, el)
    etree.SubElement(el, q("Sex")).text = r.sex
    if relationship:
        etree.SubElement(el, q("Relationship")).text = r.relationship
    if r.honseki is not None:
        honseki_el("Honseki", r.honseki, el)
    if r.foreign is not None:
        foreign_el("Foreign", r.foreign, el)
    if card and r.card_no:
        etree.SubElement(el, q("CardNo")).text = r.card_no
    return el


def documents(result: etree._Element) -> list[etree._Element]:
    """The Document elements of a CounterResult."""
    return list(result.iterfind(q("Document")))


def items(doc: etree._Element) -> dict[str, tuple[str | None, str | None, str | None]]:
    """A document's items by label: (Value, Before, After)."""
    out = {}
    for it in doc.iterfind(q("Item")):
        out[text(it, "Label") or ""] = (text(it, "Value"), text(it, "Before"), text(it, "After"))
    return out


def members(doc: etree._Element) -> list[etree._Element]:
    return list(doc.iterfind(q("Member")))


def official_record(r: Resident, event: date | None = None) -> etree._Element:
    """OfficialCorrection 職権記載 of a model resident (how fixtures are loaded into the SUT)."""
    op: etree._Element = J.OfficialCorrection(J.Action("記載"), J.Basis("初期データ"))
    if event is not None:
        jdate_el("EventDate", JDate.of(event), op)
    elif r.resident_since is not None:
        jdate_el("EventDate", r.resident_since, op)
    else:
        jdate_el("EventDate", JDate.of(date(2020, 4, 1)), op)
    op.append(person_el(r))
    address_el("NewAddress", r.address, op)
    return op
