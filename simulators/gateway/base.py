"""The gateway's state and lifecycle (``GatewayBase``); the parts (intake, delivery, tenancy, replay) are
mixins over it, composed in ``simulators.gateway.core.Gateway``.

Why mixins over one state: every part reads the same few tables (simulators, targets, tenants, the trace
store), and a message crosses all parts in one call chain; the split is by responsibility, each module a
few hundred lines, with the state declared once here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance.catalogue import Catalogue
from conformance.envelope import Header, body_of, build, error_report, header, read_header
from conformance.errors import Finding
from conformance.record import TraceRecord
from conformance.xmlsafe import expensive
from simulators.base import Message, Simulator
from simulators.clock import ClockRegistry, OperatingCalendar, OperatingHours
from simulators.config import HarnessConfig, client_ssl_context
from simulators.faults import FaultPlan, Reorderer
from simulators.gateway.auth import Credentials, Principal
from simulators.gateway.bounded import CappedMap, Seen
from simulators.gateway.values import (
    ID_RE,
    LG_RE,
    NO_PEEK,
    Delivery,
    Peek,
    Target,
    Tenant,
    ValidatorLike,
    default_validator,
    valid_actor,
)
from simulators.trace import TraceStore

if TYPE_CHECKING:
    from simulators.gateway.core import Gateway

log = logging.getLogger("juki.gateway")

#: deliveries queued (all lanes) before external intake waits, then answers 503 GW-BUSY
LANE_LIMIT = 1024
#: deliveries to in-process simulators queued, plus messages being taken in, before external intake waits.
#: Small on purpose: a message's tree is used again when it is delivered (apply, react, relay); with up to
#: LANE_LIMIT deliveries between intake and delivery the tree has gone cold in the CPU's caches and every
#: lxml call on it costs 2–4 × more (in process: 0.66 × the CPU per message with 32 instead of 1,024).
#: Deliveries to HTTP receivers (the SUT, real actors) are slow for reasons of their own and keep the large
#: LANE_LIMIT allowance, so a slow SUT does not make intake answer 503 GW-BUSY sooner.
LOCAL_LIMIT = 32
#: how long external intake waits for lane space before answering 503 GW-BUSY
BUSY_WAIT_S = 0.5
#: expensive documents validated off the event loop at the same time (more wait for a slot)
OFFLOOP_WORKERS = 2
#: identifiers learned from traffic kept in memory (explicit registrations are kept while their tenant lives)
LEARNED_IDS = 65_536
#: records written before their tenant was known, kept for late attribution (oldest forgotten first)
PENDING_RECORDS = 16_384


class GatewayBase:
    """State shared by the parts; lifecycle (start/close); the simulators' view of a message."""

    def __init__(self, config: HarnessConfig, store: TraceStore, *, catalogue: Catalogue | None = None,
                 validator: ValidatorLike | None = None, clocks: ClockRegistry | None = None,
                 faults: FaultPlan | None = None,
                 simulators: Mapping[str, Callable[[Gateway], Simulator]] | None = None,
                 reorder_flush_s: float = 0.5, lane_limit: int = LANE_LIMIT,
                 busy_wait_s: float = BUSY_WAIT_S, local_limit: int = LOCAL_LIMIT) -> None:
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
        self.credentials = Credentials(config)
        self.control_credential = self.credentials.control
        self.targets: dict[str, Target] = {
            a: Target(a, c.url or "", c.token or "", client_ssl_context(c.tls_ca, c.tls_cert, c.tls_key))
            for a, c in config.real_actors.items()}
        self.sut_target = self.counter_target = Target("sut", "", "", None)
        self.set_sut(config)
        # tenancy (simulators.gateway.tenancy): explicit registrations per tenant, learned ids bounded
        self._tenant_by_id: dict[str, str] = {}
        self._ids_of_tenant: dict[str, set[str]] = {}
        self._learned: CappedMap[str, str] = CappedMap(LEARNED_IDS)
        self._tenant_by_lg: dict[str, str] = {}
        # identifier -> seqs of records without tenant (see tenancy.park)
        self._pending_ids: dict[str, tuple[int, ...] | dict[int, None]] = {}
        self._pending_seq: CappedMap[int, tuple[str, ...]] = CappedMap(PENDING_RECORDS)
        self._late: dict[int, str] = {}  # seq -> tenant attributed after the record was written
        self._late_by_tenant: dict[str, list[int]] = {}
        self._attributed = asyncio.Event()
        # intake: (sender actor, message id) accepted once — bounded, the trace answers for old ones
        self._accepted_ids = Seen(self._accepted_in_trace)
        self._principals: dict[str, Principal] = {}
        # delivery (simulators.gateway.delivery): bounded lanes
        self._lanes: dict[tuple[str, str | None], deque[Delivery]] = {}
        self._lane_tasks: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._reorderers: dict[tuple[str | None, int], Reorderer[Delivery]] = {}
        self._reorder_timers: dict[tuple[str | None, int], asyncio.TimerHandle] = {}
        self._reorder_flush_s = reorder_flush_s
        self._background: set[asyncio.Task[Any]] = set()
        self.lane_limit = lane_limit
        self.local_limit = local_limit
        self.busy_wait_s = busy_wait_s
        self.queued = 0  # deliveries in lanes, not finished
        self.queued_local = 0  # of which to in-process simulators
        self.intake = 0  # external messages admitted and not yet answered
        self._space = asyncio.Event()
        self._space.set()
        self.busy = 0  # 503 GW-BUSY answers since start
        self._offloop: asyncio.Semaphore | None = None  # created on the running loop when first needed
        self.offloaded = 0  # documents validated in a worker thread since start
        self.http: aiohttp.ClientSession | None = None
        self._closing = False
        self.replayed = 0
        #: accepted messages per arrow since start (cheap progress counter for benchmarks and health)
        self.accepted: dict[int, int] = {}
        factories = simulators if simulators is not None else _registry()
        me: Any = self
        for actor in config.simulated_actors:
            make = factories.get(actor)
            if make is not None:
                self.sims[actor] = make(me)
        self.missing_simulators = sorted(a for a in config.simulated_actors if a not in self.sims)

    def set_sut(self, config: HarnessConfig) -> None:
        """Point deliveries at the SUT of ``config`` (the runtime learns the reference SUT's URL late)."""
        self.config = config
        s = config.sut
        self.sut_target = Target("sut", s.inbound_url, config.gateway.tokens.gateway_to_sut,
                                 client_ssl_context(s.tls_ca, s.tls_cert, s.tls_key))
        self.counter_target = Target("sut-counter", s.counter_url, config.gateway.tokens.gateway_to_sut,
                                     self.sut_target.ssl)

    def _accepted_in_trace(self, key: tuple[str, str]) -> bool:
        """Was (sender, MessageId) accepted before? Asked of the trace (message_id index) when memory forgot."""
        sender, mid = key
        return any(r.verdict == "accepted" and (r.sender_actor or "") == sender
                   for r in self.store.query(message_id=mid, kind="message"))

    # ---------------------------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        """Open the HTTP client and rebuild state from the trace (apply/seed only: nothing is re-sent)."""
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.gateway.delivery.timeout_seconds),
            connector=aiohttp.TCPConnector(limit=256))
        self._replay()
        return self

    def _replay(self) -> None:  # simulators.gateway.replay overrides
        raise NotImplementedError

    def _flush_reorder(self, key: tuple[str | None, int]) -> None:  # simulators.gateway.delivery overrides
        raise NotImplementedError

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

    # ---------------------------------------------------------------------------------- helpers

    def now(self, tenant: str | None) -> datetime:
        return self.clocks.get(tenant).now()

    async def record_event(self, event: str, tenant: str | None, payload: Mapping[str, Any]) -> TraceRecord:
        """A control action, recorded so a restart can replay it (tenants, seeds, clock, hours)."""
        body = json.dumps({"event": event, **payload}, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return await self.store.append(kind="event", verdict="info", payload=body, tenant=tenant, note=event,
                                       virtual_time=self.now(tenant))

    async def check(self, data: bytes) -> Any:
        """The validator's ``Checked``; an expensive document (``xmlsafe.expensive``) in a worker thread, at
        most ``OFFLOOP_WORKERS`` at a time, so the event loop (``/health``, small messages) keeps answering.
        lxml releases the GIL while parsing and validating, and builds a schema context per call."""
        if not expensive(data):
            return self.validator.check(data)
        if self._offloop is None:
            self._offloop = asyncio.Semaphore(OFFLOOP_WORKERS)
        async with self._offloop:
            self.offloaded += 1
            return await asyncio.to_thread(self.validator.check, data)

    def error_envelope(self, findings: list[Finding], peek: Peek | None, tenant: str | None) -> bytes:
        """An ErrorReport envelope answering the refused message (as far as its header could be read)."""
        cat = self.catalogue
        p = peek or NO_PEEK
        sender = (p.receiver_actor if valid_actor(p.receiver_actor, cat) else "cs",
                  p.receiver_lg if p.receiver_lg and LG_RE.match(p.receiver_lg) else self.sut_lg)
        receiver = (p.sender_actor if valid_actor(p.sender_actor, cat) else "juki",
                    p.sender_lg if p.sender_lg and LG_RE.match(p.sender_lg) else self.sut_lg)
        mid = p.message_id if p.message_id and ID_RE.match(p.message_id) else None
        h = header("ErrorReport", (sender[0] or "cs", sender[1]), (receiver[0] or "juki", receiver[1]),
                   sent_at=self.now(tenant), correlation_id=mid)
        return build(h, error_report(findings, p.message_id))

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


def _registry() -> Mapping[str, Callable[[Gateway], Simulator]]:
    """``simulators.actors.SIMULATORS``, imported late (simulator modules import the port types)."""
    from simulators.actors import SIMULATORS

    return SIMULATORS
