"""Tenancy: which scenario a message belongs to, tenants' lifecycle, and reading a tenant's records.

A tenant is found by (1) a known message/correlation id, (2) a peer lgCode in Sender/Receiver, (3) an
identifier in the body (one precompiled XPath). A record written before its tenant was known is matched at
query time once one of its identifiers is registered (``records_for``/``wait``).

Bounded by design (issue 10): identifiers registered by a control action (seed, register) stay while their
tenant lives and leave with it; identifiers learned from traffic (message ids, body ids) are kept in a
capped map (oldest forgotten first); records without a tenant wait for late attribution in a capped map too.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from lxml import etree

from conformance.errors import HarnessError
from conformance.record import TraceRecord, record_to_json
from conformance.xmlsafe import parse
from simulators.clock import OperatingCalendar
from simulators.gateway.base import GatewayBase
from simulators.gateway.values import IDS_ANY, Peek, Tenant, body_ids, finding, ids_in_data


class TenancyMixin(GatewayBase):
    """Identifier index, late attribution, tenants (create/delete/hours/seed), tenant-scoped reads."""

    def tenant_by_id(self, value: str) -> str | None:
        """The tenant an identifier (or message id) is attributed to, if memory still knows it."""
        t = self._tenant_by_id.get(value)
        return t if t is not None else self._learned.get(value)

    def register(self, tenant: str | None, value: str) -> None:
        """Attribute an identifier to a tenant (kept while the tenant lives); earlier records follow."""
        if tenant is None or not value:
            return
        if self._tenant_by_id.setdefault(value, tenant) != tenant:
            return  # first registration wins: identifiers are unique per tenant's factory
        self._ids_of_tenant.setdefault(tenant, set()).add(value)
        seqs = self._pending_ids.pop(value, None)
        if seqs:
            self._attribute_late(seqs, tenant)

    def _learn(self, tenant: str, value: str) -> None:
        """An identifier seen in a tenant's traffic: remembered in the capped map."""
        if value in self._tenant_by_id or self._learned.setdefault(value, tenant) != tenant:
            return
        seqs = self._pending_ids.pop(value, None)
        if seqs:
            self._attribute_late(seqs, tenant)

    def _attribute_late(self, seqs: Iterable[int], tenant: str) -> None:
        more: list[str] = []
        for seq in seqs:
            ids = self._pending_seq.pop(seq)
            if ids is None or seq in self._late:
                continue
            self._late[seq] = tenant
            self._late_by_tenant.setdefault(tenant, []).append(seq)
            self._unpark(seq, ids)
            more.extend(v for v in ids if self.tenant_by_id(v) is None)
        self._attributed.set()
        self._attributed = asyncio.Event()
        for v in more:
            self._learn(tenant, v)

    def tenant_of(self, rec: TraceRecord) -> str | None:
        """A record's tenant: as written, or as attributed later."""
        return rec.tenant if rec.tenant is not None else self._late.get(rec.seq)

    def _attribute(self, peek: Peek, root: etree._Element) -> tuple[str | None, list[str]]:
        for v in (peek.correlation_id, peek.message_id):
            if v is not None:
                t = self.tenant_by_id(v)
                if t is not None:
                    return t, []
        for lg in (peek.sender_lg, peek.receiver_lg):
            if lg is not None and lg != self.sut_lg:
                t = self._tenant_by_lg.get(lg)
                if t is not None:
                    return t, []
        ids = body_ids(root)
        for v in ids:
            t = self.tenant_by_id(v)
            if t is not None:
                return t, ids
        return None, ids

    def _tenant_of_refused(self, peek: Peek) -> str | None:
        """A refused message's tenant, as far as its header tells."""
        for v in (peek.correlation_id, peek.message_id):
            if v is not None:
                t = self.tenant_by_id(v)
                if t is not None:
                    return t
        for lg in (peek.sender_lg, peek.receiver_lg):
            if lg is not None and lg in self._tenant_by_lg:
                return self._tenant_by_lg[lg]
        return None

    def _remember(self, rec: TraceRecord, tenant: str | None, peek: Peek | None,
                  ids: Iterable[str]) -> None:
        """After a record is durable: learn its ids for its tenant, or park them for late attribution."""
        if tenant is not None:
            if peek is not None and peek.message_id:
                self._learn(tenant, peek.message_id)
            for v in ids:
                self._learn(tenant, v)
            return
        keys = tuple(dict.fromkeys(v for v in (*ids, peek.message_id if peek else None,
                                                peek.correlation_id if peek else None) if v))
        if not keys:
            return
        known = next((t for t in map(self.tenant_by_id, keys) if t is not None), None)
        seq = rec.seq
        forgotten = self._pending_seq.put(seq, keys)
        if forgotten is not None:  # the oldest parked record left memory: so do its index entries
            self._unpark(*forgotten)
        parked = self._pending_ids
        for v in keys:
            parked[v] = park(parked.get(v), seq)
        if known is not None:  # registered while the record was being committed
            self._attribute_late([seq], known)

    def _unpark(self, seq: int, keys: Iterable[str]) -> None:
        """The record ``seq`` is no longer parked under ``keys`` (attributed, or forgotten)."""
        parked = self._pending_ids
        for v in keys:
            cur = parked.get(v)
            if cur is not None:
                rest = unpark(cur, seq)
                if rest:
                    parked[v] = rest
                else:
                    del parked[v]

    # ------------------------------------------------------------------------------------ tenants

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
        """Forget a tenant and everything kept for it (identifiers, late attributions, simulator state)."""
        t = self.tenants.pop(tid, None)
        for sim in self.sims.values():
            sim._state.pop(tid, None)
        for v in self._ids_of_tenant.pop(tid, ()):
            if self._tenant_by_id.get(v) == tid:
                del self._tenant_by_id[v]
        self._learned.drop_where(lambda owner: owner != tid)
        for seq in self._late_by_tenant.pop(tid, ()):
            self._late.pop(seq, None)
        if t is None:
            return False
        for p in t.peers:
            self._tenant_by_lg.pop(p.lg_code, None)
        self.clocks.drop(tid)
        self.faults.clear(tid)
        return True

    def set_hours(self, tid: str, *, enforce: bool | None = None,
                  maintenance: Iterable[Mapping[str, Any]] | None = None) -> Tenant:
        """Hours enforcement and maintenance windows; ``maintenance`` given (even empty) replaces the list."""
        t = self.tenants[tid]
        if enforce is not None:
            t.enforce_hours = enforce
        if maintenance is not None:
            windows = [(datetime.fromisoformat(str(m["start"])), datetime.fromisoformat(str(m["end"])),
                        m.get("actors")) for m in maintenance]
            t.calendar.maintenance.clear()
            for start, end, actors in windows:
                t.calendar.add_maintenance(start, end, actors)
        return t

    def seed(self, tid: str | None, actor: str, kind: str, data: dict[str, Any]) -> list[str]:
        """Seed a simulator (no trace record here: ``record_event`` it) and register the identifiers."""
        sim = self.sims.get(actor)
        if sim is None:
            raise HarnessError([finding("GW-ACTOR", f"no simulated actor {actor!r} to seed; simulated: "
                                        f"{', '.join(sorted(self.sims))}")])
        ids: list[str] = []
        xml = data.get("xml")
        if isinstance(xml, str) and xml.strip():
            ids.extend(cast(list[str], IDS_ANY(parse(xml))))
        ids.extend(ids_in_data(data.get("data")))
        try:
            sim.seed(tid, kind, data)
        except (ValueError, KeyError, TypeError) as e:
            raise HarnessError([finding("GW-SEED", f"{actor} cannot take this {kind!r} seed: {e}")]) from e
        for v in ids:
            self.register(tid, v)
        return ids

    # ------------------------------------------------------------------------------------ queries

    def records_for(self, tenant: str | None, *, since: int = 0, arrow: int | None = None,
                    message_type: str | None = None, kind: str | None = None, verdict: str | None = None,
                    message_id: str | None = None, correlation_id: str | None = None,
                    sender: str | None = None, receiver: str | None = None,
                    limit: int | None = None) -> list[TraceRecord]:
        """Committed records of a tenant (including those attributed late), filtered, in seq order; with
        ``limit`` the first ``limit`` of them (a page: ask again with ``since`` = the last seq returned)."""
        q_: dict[str, Any] = {"arrow": arrow, "message_type": message_type, "kind": kind,
                              "message_id": message_id, "correlation_id": correlation_id}
        post = bool(verdict or sender or receiver)  # filters the store cannot apply: page after them
        page = None if post else limit
        out = self.store.query(tenant=tenant, since_seq=since, arrow=arrow, message_type=message_type,
                               kind=kind, message_id=message_id, correlation_id=correlation_id, limit=page)
        if tenant is not None:
            late = [s for s in self._late_by_tenant.get(tenant, ()) if s > since]
            if late and page is not None and len(out) == page:
                late = [s for s in late if s < out[-1].seq]  # the rest belong to a later page
            if late:
                extra = [r for s in late for r in self.store.query(since_seq=s - 1, limit=1)
                         if r.seq == s and all(v is None or getattr(r, k) == v for k, v in q_.items())]
                out = sorted([*out, *extra], key=lambda r: r.seq)
        if post:
            out = [r for r in out if (verdict is None or r.verdict == verdict)
                   and (sender is None or r.sender_actor == sender)
                   and (receiver is None or r.receiver_actor == receiver)]
        return out if limit is None else out[:limit]

    async def wait(self, tenant: str | None, count: int, timeout: float, **filters: Any
                   ) -> tuple[bool, list[TraceRecord]]:
        """Wait until ``count`` records of the tenant match (late attribution counts); (ok, found).

        Incremental: after the first scan only records committed since are read, except when records were
        attributed late (then the tenant's records are read again).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        since = int(filters.pop("since", 0) or 0)
        limit: int | None = filters.get("limit")
        attributed = self._attributed
        mark = self.store.last_seq
        found = self.records_for(tenant, since=since, **filters)
        while len(found) < count:
            left = deadline - loop.time()
            if left <= 0:
                return False, found[:limit]
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
        return True, found[:limit]

    def record_json(self, rec: TraceRecord) -> dict[str, Any]:
        d = record_to_json(rec)
        d["attributed_tenant"] = self.tenant_of(rec)
        return d


#: parked seqs of one identifier kept as a tuple up to this many (see ``park``)
SMALL_SEQS = 8

Parked = tuple[int, ...] | dict[int, None]


def park(cur: Parked | None, seq: int) -> Parked:
    """The parked seqs of one identifier with ``seq`` added: a tuple while few, then a dict used as an ordered
    set, so that an identifier recurring in many records (a household head's 住民票コード, or one in every
    message of a load run) takes and gives up a seq in O(1) — a record leaves the map each time one enters
    once it is full, and a sweep over the whole map stalled the event loop for 70–110 ms (s23). Neither a
    tuple of ints nor a dict of ints is tracked by the cyclic collector, so full collections never walk them."""
    if cur is None:
        return (seq,)
    if type(cur) is dict:
        cur[seq] = None
        return cur
    if len(cur) < SMALL_SEQS:
        return (*cur, seq)
    grown = dict.fromkeys(cur)
    grown[seq] = None
    return grown


def unpark(cur: Parked, seq: int) -> Parked:
    """``cur`` without ``seq`` (empty when it was the last)."""
    if type(cur) is dict:
        cur.pop(seq, None)
        return cur
    return tuple(s for s in cur if s != seq)
