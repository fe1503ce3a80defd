"""Fault rules: each kind's decision, matching, count, probability, downtime on a virtual clock, the API."""

from __future__ import annotations

import statistics
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.errors import HarnessError
from simulators.clock import JST, VirtualClock
from simulators.faults import (
    CLEAN,
    Decision,
    FaultError,
    FaultMatch,
    FaultPlan,
    FaultRule,
    Reorderer,
    faults_app,
    rule_from_json,
)

NOW = datetime(2026, 3, 30, 10, 0, tzinfo=JST)
TO_CS = {"arrow": 8, "actor": "cs", "message_type": "TennyuTsuchi", "tenant": "t1"}


def decide(plan: FaultPlan, now: datetime = NOW, **over: Any) -> Decision:
    kw: dict[str, Any] = {**TO_CS, **over}
    return plan.decide(now=now, **kw)


def plan_of(*rules: dict[str, Any], seed: int = 7) -> FaultPlan:
    return FaultPlan([rule_from_json(r) for r in rules], seed=seed)


@pytest.mark.parametrize("rule,expected", [
    ({"kind": "latency", "params": {"fixed_ms": 250}}, {"latency_s": 0.25}),
    ({"kind": "error", "params": {"status": 503, "code": "CS-BUSY", "message": "busy"}},
     {"error": FaultError(503, "CS-BUSY", "busy")}),
    ({"kind": "error", "params": {"status": 500}}, {"error": FaultError(500)}),
    ({"kind": "drop"}, {"drop": True}),
    ({"kind": "duplicate"}, {"duplicate": True}),
    ({"kind": "reorder", "params": {"window": 3}}, {"reorder": 3}),
    ({"kind": "downtime"}, {"down": True}),
])
def test_each_kind_decides(rule: dict[str, Any], expected: dict[str, Any]) -> None:
    plan = plan_of({"id": "r", **rule})
    assert decide(plan) == Decision(**expected, rules=("r",))
    assert plan.applied("r") == 1


@pytest.mark.parametrize("match,applies", [
    ({}, True),
    ({"arrow": 8}, True),
    ({"arrow": 9}, False),
    ({"actor": "cs"}, True),
    ({"actor": "pref"}, False),
    ({"message_type": "TennyuTsuchi", "tenant": "t1"}, True),
    ({"message_type": "Other"}, False),
    ({"tenant": "t2"}, False),
])
def test_matching(match: dict[str, Any], applies: bool) -> None:
    plan = plan_of({"kind": "drop", "match": match})
    assert decide(plan).drop is applies
    assert decide(plan).clean is not applies


def test_match_keys_may_be_top_level() -> None:
    rule = rule_from_json({"kind": "drop", "arrow": 9, "actor": "juki"})
    assert rule.match == FaultMatch(arrow=9, actor="juki")


def test_count_limits_applications() -> None:
    plan = plan_of({"id": "twice", "kind": "error", "count": 2, "params": {"status": 500}})
    assert [decide(plan).error is not None for _ in range(4)] == [True, True, False, False]
    assert plan.applied("twice") == 2


def test_count_only_counts_matching_messages() -> None:
    plan = plan_of({"kind": "drop", "count": 1, "match": {"arrow": 9}})
    assert decide(plan, arrow=8) == CLEAN
    assert decide(plan, arrow=9).drop
    assert decide(plan, arrow=9) == CLEAN


def test_probability_is_seeded_and_honoured() -> None:
    rule = {"id": "p", "kind": "drop", "probability": 0.3}
    a = plan_of(rule, seed=42)
    b = plan_of(rule, seed=42)
    seq_a = [decide(a).drop for _ in range(2000)]
    seq_b = [decide(b).drop for _ in range(2000)]
    assert seq_a == seq_b
    assert 500 <= sum(seq_a) <= 700
    assert a.applied("p") == sum(seq_a)
    other = plan_of(rule, seed=43)
    assert [decide(other).drop for _ in range(2000)] != seq_a


def test_rule_rng_does_not_depend_on_other_rules() -> None:
    alone = plan_of({"id": "p", "kind": "drop", "probability": 0.5})
    mixed = plan_of({"id": "q", "kind": "duplicate", "probability": 0.5}, {"id": "p", "kind": "drop",
                                                                           "probability": 0.5})
    assert [decide(alone).drop for _ in range(200)] == [decide(mixed).drop for _ in range(200)]


@pytest.mark.parametrize("probability,expected", [(0.0, 0), (1.0, 50)])
def test_probability_bounds(probability: float, expected: int) -> None:
    plan = plan_of({"kind": "duplicate", "probability": probability})
    assert sum(decide(plan).duplicate for _ in range(50)) == expected


@pytest.mark.parametrize("params,check", [
    ({"dist": "uniform", "low_ms": 100, "high_ms": 200},
     lambda xs: min(xs) >= 0.1 and max(xs) <= 0.2 and 0.14 < statistics.mean(xs) < 0.16),
    ({"dist": "normal", "mean_ms": 300, "stddev_ms": 50},
     lambda xs: 0.29 < statistics.mean(xs) < 0.31 and 0.04 < statistics.stdev(xs) < 0.06),
    ({"dist": "normal", "mean_ms": 0, "stddev_ms": 100}, lambda xs: min(xs) == 0.0),  # clamped at zero
    ({"dist": "lognormal", "median_ms": 200, "sigma": 0.5},
     lambda xs: 0.18 < statistics.median(xs) < 0.22 and max(xs) > 0.4),
])
def test_latency_distributions(params: dict[str, Any], check: Any) -> None:
    plan = plan_of({"kind": "latency", "params": params}, seed=1)
    xs = [decide(plan).latency_s for _ in range(2000)]
    assert check(xs)
    again = plan_of({"kind": "latency", "params": params}, seed=1)
    assert [decide(again).latency_s for _ in range(2000)] == xs


def test_downtime_window_on_the_virtual_clock() -> None:
    clock = VirtualClock(datetime(2026, 3, 30, 11, 0, tzinfo=JST), frozen=True)
    plan = plan_of({"id": "cs-down", "kind": "downtime", "match": {"actor": "cs"},
                    "params": {"from": "2026-03-30T12:00:00+09:00", "to": "2026-03-30T13:00:00"}})
    assert not decide(plan, clock.now()).down
    clock.advance(timedelta(hours=1))
    assert decide(plan, clock.now()).down
    assert not decide(plan, clock.now(), actor="pref").down
    clock.set(datetime(2026, 3, 30, 3, 59, 59, tzinfo=UTC))  # 12:59:59 JST
    assert decide(plan, clock.now()).down
    clock.advance(timedelta(seconds=1))  # 13:00 JST: the window is half-open
    assert not decide(plan, clock.now()).down


def test_downtime_until_removed() -> None:
    plan = plan_of({"id": "down", "kind": "downtime", "params": {"from": "2026-03-30T09:00:00+09:00"}})
    assert not decide(plan, NOW - timedelta(hours=2)).down
    assert decide(plan, NOW + timedelta(days=365)).down
    assert plan.remove("down")
    assert decide(plan, NOW) == CLEAN


def test_rules_combine() -> None:
    plan = plan_of(
        {"id": "a", "kind": "latency", "params": {"fixed_ms": 100}},
        {"id": "b", "kind": "latency", "params": {"fixed_ms": 50}},
        {"id": "c", "kind": "error", "params": {"status": 502}},
        {"id": "d", "kind": "error", "params": {"status": 504}},
        {"id": "e", "kind": "reorder", "params": {"window": 2}},
        {"id": "f", "kind": "reorder", "params": {"window": 5}},
    )
    d = decide(plan)
    assert d.latency_s == pytest.approx(0.15)
    assert d.error == FaultError(502)
    assert d.reorder == 5
    assert d.rules == ("a", "b", "c", "d", "e", "f")


def test_add_remove_clear_and_ids() -> None:
    plan = FaultPlan()
    r1 = plan.add(FaultRule("", "drop"))
    r2 = plan.add(FaultRule("", "drop", FaultMatch(tenant="t1")))
    plan.add(FaultRule("mine", "duplicate", FaultMatch(tenant="t1")))
    assert (r1.id, r2.id) == ("fault-1", "fault-2")
    with pytest.raises(HarnessError) as err:
        plan.add(FaultRule("mine", "drop"))
    assert err.value.findings[0].code == "GW-FAULT-ID"
    assert plan.clear("t1") == 2
    assert [r.id for r in plan.list()] == ["fault-1"]
    assert not plan.remove("mine")
    assert plan.clear() == 1
    assert plan.list() == []


def test_rules_built_in_code_are_validated() -> None:
    with pytest.raises(HarnessError) as err:
        FaultPlan().add(FaultRule("x", "error", params={"status": 200}))
    assert err.value.findings[0].code == "GW-FAULT-PARAM"


@pytest.mark.parametrize("obj,code", [
    ({"kind": "explode"}, "GW-FAULT-KIND"),
    ({"kind": "drop", "colour": "red"}, "GW-FAULT-FIELD"),
    ({"kind": "drop", "match": {"route": "R01"}}, "GW-FAULT-FIELD"),
    ({"kind": "drop", "arrow": "8"}, "GW-FAULT-FIELD"),
    ({"kind": "drop", "count": -1}, "GW-FAULT-FIELD"),
    ({"kind": "drop", "probability": 1.5}, "GW-FAULT-FIELD"),
    ({"kind": "drop", "params": {"x": 1}}, "GW-FAULT-PARAM"),
    ({"kind": "latency", "params": {}}, "GW-FAULT-PARAM"),
    ({"kind": "latency", "params": {"fixed_ms": -5}}, "GW-FAULT-PARAM"),
    ({"kind": "latency", "params": {"dist": "uniform", "low_ms": 9, "high_ms": 1}}, "GW-FAULT-PARAM"),
    ({"kind": "latency", "params": {"dist": "normal", "mean_ms": 9}}, "GW-FAULT-PARAM"),
    ({"kind": "latency", "params": {"dist": "pareto", "alpha": 1}}, "GW-FAULT-PARAM"),
    ({"kind": "error", "params": {"status": 200}}, "GW-FAULT-PARAM"),
    ({"kind": "error", "params": {"status": 500, "code": 7}}, "GW-FAULT-PARAM"),
    ({"kind": "reorder", "params": {"window": 1}}, "GW-FAULT-PARAM"),
    ({"kind": "downtime", "params": {"from": "tomorrow"}}, "GW-FAULT-PARAM"),
    ({"kind": "downtime", "params": {"from": "2026-03-30T13:00", "to": "2026-03-30T12:00"}},
     "GW-FAULT-PARAM"),
])
def test_invalid_rules_are_refused(obj: dict[str, Any], code: str) -> None:
    with pytest.raises(HarnessError) as err:
        rule_from_json(obj)
    assert code in [f.code for f in err.value.findings]


TOML = """
[[faults]]
id = "slow-cs"
kind = "latency"
match = { arrow = 8, actor = "cs" }
params = { fixed_ms = 20 }

[[faults]]
kind = "downtime"
actor = "national"
params = { from = 2026-03-30T12:00:00+09:00, to = 2026-03-30T13:00:00+09:00 }
count = 3
"""


def test_from_config_toml() -> None:
    plan = FaultPlan.from_config(tomllib.loads(TOML), seed=3)
    rules = plan.list()
    assert [r.id for r in rules] == ["slow-cs", "fault-1"]
    assert rules[1].match == FaultMatch(actor="national")
    assert rules[1].to_json()["params"]["from"] == "2026-03-30T12:00:00+09:00"
    assert decide(plan).latency_s == pytest.approx(0.02)
    noon = NOW + timedelta(hours=2, minutes=30)
    assert [decide(plan, noon, actor="national").down for _ in range(4)] == [True, True, True, False]


def test_from_config_reports_every_bad_entry_with_its_index() -> None:
    with pytest.raises(HarnessError) as err:
        FaultPlan.from_config([{"kind": "drop"}, {"kind": "nope"}, {"kind": "error"}])
    where = [f.xpath for f in err.value.findings]
    assert where == ["faults[1]/kind", "faults[2]/params"]


def test_reorderer_releases_windows_in_reverse() -> None:
    r: Reorderer[int] = Reorderer(3)
    assert r.push(1) == [] and r.push(2) == []
    assert len(r) == 2
    assert r.push(3) == [3, 2, 1]
    assert r.push(4) == []
    assert r.flush() == [4]
    assert r.flush() == []
    assert Reorderer[str](1).push("a") == ["a"]


# ------------------------------------------------------------------------------------------------ HTTP

@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan(seed=1)


@pytest.fixture
async def client(aiohttp_client: Any, plan: FaultPlan) -> TestClient[Any, Any]:
    c: TestClient[Any, Any] = await aiohttp_client(faults_app(plan))
    return c


async def test_admin_api(client: TestClient[Any, Any], plan: FaultPlan) -> None:
    assert await (await client.get("/")).json() == {"rules": []}
    resp = await client.post("/", json={"id": "e1", "kind": "error", "match": {"arrow": 8, "tenant": "t1"},
                                        "params": {"status": 503}, "count": 1})
    assert resp.status == 201
    assert (await resp.json())["rule"]["id"] == "e1"
    assert decide(plan).error == FaultError(503)  # the rule is live in the plan the gateway uses
    listed = (await (await client.get("/")).json())["rules"]
    assert [(r["id"], r["applied"], r["match"]["tenant"]) for r in listed] == [("e1", 1, "t1")]
    assert (await client.post("/", json={"id": "e1", "kind": "drop"})).status == 409
    resp = await client.post("/", json={"kind": "latency", "params": {"fixed_ms": "slow"}})
    assert resp.status == 400
    assert (await resp.json())["findings"][0]["code"] == "GW-FAULT-PARAM"
    assert (await client.post("/", data=b"not json")).status == 400
    assert (await client.delete("/e1")).status == 204
    assert (await client.delete("/e1")).status == 404
    assert decide(plan) == CLEAN


async def test_admin_api_clear(client: TestClient[Any, Any], plan: FaultPlan) -> None:
    for body in ({"kind": "drop", "tenant": "t1"}, {"kind": "drop", "tenant": "t2"}, {"kind": "duplicate"}):
        assert (await client.post("/", json=body)).status == 201
    assert await (await client.delete("/", params={"tenant": "t1"})).json() == {"removed": 1}
    assert len(plan.list()) == 2
    assert await (await client.delete("/")).json() == {"removed": 2}
    assert plan.list() == []
