"""Test support for the simulator tests: a small in-process stand-in for the gateway port.

It is a test double of the *gateway* (the simulators under test are real): every body a simulator sends is
validated against the project's XSD and rules and must fit an arrow of the catalogue, so a simulator that
sends something the real gateway would refuse fails its test. Async messages are queued and delivered by
``drain()`` (apply "in", then react), sync ones answered at once; sender and receiver get ``apply`` like the
gateway does. The SUT (actor ``juki``) is a function the test provides.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance.codec import jdate_el, person_identity_el, resident_el
from conformance.envelope import header
from conformance.errors import Finding
from conformance.model import JDate, Resident
from conformance.rules import run_rules
from simulators.base import CappedDict, Message, SendResult, Simulator
from simulators.toolbox import E, Refusal

JST = ZoneInfo("Asia/Tokyo")
SUT = "131016"
CAT = catalogue_mod.default()
SCHEMA = etree.XMLSchema(etree.parse(str(Path(catalogue_mod.SCHEMAS) / "envelope.xsd")))
START = datetime(2026, 3, 30, 10, 0, tzinfo=JST)


def check_body(body: etree._Element, arrow: int | None) -> None:
    """Fail the test when a body is not schema-valid or breaks a rule (check digits, 和暦, data class)."""
    doc = etree.fromstring(etree.tostring(body))
    if not SCHEMA.validate(doc):
        raise AssertionError(f"schema-invalid {etree.QName(body).localname}: {SCHEMA.error_log}\n"
                             f"{etree.tostring(body, encoding='unicode')[:2000]}")
    data_class = CAT.arrows[arrow].data_class if arrow is not None else None
    findings = [f for f in run_rules(doc, data_class=data_class) if f.severity == "error"]
    if findings:
        raise AssertionError(f"rule findings on {etree.QName(body).localname}: {findings}")


class NoScan(CappedDict):
    """A simulator's state map that fails the test when it is read whole: a message's work must go through
    an index, or a national day's run slows down as the state grows (each message a pass over it)."""

    def __iter__(self) -> Any:
        raise AssertionError("a message read a whole state map")

    def keys(self) -> Any:
        raise AssertionError("a message read a whole state map")

    def values(self) -> Any:
        raise AssertionError("a message read a whole state map")

    def items(self) -> Any:
        raise AssertionError("a message read a whole state map")


def forbid_scans(sim: Simulator, tenant: str | None, *keys: str) -> None:
    """From now on, reading any of these maps of ``sim``'s state whole fails the test."""
    st = sim.state(tenant)
    for k in keys:
        st[k] = NoScan(st[k].cap, dict(st[k]))


@dataclass
class FakePort:
    """The GatewayPort the simulators see, recording everything."""

    clock: datetime = START
    sut_lg: str = SUT
    catalogue: Any = CAT
    sims: dict[str, Any] = field(default_factory=dict)
    sent: list[Message] = field(default_factory=list)
    responses: list[Message] = field(default_factory=list)
    refused: list[tuple[Message, Refusal]] = field(default_factory=list)
    registered: dict[str | None, set[str]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    sut: Callable[[Message], etree._Element] | None = None
    queue: list[tuple[Simulator, Message]] = field(default_factory=list)
    log: list[Message] = field(default_factory=list)  # messages and responses, in order (for replay)

    def __hash__(self) -> int:
        return id(self)

    def now(self, tenant: str | None) -> datetime:
        return self.clock

    def register(self, tenant: str | None, value: str) -> None:
        self.registered.setdefault(tenant, set()).add(value)

    def add(self, cls: type[Simulator]) -> Any:
        sim = cls(self)
        self.sims[cls.actor] = sim
        return sim

    def _message(self, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                 body: etree._Element, tenant: str | None, correlation_id: str | None,
                 business_date: date | None = None) -> Message:
        arrow = self.catalogue.resolve_arrow(sender[0], receiver[0], message_type)
        assert arrow is not None, f"no arrow carries {message_type} from {sender[0]} to {receiver[0]}"
        mt = self.catalogue.message_types[message_type]
        assert mt.mode != "response", f"{message_type} is a response type: it travels only as an answer"
        assert etree.QName(body).localname == mt.root
        check_body(body, arrow)
        h = header(message_type, sender, receiver, sent_at=self.clock, business_date=business_date,
                   correlation_id=correlation_id)
        msg = Message(h, copy.deepcopy(body), arrow, tenant)
        if receiver[0] not in self.down:
            self.log.append(msg)
        return msg

    async def send(self, *, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                   body: etree._Element, tenant: str | None, correlation_id: str | None = None,
                   business_date: date | None = None) -> SendResult:
        msg = self._message(sender, receiver, message_type, body, tenant, correlation_id, business_date)
        self.sent.append(msg)
        if receiver[0] in self.down:
            return SendResult(503, msg.header.message_id, findings=[Finding("GW-DOWN", "down")])
        src = self.sims.get(sender[0])
        if src is not None:
            src.apply(msg, "out")
        return await self._deliver(msg)

    async def relay(self, msg: Message, *, sender: tuple[str, str], receiver: tuple[str, str],
                    correlation_id: str | None = None) -> SendResult:
        return await self.send(sender=sender, receiver=receiver, message_type=msg.header.message_type,
                               body=msg.body, tenant=msg.tenant, correlation_id=correlation_id)

    async def _deliver(self, msg: Message) -> SendResult:
        mt = self.catalogue.message_types[msg.header.message_type]
        dst = self.sims.get(msg.header.receiver_actor)
        if mt.mode != "sync":
            if dst is not None:
                self.queue.append((dst, msg))
            return SendResult(202, msg.header.message_id)
        if msg.header.receiver_actor == "juki":
            assert self.sut is not None, "this test has no SUT for sync messages"
            answer: etree._Element | None = self.sut(msg)
        else:
            assert dst is not None, f"no simulator {msg.header.receiver_actor}"
            dst.apply(msg, "in")
            try:
                answer = await dst.react(msg)
            except Refusal as r:
                self.refused.append((msg, r))
                return SendResult(400, msg.header.message_id, findings=[r.finding()])
        assert answer is not None, f"{msg.header.receiver_actor} gave no answer to {mt.id}"
        assert mt.response is not None
        assert etree.QName(answer).localname == mt.response
        arrow = mt.response_arrows[msg.arrow or 0]
        check_body(answer, arrow)
        resp = Message(msg.header.reply(mt.response, self.clock), copy.deepcopy(answer), arrow, msg.tenant)
        self.responses.append(resp)
        self.log.append(resp)
        if dst is not None:
            dst.apply(resp, "out")
        src = self.sims.get(msg.header.sender_actor)
        if src is not None:
            src.apply(resp, "in")
        return SendResult(200, msg.header.message_id, resp)

    async def inject(self, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                     body: etree._Element, tenant: str | None = "T1",
                     correlation_id: str | None = None) -> SendResult:
        """A message from outside the simulators (the SUT, the counter, a control send) into one of them."""
        msg = self._message(sender, receiver, message_type, body, tenant, correlation_id)
        self.sent.append(msg)
        src = self.sims.get(sender[0])
        if src is not None:  # a control send "as" a simulated actor: the gateway applies it as sent
            src.apply(msg, "out")
        res = await self._deliver(msg)
        await self.drain()
        for sim in self.sims.values():  # the control API serves snapshots as JSON (reading a map whole)
            snap = sim.snapshot(tenant)
            json.dumps({k: v for k, v in snap.items() if not isinstance(v, NoScan)}, ensure_ascii=False)
        return res

    async def drain(self) -> None:
        """Deliver queued async messages (and what they cause) until none is left."""
        while self.queue:
            sim, msg = self.queue.pop(0)
            sim.apply(msg, "in")
            try:
                await sim.react(msg)
            except Refusal as r:
                self.refused.append((msg, r))

    def of_type(self, message_type: str) -> list[Message]:
        return [m for m in self.sent if m.header.message_type == message_type]

    def last(self, message_type: str) -> Message:
        found = self.of_type(message_type)
        assert found, f"no {message_type} was sent; sent: {[m.header.message_type for m in self.sent]}"
        return found[-1]


def sync_symbol_catalogue() -> Any:
    """The catalogue with SymbolRequest sync on 16 (answered by SymbolAcquisitionResult) — see the report."""
    mt = CAT.message_types["SymbolRequest"]
    sync = replace(mt, mode="sync", response="SymbolAcquisitionResult", response_arrows={16: 16})
    types = {**CAT.message_types, "SymbolRequest": sync}
    return replace(CAT, message_types=types, by_root=dict(CAT.by_root), resolution=dict(CAT.resolution))


def reason(code: str, text: str = "異動") -> etree._Element:
    return E.Reason(text, code=code)


def change(code: str, seq: int, on: date = date(2026, 3, 30)) -> etree._Element:
    return E.Change(reason(code), jdate_el("EventDate", JDate.of(on)), E.NotifiedDate(on.isoformat()),
                    E.Seq(str(seq)))


def identity_notice(r: Resident, seq: int, code: str = "A04", prev: str | None = None) -> etree._Element:
    n = E.IdentityNotice(person_identity_el("Identity", r), change(code, seq))
    if prev:
        n.append(E.PreviousJuminhyoCode(prev))
    return n


def residents_xml(*residents: Resident | etree._Element) -> str:
    """A <Residents> seed document."""
    root = E.Residents()
    for r in residents:
        root.append(r if isinstance(r, etree._Element) else resident_el("Resident", r))
    return etree.tostring(root, encoding="unicode")


def replay(port: FakePort, cls: type[Simulator]) -> Any:
    """A fresh simulator of ``cls`` rebuilt from everything ``port`` saw, through ``apply`` only."""
    fresh = cls(FakePort(clock=port.clock))
    actor = cls.actor
    for m in port.log:
        if m.header.receiver_actor == actor:
            fresh.apply(m, "in")
        if m.header.sender_actor == actor:
            fresh.apply(m, "out")
    return fresh


def test_fake_port_refuses_an_invalid_body() -> None:
    """The double itself: a body that is not schema-valid never passes silently."""
    bad = E.IdentityQuery()
    try:
        check_body(bad, 3)
    except AssertionError as e:
        assert "schema-invalid" in str(e)
    else:
        raise AssertionError("an empty IdentityQuery was accepted")
