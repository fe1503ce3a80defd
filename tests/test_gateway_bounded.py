"""Issue 10 item 1 at the gateway: per-message state is bounded (capped maps), and what memory forgot is
read back from the trace: a duplicate MessageId long after is still recognised; a tenant's state leaves
with it; replay reads the trace a page at a time."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
from conftest import Control, identity_notice, person_of, post_msg

from conformance.envelope import read_header
from conformance.xmlsafe import parse
from simulators.gateway.bounded import CappedMap, Seen
from simulators.gateway.tenancy import SMALL_SEQS, park, unpark
from simulators.runtime import Runtime


def test_capped_map_forgets_the_oldest_first() -> None:
    m: CappedMap[str, int] = CappedMap(3)
    for i, k in enumerate("abcde"):
        m.setdefault(k, i)
    assert len(m) == 3 and m.evicted == 2
    assert m.get("a") is None and m.get("e") == 4
    assert m.setdefault("c", 99) == 2  # first value wins
    m.drop_where(lambda v: v != 3)
    assert "d" not in m and len(m) == 2


def test_parked_seqs_come_and_go_in_constant_time_and_stay_untracked() -> None:
    cur = None
    for seq in range(SMALL_SEQS + 3):
        cur = park(cur, seq)
    small = park(None, 1)
    gc.collect()  # a tuple is untracked at its first collection, a dict of ints never tracked
    assert not gc.is_tracked(cur) and not gc.is_tracked(small)
    assert isinstance(cur, dict) and list(cur) == list(range(SMALL_SEQS + 3))  # oldest first
    assert list(unpark(cur, 0)) == list(range(1, SMALL_SEQS + 3))
    assert unpark(park(park(None, 1), 2), 1) == (2,) and not unpark((2,), 2)


def test_capped_map_put_returns_what_it_forgot() -> None:
    m: CappedMap[int, str] = CappedMap(2)
    assert m.put(1, "a") is None and m.put(2, "b") is None
    assert m.put(3, "c") == (1, "a") and list(m.items()) == [(2, "b"), (3, "c")] and m.evicted == 1


def test_seen_asks_the_trace_only_when_memory_forgot() -> None:
    asked: list[tuple[str, str]] = []
    old = {("juki", f"M{i}") for i in range(100)}

    def lookup(key: tuple[str, str]) -> bool:
        asked.append(key)
        return key in old

    seen = Seen(lookup, recent=10, bits_log2=16)
    for k in sorted(old):
        seen.add(k)
    assert ("juki", "M99") in seen and not asked  # recent: memory answers
    assert ("juki", "M0") in seen and asked == [("juki", "M0")]  # forgotten: the trace answers
    misses = sum(("cs", f"X{i}") in seen for i in range(1000))
    assert misses == 0 and len(asked) < 50  # the Bloom filter spares the trace almost every new key


async def test_state_stays_bounded_and_an_old_duplicate_is_still_refused_delivery(
        harness: Runtime, http: aiohttp.ClientSession) -> None:
    gw = harness.gateway
    gw._accepted_ids._recent.cap = 4
    gw._pending_seq.cap = 8
    gw._learned.cap = 8
    first = identity_notice(500)
    assert (await post_msg(http, harness, first))[0] == 202
    for i in range(1, 40):
        assert (await post_msg(http, harness, identity_notice(500 + i)))[0] == 202
    await asyncio.sleep(0.3)  # relays (cs -> pref) are sent too
    assert len(gw._accepted_ids._recent) <= 4 and len(gw._pending_seq) <= 8 and len(gw._learned) <= 8
    # the identifier index holds exactly the records still parked: a forgotten record leaves it at once
    index = {(v, seq) for v, seqs in gw._pending_ids.items() for seq in seqs}
    assert index == {(v, seq) for seq, keys in gw._pending_seq.items() for v in keys}
    mid = read_header(parse(first)).message_id
    relays_before = len(harness.store.query(arrow=5, correlation_id=mid))
    assert (await post_msg(http, harness, first))[0] == 202  # idempotent for the sender ...
    await asyncio.sleep(0.3)
    recs = harness.store.query(message_id=mid, kind="message")
    assert "duplicate MessageId" in (recs[-1].note or "")  # ... recognised from the trace ...
    assert len(harness.store.query(arrow=5, correlation_id=mid)) == relays_before  # ... not delivered again
    assert gw._accepted_ids.lookups >= 1


async def test_a_deleted_tenant_takes_its_identifiers_along(harness: Runtime, control: Control) -> None:
    gw = harness.gateway
    t = (await control.tenant())["tenant"]
    values = [person_of(600 + i) for i in range(5)]
    await control("POST", f"/tenants/{t}/register", {"values": values}, expect=200)
    assert all(gw.tenant_by_id(v) == t for v in values)
    await control("DELETE", f"/tenants/{t}", expect=200)
    assert all(gw.tenant_by_id(v) is None for v in values)
    assert t not in gw._ids_of_tenant and t not in gw._late_by_tenant


async def test_long_lived_state_stays_out_of_the_cyclic_collectors_way(
        harness: Runtime, http: aiohttp.ClientSession) -> None:
    """Every full collection walks what the collector tracks; a long run's parked identifiers and the
    prefecture's persons are built of strings, numbers and tuples, which it untracks (a full collection after
    20,000 messages went from ~120 ms to ~14 ms, in `serve` from ~18 to ~10 ms). A list or dict slipped into
    them would make this fail: the collector never untracks a tuple that holds one."""
    gw = harness.gateway
    for i in range(30):
        assert (await post_msg(http, harness, identity_notice(700 + i)))[0] == 202
    pref = gw.sims["pref"]
    persons = pref.state(None)["persons"]
    for _ in range(50):
        if len(persons) >= 30:
            break
        await asyncio.sleep(0.05)
    assert len(persons) >= 30 and gw._pending_ids
    for _ in range(8):  # nested tuples may take a few collections to be untracked, level by level
        gc.collect()
    tracked = [jc for jc, p in persons.items() if gc.is_tracked(p)]
    assert not tracked, f"pref persons still tracked by the collector: {tracked[:3]}"
    assert not [v for v in gw._pending_ids.values() if gc.is_tracked(v)]
    snap = pref.snapshot(None)["persons"][person_of(700)]  # the control API still shows named fields
    assert snap["history"][0]["seq"] == 1 and snap["keys"]["sex"] in ("1", "2")


def test_a_tenants_state_is_capped_too() -> None:
    """A load run's tenant lives as long as the run: its maps forget the oldest entries like untenanted ones."""
    from simulators.base import TENANT_CAP, UNTENANTED_CAP, CappedDict, Simulator

    sim = Simulator.__new__(Simulator)
    sim._state = {}
    sim.new_state = lambda: {"persons": {}, "n": 0}  # type: ignore[method-assign]
    t, u = sim.state("load")["persons"], sim.state(None)["persons"]
    assert isinstance(t, CappedDict) and t.cap == TENANT_CAP
    assert isinstance(u, CappedDict) and u.cap == UNTENANTED_CAP
