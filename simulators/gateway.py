"""The gateway: the one door every message goes through, and the host of every simulated actor.

Why one door: the judge trusts the trace only if *every* crossing (from the SUT, from a real actor, from an
in-process simulator, refused or accepted) takes the same path: authenticate the sender, parse with the
hardened parser, validate (XSD + rules), resolve the arrow, attribute the tenant, apply faults, record
durably, and only then acknowledge and deliver.

Per message (``Gateway.submit``)::

    credential -> 401 GW-AUTH       Sender@actor not the credential's -> 403 GW-SENDER
    parse + XSD + rules -> 400      unknown type -> 400      no arrow -> 404 GW-NO-ARROW
    receiver down (fault downtime, maintenance, hours when the tenant enforces them) -> 503 GW-DOWN
    fault error -> its status       otherwise: trace.append(...) returns once durable, then
      async: 202, delivery in the background (per receiver and tenant, in order; HTTP with retries and the
             same MessageId, each attempt a ``delivery`` record)
      sync:  forwarded, the answer validated and recorded on the catalogue's response arrow, 200 + answer

Every refusal is recorded (kind ``refused``) with its findings and answered with an ErrorReport envelope.

Simulators are event-sourced: for every accepted message or response the sending simulator gets
``apply(msg, "out")`` and the receiving one ``apply(msg, "in")`` (then ``react`` for messages). On start the
trace is replayed through ``apply`` and ``seed`` only, so state comes back and nothing is sent again.

Tenancy (docs/design.md): a tenant is found by (1) a known message/correlation id, (2) a peer lgCode in
Sender/Receiver, (3) an identifier in the body (one precompiled XPath). A record written before its tenant
was known is matched at query time once one of its identifiers is registered (``records_for``/``wait``).

Hours: operating hours and maintenance windows make a receiver "down" only for a tenant that enables
enforcement (``set_hours``; default off, from config ``gateway.enforce_hours``), so scenarios run at any
virtual time unless they test the calendar.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self, cast

import aiohttp
from aiohttp import web
from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance.catalogue import Catalogue, MessageType
from conformance.envelope import Header, body_of, build, envelope, error_report, header, read_header, serialise
from conformance.errors import Finding, HarnessError
from conformance.model import Municipality
from conformance.xmlsafe import MAX_BYTES, NSMAP, parse, q, too_deep
from simulators.base import Message, SendResult, Simulator
from simulators.clock import JUKI_NET_ACTORS, KIOSK_ACTORS, ClockRegistry, OperatingCalendar, OperatingHours
from simulators.config import HarnessConfig, client_ssl_context
from simulators.faults import CLEAN, Decision, FaultPlan, Reorderer
from simulators.registry import Refusal
from simulators.trace import TraceRecord, TraceStore, record_to_json

log = logging.getLogger("juki.gateway")

#: Actors whose messages the SUT receives at its inbound endpoint (``counter`` on arrow 35).
SUT_ACTORS: frozenset[str] = frozenset({"juki", "counter"})
#: Body elements whose text attributes a message to a tenant (design.md "Tenancy").
ID_ELEMENTS: tuple[str, ...] = (
    "JuminhyoCode", "NewJuminhyoCode", "OldJuminhyoCode", "PreviousJuminhyoCode", "HeadJuminhyoCode",
    "MyNumber", "ResidenceCardNo", "NewResidenceCardNo", "CertSerial", "CardNo", "IdentificationNo",
    "ApplicationId", "ApplicationNo", "BookingId", "CertificateNo", "MoveOutCertificateNo",
)
_IDS = etree.XPath("|".join(f"/j:Envelope/j:Body//j:{e}/text()" for e in ID_ELEMENTS), namespaces=NSMAP,
                   smart_strings=False)
"""The one precompiled XPath that extracts identifiers from an envelope's body (a union: ~12 µs)."""
_IDS_ANY = etree.XPath("|".join(f"//j:{e}/text()" for e in ID_ELEMENTS), namespaces=NSMAP,
                       smart_strings=False)


_ID_TAGS = tuple(q(e) for e in ID_ELEMENTS)


def body_ids(root: etree._Element) -> list[str]:
    """Identifier values in an envelope's body (the tenant attribution keys), in document order.

    The same values as the XPath ``_IDS`` (text nodes of the identifier elements under Body), found with
    one tag-filtered ``iter`` (C) over the Body: an identifier is a simple-typed element, so its text is
    ``.text``; one with children or comments (never valid, but possible in a refused message) takes the
    XPath.
    """
    if root.tag != _ENVELOPE or len(root) != 2 or root[1].tag != _BODY:
        return cast(list[str], _IDS(root))
    out: list[str] = []
    for el in root[1].iter(_ID_TAGS):
        if len(el):
            return cast(list[str], _IDS(root))
        t = el.text
        if t:
            out.append(t)
    return out


#: CounterRequest operation element -> catalogue counter operation.
COUNTER_OPS: dict[str, str] = {
    "MovingNotification": "moving_notification", "OfficialCorrection": "official_correction",
    "CopyRequest": "issue_copy", "MoveOutCertificateIssue": "issue_moveout_certificate",
    "SpecialMoveInPending": "special_movein_pending", "SpecialMoveInConfirm": "special_movein_confirm",
    "KosekiEntry": "koseki_entry", "IdentityQueryOp": "identity_query", "CardIssueOp": "card_issue",
    "MyNumberChangeOp": "my_number_change", "CardVerifyOp": "card_verify",
    "ResidentCodeChangeOp": "resident_code_change", "CardHandoverOp": "card_handover",
    "EApplicationProcessOp": "eapplication_process", "ImmigrationSlipsOp": "immigration_slips",
}
_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:\-]{0,79}\Z")
_LG_RE = re.compile(r"[0-9]{6}\Z")
_XML = "application/xml; charset=utf-8"
_MAX_STORED_ANSWER = 64 * 1024
_HEADER = q("Header")
_ENVELOPE = q("Envelope")
_BODY = q("Body")
_H_MID, _H_CID, _H_TYPE = q("MessageId"), q("CorrelationId"), q("MessageType")
_H_SENDER, _H_RECEIVER = q("Sender"), q("Receiver")


# ------------------------------------------------------------------------------------------ validation

class CheckedLike(Protocol):
    """What the gateway reads from ``conformance.validate.Checked``."""

    root: etree._Element | None
    findings: list[Finding]
    ok: bool


class ValidatorLike(Protocol):
    def check(self, data: bytes, *, file: str | None = None, arrow: int | None = None) -> Any: ...


def default_validator() -> ValidatorLike:
    """``conformance.validate.Validator`` (schema compiled once)."""
    from conformance.validate import Validator  # late: it compiles the schema
    v: ValidatorLike = Validator()
    return v


# --------------------------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class Peek:
    """The header fields the gateway routes by, read without trusting the document (may be empty)."""

    message_id: str | None
    correlation_id: str | None
    message_type: str | None
    sender_actor: str | None
    sender_lg: str | None
    receiver_actor: str | None
    receiver_lg: str | None


def peek_checked(checked: Any) -> Peek | None:
    """Routing fields from a ``Checked`` (its header dict is read once by the validator)."""
    root = checked.root
    if root is None or root.tag != _ENVELOPE:
        return peek_header(root)
    h = checked.header
    return Peek(h["message_id"], h["correlation_id"], h["message_type"], h["sender_actor"], h["sender_lg"],
                h["receiver_actor"], h["receiver_lg"])


def peek_header(root: etree._Element | None) -> Peek | None:
    """Routing fields of an envelope, or None when it has no Header."""
    if root is None:
        return None
    h = root.find(_HEADER)
    if h is None:
        return None
    s, r = h.find(_H_SENDER), h.find(_H_RECEIVER)

    def txt(tag: str) -> str | None:
        el = h.find(tag)
        return el.text.strip() if el is not None and el.text else None

    return Peek(txt(_H_MID), txt(_H_CID), txt(_H_TYPE), None if s is None else s.get("actor"),
                None if s is None else s.get("lgCode"), None if r is None else r.get("actor"),
                None if r is None else r.get("lgCode"))


@dataclass(slots=True)
class Outcome:
    """What the gateway answered: HTTP status, the body bytes, findings; for sync types the answer."""

    status: int
    message_id: str | None
    findings: list[Finding] = field(default_factory=list)
    body: bytes = b""
    response: Message | None = None
    seq: int | None = None

    def send_result(self) -> SendResult:
        return SendResult(self.status, self.message_id or "", self.response, list(self.findings))


@dataclass(slots=True)
class Tenant:
    """A scenario's world as the gateway knows it: peers (distinct lgCodes), calendar, hours enforcement."""

    id: str
    name: str
    seed: int
    peers: list[Municipality]
    calendar: OperatingCalendar
    enforce_hours: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.id, "name": self.name, "seed": self.seed,
                "peers": [{"lg_code": p.lg_code, "prefecture": p.prefecture, "city": p.city,
                           "postal_prefix": p.postal_prefix} for p in self.peers],
                "enforce_hours": self.enforce_hours}


@dataclass(frozen=True, slots=True)
class Target:
    """An HTTP endpoint the gateway delivers to (the SUT or a real actor)."""

    name: str
    url: str
    token: str
    ssl: ssl.SSLContext | None


@dataclass(slots=True)
class _Delivery:
    data: bytes
    root: etree._Element
    peek: Peek
    arrow: int
    tenant: str | None
    mt: MessageType
    seq: int
    decision: Decision = CLEAN
    record: bool = True  # False for /direct (benchmark baseline): nothing is traced
    hdr: Mapping[str, str | None] | None = None  # the validator's header dict (valid envelopes only)
    msg: Message | None = None  # the simulators' view, built once for the sender's apply and the receiver


def _finding(code: str, message: str, xpath: str | None = None) -> Finding:
    return Finding(code=code, message=message, xpath=xpath)


def _valid_actor(a: str | None, cat: Catalogue) -> bool:
    return a is not None and a in cat.actors


# -------------------------------------------------------------------------------------------- gateway

class Gateway:
    """Implements ``simulators.base.GatewayPort`` and serves the HTTP surface (``app()``)."""

    def __init__(self, config: HarnessConfig, store: TraceStore, *, catalogue: Catalogue | None = None,
                 validator: ValidatorLike | None = None, clocks: ClockRegistry | None = None,
                 faults: FaultPlan | None = None,
                 simulators: Mapping[str, Callable[[Gateway], Simulator]] | None = None,
                 reorder_flush_s: float = 0.5) -> None:
        self.config = config
        self.store = store
        self.catalogue: Catalogue = catalogue or catalogue_mod.default()
        self.sut_lg: str = config.sut.lg_code
        self.validator: ValidatorLike = validator or default_validator()
        self.clocks = clocks or ClockRegistry(datetime.fromisoformat(config.clock.start),
                                              frozen=config.clock.frozen)
        self.hours = OperatingHours.from_config(config.hours)
        self.calendar = OperatingCalendar(self.hours)  # tenant None
        self.faults = faults if faults is not None else FaultPlan.from_config(list(config.faults))
        self.tenants: dict[str, Tenant] = {}
        self.sims: dict[str, Simulator] = {}
        factories = simulators if simulators is not None else _registry()
        for actor in config.simulated_actors:
            make = factories.get(actor)
            if make is not None:
                self.sims[actor] = make(self)
        self.missing_simulators = sorted(a for a in config.simulated_actors if a not in self.sims)
        self.targets: dict[str, Target] = {
            a: Target(a, c.url or "", c.token or "", client_ssl_context(c.tls_ca, c.tls_cert, c.tls_key))
            for a, c in config.real_actors.items()}
        s = config.sut
        self.sut_target = Target("sut", s.inbound_url, config.gateway.tokens.gateway_to_sut,
                                 client_ssl_context(s.tls_ca, s.tls_cert, s.tls_key))
        self.counter_target = Target("sut-counter", s.counter_url, config.gateway.tokens.gateway_to_sut,
                                     self.sut_target.ssl)
        # credential -> actors it may send as
        self.credentials: dict[str, frozenset[str]] = {f"Bearer {s.token}": frozenset(SUT_ACTORS)}
        for a, c in config.real_actors.items():
            self.credentials[f"Bearer {c.token}"] = frozenset({a})
        self.control_credential = f"Bearer {config.gateway.tokens.control}"
        # tenancy
        self._tenant_by_id: dict[str, str] = {}
        self._tenant_by_lg: dict[str, str] = {}
        self._pending_ids: dict[str, list[int]] = {}  # identifier -> seqs of records without tenant
        self._pending_seq: dict[int, tuple[str, ...]] = {}  # seq -> identifiers of a record without tenant
        self._late: dict[int, str] = {}  # seq -> tenant attributed after the record was written
        self._late_by_tenant: dict[str, list[int]] = {}
        self._attributed = asyncio.Event()
        self._accepted_ids: set[tuple[str, str]] = set()  # (sender actor, message id) accepted once
        # delivery
        self._lanes: dict[tuple[str, str | None], deque[_Delivery]] = {}
        self._lane_tasks: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._reorderers: dict[tuple[str | None, int], Reorderer[_Delivery]] = {}
        self._reorder_timers: dict[tuple[str | None, int], asyncio.TimerHandle] = {}
        self._reorder_flush_s = reorder_flush_s
        self._background: set[asyncio.Task[Any]] = set()
        self.http: aiohttp.ClientSession | None = None
        self._closing = False
        self.replayed = 0
        #: accepted messages per arrow since start (cheap progress counter for benchmarks and health)
        self.accepted: dict[int, int] = {}
        self._sim_actors: dict[str, frozenset[str]] = {}

    def set_sut(self, config: HarnessConfig) -> None:
        """Point deliveries at the SUT of ``config`` (the runtime learns the reference SUT's URL late)."""
        self.config = config
        s = config.sut
        self.sut_target = Target("sut", s.inbound_url, config.gateway.tokens.gateway_to_sut,
                                 client_ssl_context(s.tls_ca, s.tls_cert, s.tls_key))
        self.counter_target = Target("sut-counter", s.counter_url, config.gateway.tokens.gateway_to_sut,
                                     self.sut_target.ssl)

    # ---------------------------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        """Open the HTTP client and rebuild state from the trace (apply/seed only: nothing is re-sent)."""
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.gateway.delivery.timeout_seconds),
            connector=aiohttp.TCPConnector(limit=256))
        self._replay()
        return self

    async def close(self) -> None:
        """Let in-flight deliveries finish briefly, then cancel what is left and close the client."""
        self._closing = True
        for key in list(self._reorderers):
            self._flush_reorder(key)
        tasks = [*self._lane_tasks.values(), *self._background]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------------------- GatewayPort

    def now(self, tenant: str | None) -> datetime:
        return self.clocks.get(tenant).now()

    def register(self, tenant: str | None, value: str) -> None:
        """Attribute an identifier to a tenant; records written earlier with it are attributed late."""
        if tenant is None or not value:
            return
        if self._tenant_by_id.setdefault(value, tenant) != tenant:
            return  # first registration wins: identifiers are unique per tenant's factory
        seqs = self._pending_ids.pop(value, None)
        if seqs:
            self._attribute_late(seqs, tenant)

    def _attribute_late(self, seqs: Iterable[int], tenant: str) -> None:
        more: list[str] = []
        for seq in seqs:
            ids = self._pending_seq.pop(seq, None)
            if ids is None or seq in self._late:
                continue
            self._late[seq] = tenant
            self._late_by_tenant.setdefault(tenant, []).append(seq)
            for v in ids:
                lst = self._pending_ids.get(v)
                if lst is not None:
                    with contextlib.suppress(ValueError):
                        lst.remove(seq)
                    if not lst:
                        del self._pending_ids[v]
                if v not in self._tenant_by_id:
                    more.append(v)
        self._attributed.set()
        self._attributed = asyncio.Event()
        for v in more:
            self.register(tenant, v)

    async def send(self, *, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                   body: etree._Element, tenant: str | None, correlation_id: str | None = None,
                   business_date: date | None = None) -> SendResult:
        """A simulated actor sends a message: same validation and trace path as any message, in process."""
        out = await self.send_outcome(sender=sender, receiver=receiver, message_type=message_type, body=body,
                                      tenant=tenant, correlation_id=correlation_id,
                                      business_date=business_date)
        return out.send_result()

    async def send_outcome(self, *, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
                           body: etree._Element, tenant: str | None, correlation_id: str | None = None,
                           business_date: date | None = None) -> Outcome:
        """``send`` with the full outcome (the ErrorReport bytes of a refusal, too)."""
        now = self.now(tenant)
        h = header(message_type, sender, receiver, sent_at=now, business_date=business_date or now.date(),
                   correlation_id=correlation_id)
        actors = self._sim_actors.get(sender[0])
        if actors is None:
            actors = self._sim_actors[sender[0]] = frozenset({sender[0]})
        root = envelope(h, body)
        data = serialise(root)
        checked = self._check_built(root, data)
        if checked is None:  # anything but a clean pass: the bytes take the HTTP path (findings with lines)
            out = await self.submit(data, actors=actors, tenant=tenant, origin="sim")
        else:
            out = await self._process(checked, data, actors, tenant)
        out.message_id = out.message_id or h.message_id
        return out

    def _check_built(self, root: etree._Element, data: bytes) -> Any:
        """Validate an envelope a simulator built, as built: ``data`` must be its serialisation.

        The tree is what parsing ``data`` would give (same elements, attributes and text), so XSD and rules
        see the same document without the parse; the hardened parser's limits are checked on it (size,
        depth; a built tree has no DTD or entity). Returns the ``Checked`` only when it is ok and nothing
        differs from a parse (no processing instruction or entity node, which the parser would drop or
        refuse); otherwise None, and the caller submits the bytes, so a refusal reads exactly as it would
        over HTTP (with line numbers).
        """
        check_element = getattr(self.validator, "check_element", None)
        if check_element is None or len(data) > MAX_BYTES or too_deep(root) is not None:
            return None
        if next(root.iter(etree.ProcessingInstruction, etree.Entity), None) is not None:
            return None
        checked = check_element(root, raw=data)
        return checked if checked.ok else None

    # ------------------------------------------------------------------------------------ tenancy

    def tenant_of(self, rec: TraceRecord) -> str | None:
        """A record's tenant: as written, or as attributed later."""
        return rec.tenant if rec.tenant is not None else self._late.get(rec.seq)

    def _attribute(self, peek: Peek, root: etree._Element) -> tuple[str | None, list[str]]:
        by_id = self._tenant_by_id
        for v in (peek.correlation_id, peek.message_id):
            if v is not None:
                t = by_id.get(v)
                if t is not None:
                    return t, []
        for lg in (peek.sender_lg, peek.receiver_lg):
            if lg is not None and lg != self.sut_lg:
                t = self._tenant_by_lg.get(lg)
                if t is not None:
                    return t, []
        ids = body_ids(root)
        for v in ids:
            t = by_id.get(v)
            if t is not None:
                return t, ids
        return None, ids

    def _remember(self, rec: TraceRecord, tenant: str | None, peek: Peek | None,
                  ids: Iterable[str]) -> None:
        """After a record is durable: register its ids to its tenant, or park them for late attribution."""
        if tenant is not None:
            if peek is not None and peek.message_id:
                self.register(tenant, peek.message_id)
            for v in ids:
                if v not in self._tenant_by_id:
                    self.register(tenant, v)
            return
        keys = tuple(dict.fromkeys(v for v in (*ids, peek.message_id if peek else None,
                                                peek.correlation_id if peek else None) if v))
        if not keys:
            return
        known = next((self._tenant_by_id[v] for v in keys if v in self._tenant_by_id), None)
        self._pending_seq[rec.seq] = keys
        for v in keys:
            self._pending_ids.setdefault(v, []).append(rec.seq)
        if known is not None:  # registered while the record was being committed
            self._attribute_late([rec.seq], known)

    def create_tenant(self, name: str = "", peers: int = 3, seed: int = 0, *,
                      enforce_hours: bool | None = None) -> Tenant:
        """A new tenant whose peers have lgCodes no other tenant has. Call ``record_event`` after."""
        from conformance.residents import ResidentFactory  # late: Faker is slow to import

        used = {p.lg_code for t in self.tenants.values() for p in t.peers}
        tid = f"T-{secrets.token_hex(5)}"
        while tid in self.tenants:
            tid = f"T-{secrets.token_hex(5)}"
        ms = ResidentFactory(seed, self.sut_lg).peer_municipalities(peers, exclude=used) if peers else []
        t = Tenant(tid, name or tid, seed, ms, OperatingCalendar(self.hours),
                   self.config.gateway.enforce_hours if enforce_hours is None else enforce_hours)
        self._install_tenant(t)
        return t

    def _install_tenant(self, t: Tenant) -> None:
        self.tenants[t.id] = t
        for p in t.peers:
            self._tenant_by_lg[p.lg_code] = t.id
        self.clocks.get(t.id)

    def delete_tenant(self, tid: str) -> bool:
        t = self.tenants.pop(tid, None)
        for sim in self.sims.values():
            sim._state.pop(tid, None)
        if t is None:
            return False
        for p in t.peers:
            self._tenant_by_lg.pop(p.lg_code, None)
        self.clocks.drop(tid)
        self.faults.clear(tid)
        return True

    def set_hours(self, tid: str, *, enforce: bool | None = None,
                  maintenance: Iterable[Mapping[str, Any]] = ()) -> Tenant:
        t = self.tenants[tid]
        if enforce is not None:
            t.enforce_hours = enforce
        for m in maintenance:
            t.calendar.add_maintenance(datetime.fromisoformat(str(m["start"])),
                                       datetime.fromisoformat(str(m["end"])), m.get("actors"))
        return t

    def seed(self, tid: str | None, actor: str, kind: str, data: dict[str, Any]) -> list[str]:
        """Seed a simulator (no trace record here: ``record_event`` it) and register the identifiers."""
        sim = self.sims.get(actor)
        if sim is None:
            raise HarnessError([_finding("GW-ACTOR", f"no simulated actor {actor!r} to seed; simulated: "
                                         f"{', '.join(sorted(self.sims))}")])
        ids: list[str] = []
        xml = data.get("xml")
        if isinstance(xml, str) and xml.strip():
            ids.extend(cast(list[str], _IDS_ANY(parse(xml))))
        ids.extend(_ids_in_data(data.get("data")))
        try:
            sim.seed(tid, kind, data)
        except (ValueError, KeyError, TypeError) as e:
            raise HarnessError([_finding("GW-SEED", f"{actor} cannot take this {kind!r} seed: {e}")]) from e
        for v in ids:
            self.register(tid, v)
        return ids

    async def record_event(self, event: str, tenant: str | None, payload: Mapping[str, Any]) -> TraceRecord:
        """A control action, recorded so a restart can replay it (tenants, seeds, clock, hours)."""
        body = json.dumps({"event": event, **payload}, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return await self.store.append(kind="event", verdict="info", payload=body, tenant=tenant, note=event,
                                       virtual_time=self.now(tenant))

    # --------------------------------------------------------------------------------- processing

    async def submit(self, data: bytes, *, actors: frozenset[str] | None, tenant: str | None = None,
                     origin: str = "http") -> Outcome:
        """Authenticate, validate, record and deliver one envelope; ``actors`` = the credential's actors."""
        if actors is None:
            fs = [_finding("GW-AUTH", "missing or unknown credential (Authorization: Bearer <token>)")]
            return await self._refuse(401, fs, data, None, tenant=tenant)
        return await self._process(self.validator.check(data), data, actors, tenant)

    async def _process(self, checked: Any, data: bytes, actors: frozenset[str], tenant: str | None) -> Outcome:
        """``submit`` once the document is checked (parsed from ``data``, or built in process as ``data``)."""
        root: etree._Element | None = checked.root
        peek = peek_checked(checked)
        if peek is not None and peek.sender_actor not in actors:
            return await self._refuse(403, [_finding(
                "GW-SENDER", f"this credential may send as {', '.join(sorted(actors))}, not as "
                f"{peek.sender_actor!r}", "/j:Envelope/j:Header/j:Sender/@actor")], data, peek, tenant=tenant)
        if root is None or peek is None:
            fs = list(checked.findings) or [_finding("XML-SYNTAX", "not an envelope")]
            return await self._refuse(400, fs, data, peek, tenant=tenant)
        mtype = peek.message_type or ""
        mt = self.catalogue.message_types.get(mtype)
        if mt is None:
            fs = list(checked.findings) or [_finding(
                "ENV-TYPE", f"unknown message type {mtype!r}", "/j:Envelope/j:Header/j:MessageType")]
            return await self._refuse(400, fs, data, peek, tenant=tenant)
        arrow = self.catalogue.resolve_arrow(peek.sender_actor or "", peek.receiver_actor or "", mtype)
        if arrow is None or mt.mode == "response":
            why = ("a response type travels only in the HTTP answer to its request" if mt.mode == "response"
                   else f"no arrow of the catalogue carries {mtype} from {peek.sender_actor} to "
                   f"{peek.receiver_actor}")
            return await self._refuse(404, [_finding("GW-NO-ARROW", why, "/j:Envelope/j:Header")], data, peek,
                                      tenant=tenant)
        if not checked.ok:
            return await self._refuse(400, list(checked.findings), data, peek, arrow=arrow, tenant=tenant)
        if tenant is None:
            tenant, ids = self._attribute(peek, root)
        else:
            ids = body_ids(root)
        receiver = peek.receiver_actor or ""
        now = self.now(tenant)
        decision = self.faults.decide(arrow=arrow, actor=receiver, message_type=mtype, tenant=tenant, now=now)
        down = self._down(receiver, tenant, now, decision)
        if down is not None:
            return await self._refuse(503, [_finding("GW-DOWN", down)], data, peek, arrow=arrow,
                                      tenant=tenant, ids=ids)
        if decision.error is not None:
            e = decision.error
            return await self._refuse(e.status, [_finding(e.code or "GW-FAULT", e.message or
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
        self._accepted_ids.add(dup)
        self.accepted[arrow] = self.accepted.get(arrow, 0) + 1
        self._remember(rec, tenant, peek, ids)
        hdr = checked.header
        sender_sim = self.sims.get(peek.sender_actor or "")
        msg: Message | None = None
        if sender_sim is not None or peek.receiver_actor in self.sims:
            with contextlib.suppress(Exception):  # _apply logs what a bad header does to a simulator
                msg = self._message(root, arrow, tenant, data, hdr)
        if sender_sim is not None:
            self._apply(sender_sim, root, arrow, tenant, data, "out", msg, hdr=hdr)
        d = _Delivery(data, root, peek, arrow, tenant, mt, rec.seq, decision, hdr=hdr, msg=msg)
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

    async def _refuse(self, status: int, findings: list[Finding], data: bytes, peek: Peek | None, *,
                      arrow: int | None = None, tenant: str | None = None,
                      ids: Iterable[str] = ()) -> Outcome:
        mid = peek.message_id if peek is not None else None
        if tenant is None and peek is not None:
            for v in (peek.correlation_id, mid):
                if v is not None and v in self._tenant_by_id:
                    tenant = self._tenant_by_id[v]
                    break
            if tenant is None:
                for lg in (peek.sender_lg, peek.receiver_lg):
                    if lg is not None and lg in self._tenant_by_lg:
                        tenant = self._tenant_by_lg[lg]
                        break
        rec = await self.store.append(
            kind="refused", verdict="refused", payload=data, tenant=tenant, arrow=arrow,
            sender_actor=peek.sender_actor if peek else None, sender_lg=peek.sender_lg if peek else None,
            receiver_actor=peek.receiver_actor if peek else None,
            receiver_lg=peek.receiver_lg if peek else None, message_type=peek.message_type if peek else None,
            message_id=mid, correlation_id=peek.correlation_id if peek else None, findings=findings,
            note=f"HTTP {status}", virtual_time=self.now(tenant))
        if tenant is None:
            self._remember(rec, None, None, ids)
        return Outcome(status, mid, findings, self.error_envelope(findings, peek, tenant), seq=rec.seq)

    def error_envelope(self, findings: list[Finding], peek: Peek | None, tenant: str | None) -> bytes:
        """An ErrorReport envelope answering the refused message (as far as its header could be read)."""
        cat = self.catalogue
        p = peek or Peek(None, None, None, None, None, None, None)
        sender = (p.receiver_actor if _valid_actor(p.receiver_actor, cat) else "cs",
                  p.receiver_lg if p.receiver_lg and _LG_RE.match(p.receiver_lg) else self.sut_lg)
        receiver = (p.sender_actor if _valid_actor(p.sender_actor, cat) else "juki",
                    p.sender_lg if p.sender_lg and _LG_RE.match(p.sender_lg) else self.sut_lg)
        mid = p.message_id if p.message_id and _ID_RE.match(p.message_id) else None
        h = header("ErrorReport", (sender[0] or "cs", sender[1]), (receiver[0] or "juki", receiver[1]),
                   sent_at=self.now(tenant), correlation_id=mid)
        return build(h, error_report(findings, p.message_id))

    # ------------------------------------------------------------------------------------- delivery

    def _message(self, root: etree._Element, arrow: int | None, tenant: str | None, data: bytes,
                 hdr: Mapping[str, str | None] | None = None) -> Message:
        """The simulator's view; ``hdr`` (the validator's header dict of a valid envelope) saves a re-read."""
        if hdr is None:
            return Message(read_header(root), body_of(root), arrow, tenant, data)
        h = Header(message_type=hdr["message_type"] or "", sender_actor=hdr["sender_actor"] or "",
                   sender_lg=hdr["sender_lg"] or "", receiver_actor=hdr["receiver_actor"] or "",
                   receiver_lg=hdr["receiver_lg"] or "", sent_at=datetime.fromisoformat(hdr["sent_at"] or ""),
                   business_date=date.fromisoformat(hdr["business_date"] or ""),
                   message_id=hdr["message_id"] or "", correlation_id=hdr["correlation_id"],
                   retry_reason=hdr["retry_reason"])
        return Message(h, body_of(root), arrow, tenant, data)

    def _apply(self, sim: Simulator, root: etree._Element, arrow: int | None, tenant: str | None, data: bytes,
               direction: str, msg: Message | None = None,
               hdr: Mapping[str, str | None] | None = None) -> Message | None:
        try:
            m = msg or self._message(root, arrow, tenant, data, hdr)
            sim.apply(m, direction)
            return m
        except Exception:
            log.exception("%s.apply(%s) failed", sim.actor, direction)
            return None

    def _schedule(self, d: _Delivery) -> None:
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
            released: list[_Delivery] = []
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

    def _enqueue(self, d: _Delivery) -> None:
        key = (d.peek.receiver_actor or "", d.tenant)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
        lane.append(d)
        if key not in self._lane_tasks:
            self._lane_tasks[key] = asyncio.create_task(self._run_lane(key, lane), name=f"lane-{key}")

    async def _run_lane(self, key: tuple[str, str | None], lane: deque[_Delivery]) -> None:
        """Deliver a receiver's messages for one tenant in order.

        In-process simulators take a batch at a time concurrently: each ``react`` runs up to its first
        ``await`` in queue order, so what they send is submitted (and sequenced) in that order. HTTP targets
        take one message at a time, so a retried message holds back the ones after it (store-and-forward).
        """
        local = key[0] in self.sims
        try:
            while lane:
                if local:
                    batch = [lane.popleft() for _ in range(min(len(lane), 256))]
                    await asyncio.gather(*(self._deliver_local(d) for d in batch))
                else:
                    await self._deliver_http(lane.popleft())
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

    async def _react(self, d: _Delivery) -> etree._Element | None:
        """apply(in) then react on the receiving simulator; may raise Refusal."""
        sim = self.sims[d.peek.receiver_actor or ""]
        msg = self._apply(sim, d.root, d.arrow, d.tenant, d.data, "in", d.msg, hdr=d.hdr)
        if msg is None:
            return None
        return await sim.react(msg)

    async def _deliver_local(self, d: _Delivery) -> None:
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
                    await self._delivery_failed(d, [_finding("GW-SIMULATOR", f"simulator {actor} failed: "
                                                             f"{exc!r}")], "simulator failure")

    async def _refused_by(self, d: _Delivery, findings: list[Finding]) -> TraceRecord:
        """The receiving simulator refused the message: record it as refused with the simulator's finding."""
        p = d.peek
        return await self.store.append(
            kind="refused", verdict="refused", payload=d.data, tenant=d.tenant, arrow=d.arrow,
            sender_actor=p.sender_actor, sender_lg=p.sender_lg, receiver_actor=p.receiver_actor,
            receiver_lg=p.receiver_lg, message_type=d.mt.id, message_id=p.message_id,
            correlation_id=p.correlation_id, findings=findings,
            note=f"refused by simulator {p.receiver_actor}",
            virtual_time=self.now(d.tenant))

    async def _delivery_failed(self, d: _Delivery, findings: list[Finding], note: str) -> TraceRecord:
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
        hdrs = {"Authorization": f"Bearer {token or target.token}", "Content-Type": _XML, **(headers or {})}
        limit = aiohttp.ClientTimeout(total=timeout) if timeout is not None else None
        async with self.http.post(target.url, data=data, headers=hdrs, ssl=target.ssl or True,
                                  timeout=limit) as resp:
            return resp.status, await resp.read()

    async def _record_attempt(self, d: _Delivery, attempt: int, attempts: int, status: int | None,
                              answer: bytes, error: str | None, elapsed: float, giving_up: bool) -> None:
        ok = status is not None and status < 300
        what = f"HTTP {status}" if status is not None else f"error {error}"
        note = f"attempt {attempt}/{attempts}: {what} in {elapsed * 1000:.1f} ms"
        if giving_up and not ok:
            note += "; giving up"
        await self.store.append(
            kind="delivery", verdict="delivered" if ok else "failed", payload=answer[:_MAX_STORED_ANSWER],
            tenant=d.tenant, arrow=d.arrow, sender_actor=d.peek.sender_actor, sender_lg=d.peek.sender_lg,
            receiver_actor=d.peek.receiver_actor, receiver_lg=d.peek.receiver_lg, message_type=d.mt.id,
            message_id=d.peek.message_id, correlation_id=d.peek.correlation_id, note=note,
            virtual_time=self.now(d.tenant))

    async def _post_with_retries(self, d: _Delivery, target: Target, *, once: bool = False
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

    async def _deliver_http(self, d: _Delivery) -> None:
        target = self._target(d.peek.receiver_actor or "")
        if target is not None:
            await self._post_with_retries(d, target)

    async def _sync(self, d: _Delivery) -> Outcome:
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
            if body is None:
                return await self._sync_failed(d, 502, "GW-NO-ANSWER",
                                               f"simulator {receiver} gave no answer to a sync {d.mt.id}")
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
                return Outcome(status, mid, [_finding("GW-ANSWER", f"{receiver} answered HTTP {status}")],
                               answer)
        return await self._record_answer(d, answer, sim)

    async def _sync_failed(self, d: _Delivery, status: int, code: str, message: str) -> Outcome:
        fs = [_finding(code, message)]
        await self._delivery_failed(d, fs, f"HTTP {status}")
        return Outcome(status, d.peek.message_id, fs, self.error_envelope(fs, d.peek, d.tenant))

    async def _record_answer(self, d: _Delivery, answer: bytes, responder: Simulator | None,
                             arrow: int | None = None) -> Outcome:
        checked = self.validator.check(answer)
        root: etree._Element | None = checked.root
        p = peek_header(root)
        findings = list(checked.findings)
        expected = d.mt.response
        if p is not None and expected and p.message_type != expected:
            findings.append(_finding("GW-RESPONSE", f"a {d.mt.id} is answered by {expected}, not "
                                     f"{p.message_type}", "/j:Envelope/j:Header/j:MessageType"))
        if p is not None and p.correlation_id != d.peek.message_id:
            findings.append(_finding("GW-RESPONSE", "the answer's CorrelationId must be the request's "
                                     f"MessageId {d.peek.message_id}",
                                     "/j:Envelope/j:Header/j:CorrelationId"))
        ok = root is not None and p is not None and not findings
        resp_arrow = arrow if arrow is not None else d.mt.response_arrows.get(d.arrow)
        tenant = d.tenant
        ids: list[str] = []
        if root is not None:
            ids = body_ids(root)
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

    # ------------------------------------------------------------------------------ counter proxy

    async def counter(self, data: bytes, tenant: str | None) -> Outcome:
        """The harness's counter operation: record on the op's ``in`` arrow, forward, record ``out``."""
        checked = self.validator.check(data)
        root: etree._Element | None = checked.root
        peek = peek_header(root)
        if root is None or peek is None or not checked.ok:
            fs = list(checked.findings) or [_finding("XML-SYNTAX", "not an envelope")]
            return await self._refuse(400, fs, data, peek, tenant=tenant)
        route = (peek.message_type, peek.sender_actor, peek.receiver_actor)
        if route != ("CounterRequest", "counter", "juki"):
            return await self._refuse(404, [_finding("GW-NO-ARROW", "/counter takes a CounterRequest from "
                                                     "counter to juki")], data, peek, tenant=tenant)
        body = body_of(root)
        op_el = next((c for c in body if isinstance(c.tag, str) and etree.QName(c).localname in COUNTER_OPS),
                     None)
        op = self.catalogue.counter_operations.get(COUNTER_OPS[etree.QName(op_el).localname]) \
            if op_el is not None else None
        if op is None:
            return await self._refuse(400, [_finding("ENV-COUNTER-OP", "no known operation element in the "
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
        d = _Delivery(data, root, peek, op.arrow_in, tenant, mt, rec.seq)
        status, answer = await self._post_with_retries(d, self.counter_target, once=True)
        if status is None:
            return await self._sync_failed(d, 503, "GW-DOWN", "the SUT's counter adapter cannot be reached")
        if status != 200:
            return Outcome(status, peek.message_id, [_finding("GW-ANSWER", f"the counter adapter answered "
                                                              f"HTTP {status}")], answer)
        return await self._record_answer(d, answer, None, op.arrow_out)

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
        d = _Delivery(data, root, peek, arrow, tenant, mt, 0, record=False)
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

    # ------------------------------------------------------------------------------------ queries

    def records_for(self, tenant: str | None, *, since: int = 0, arrow: int | None = None,
                    message_type: str | None = None, kind: str | None = None, verdict: str | None = None,
                    message_id: str | None = None, correlation_id: str | None = None,
                    sender: str | None = None, receiver: str | None = None) -> list[TraceRecord]:
        """Committed records of a tenant (including those attributed late), filtered, in seq order."""
        q_: dict[str, Any] = {"arrow": arrow, "message_type": message_type, "kind": kind,
                              "message_id": message_id, "correlation_id": correlation_id}
        out = self.store.query(tenant=tenant, since_seq=since, arrow=arrow, message_type=message_type,
                               kind=kind, message_id=message_id, correlation_id=correlation_id)
        if tenant is not None:
            late = [s for s in self._late_by_tenant.get(tenant, ()) if s > since]
            if late:
                extra = [r for s in late for r in self.store.query(since_seq=s - 1, limit=1)
                         if r.seq == s and all(v is None or getattr(r, k) == v for k, v in q_.items())]
                out = sorted([*out, *extra], key=lambda r: r.seq)
        if verdict or sender or receiver:
            out = [r for r in out if (verdict is None or r.verdict == verdict)
                   and (sender is None or r.sender_actor == sender)
                   and (receiver is None or r.receiver_actor == receiver)]
        return out

    async def wait(self, tenant: str | None, count: int, timeout: float, **filters: Any
                   ) -> tuple[bool, list[TraceRecord]]:
        """Wait until ``count`` records of the tenant match (late attribution counts); (ok, found).

        Incremental: after the first scan only records committed since are read, except when records were
        attributed late (then the tenant's records are read again).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        since = int(filters.pop("since", 0) or 0)
        attributed = self._attributed
        mark = self.store.last_seq
        found = self.records_for(tenant, since=since, **filters)
        while len(found) < count:
            left = deadline - loop.time()
            if left <= 0:
                return False, found
            waiter = asyncio.ensure_future(self.store.wait_for(lambda r: True, timeout=left, since_seq=mark))
            late = asyncio.ensure_future(attributed.wait())
            done, pending = await asyncio.wait({waiter, late}, timeout=left,
                                               return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if waiter in done:
                exc = waiter.exception()
                if exc is not None and not isinstance(exc, TimeoutError):
                    raise exc
            if attributed.is_set():
                attributed = self._attributed
                mark = self.store.last_seq
                found = self.records_for(tenant, since=since, **filters)
            else:
                new_mark = self.store.last_seq
                found.extend(self.records_for(tenant, since=max(since, mark), **filters))
                mark = new_mark
        return True, found

    def record_json(self, rec: TraceRecord) -> dict[str, Any]:
        d = record_to_json(rec)
        d["attributed_tenant"] = self.tenant_of(rec)
        return d

    # ------------------------------------------------------------------------------------- replay

    def _replay(self) -> None:
        """Rebuild tenants, identifier index, accepted ids and simulator state from the trace."""
        n = 0
        for rec in self.store.query():
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
        ids = body_ids(root) if rec.kind != "refused" else []
        self._remember(rec, tenant, peek, ids)
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
            self.set_hours(tid, enforce=ev.get("enforce"), maintenance=ev.get("maintenance", ()))
        elif kind == "register" and tid is not None:
            for v in ev.get("values", ()):
                self.register(tid, v)

    # ------------------------------------------------------------------------------------ HTTP app

    def app(self) -> web.Application:
        """The HTTP surface: /msg, /counter, /health, /direct/{actor}, /sim/{actor}, /trace, /control."""
        from simulators.control import control_app  # control imports this module
        from simulators.trace import trace_app

        app = web.Application(client_max_size=4 * 1024 * 1024)
        app[GATEWAY_KEY] = self
        app.router.add_post("/msg", _msg)
        app.router.add_post("/counter", _counter)
        app.router.add_get("/health", _health)
        app.router.add_post("/direct/{actor}", _direct)
        tapp = trace_app(self.store)
        tapp.middlewares.append(_control_only(self.control_credential))
        app.add_subapp("/trace", tapp)
        app.add_subapp("/control", control_app(self))
        for actor, sim in self.sims.items():
            sub = sim.app()
            if sub is not None:
                app.add_subapp(f"/sim/{actor}", sub)
        return app


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def _ids_in_data(data: Any) -> list[str]:
    """Identifier values in seed data (keys like juminhyo_code, my_number, card_no ...)."""
    keys = {re.sub(r"(?<!^)(?=[A-Z])", "_", e).lower() for e in ID_ELEMENTS} | set(ID_ELEMENTS)
    out: list[str] = []
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, Mapping):
            for k, v in x.items():
                if k in keys and isinstance(v, str):
                    out.append(v)
                else:
                    stack.append(v)
        elif isinstance(x, list | tuple):
            stack.extend(x)
    return out


def _registry() -> Mapping[str, Callable[[Gateway], Simulator]]:
    """``simulators.registry.SIMULATORS``, imported late (simulator modules import the port types)."""
    from simulators.registry import SIMULATORS

    return SIMULATORS


def _xml(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/xml", charset="utf-8") \
        if body else web.Response(status=status)


async def _msg(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    actors = gw.credentials.get(request.headers.get("Authorization", ""))
    data = await request.read()
    out = await gw.submit(data, actors=actors)
    return _xml(out.status, out.body)


async def _counter(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    data = await request.read()
    if request.headers.get("Authorization", "") != gw.control_credential:
        out = await gw.submit(data, actors=None)
        return _xml(out.status, out.body)
    tenant = request.headers.get("X-Juki-Tenant") or None
    if tenant is not None and tenant not in gw.tenants:
        return web.json_response({"findings": [{"code": "GW-TENANT", "message": f"no tenant {tenant!r}"}]},
                                 status=404)
    out = await gw.counter(data, tenant)
    return _xml(out.status, out.body)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _direct(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    auth = request.headers.get("Authorization", "")
    if auth != gw.control_credential and auth not in gw.credentials:
        return web.Response(status=401)
    data = await request.read()
    try:
        status, body = await gw.direct(request.match_info["actor"], data)
    except HarnessError:
        status, body = 400, b""
    return _xml(status, body)


def _control_only(credential: str) -> Any:
    @web.middleware
    async def mw(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization", "") != credential:
            return web.json_response({"findings": [{"code": "GW-AUTH", "message": "the control token is "
                                                    "required (Authorization: Bearer <token>)"}]}, status=401)
        resp: web.StreamResponse = await handler(request)
        return resp
    return mw


def control_only(credential: str) -> Any:
    """Middleware: only the control token passes (control API, trace API)."""
    return _control_only(credential)


__all__ = [
    "COUNTER_OPS", "GATEWAY_KEY", "ID_ELEMENTS", "SUT_ACTORS", "Gateway", "Outcome", "Peek", "Target",
    "Tenant", "control_only", "peek_header",
]
