"""Fault injection: latency, errors, drops, duplicates, reordering and downtime, per actor and per arrow.

Why: the SUT's robustness is part of conformance — it must refuse cleanly, retry and lose nothing when a
simulator is slow, fails, drops, duplicates or reorders messages, or is down for maintenance. Faults are
data (config ``[[faults]]`` or the admin API), decisions are reproducible (each rule has its own RNG seeded
from the plan's seed and the rule id), and the gateway stays in charge of *doing* them.

API::

    FaultMatch(arrow=None, actor=None, message_type=None, tenant=None)   None = any; actor = the receiver
    FaultRule(id, kind, match=FaultMatch(), params={}, count=None, probability=1.0)
      kind       params
      latency    {"fixed_ms": 200} | {"dist": "uniform", "low_ms", "high_ms"}
                 | {"dist": "normal", "mean_ms", "stddev_ms"} (clamped at 0) | {"dist": "lognormal",
                 "median_ms", "sigma"}
      error      {"status": 400..599, "code": "...", "message": "..."} (code, message optional)
      drop       {}            accept, then never deliver
      duplicate  {}            deliver twice
      reorder    {"window": N} hold N messages, release them in reverse order (N >= 2)
      downtime   {"from": ISO, "to": ISO} on the virtual clock, half-open; either may be left out; no
                 from/to = down until the rule is removed. Naive times are taken as JST.
      count = apply at most N times (None = always); probability = chance to apply (seeded).
    rule_from_json(obj) -> FaultRule / rule.to_json()   the config and API form (see below)
    FaultPlan(rules=(), *, seed=0);  FaultPlan.from_config(config, *, seed=0)
      add(rule) -> FaultRule (an empty id gets "fault-N");  remove(id) -> bool;  clear(tenant=None) -> int
      list() -> list[FaultRule];  applied(id) -> int
      decide(*, arrow, actor, message_type, tenant, now) -> Decision
    Decision(latency_s, error: FaultError | None, drop, duplicate, down, reorder, rules)  .clean
    FaultError(status, code, message)
    Reorderer[T](window): push(item) -> list[T] released now;  flush() -> list[T];  len()
    faults_app(plan) -> web.Application   GET / (rules with "applied"), POST / (one rule, 201),
                                          DELETE /{id} (204 | 404), DELETE /?tenant= (clear; {"removed": n})
    add_fault_routes(app, plan, prefix)   the same routes on ``app`` at ``prefix`` and ``prefix/`` (the
                                          control API's /control/faults)

Rule JSON / TOML form (``match`` keys may also be written at the top level)::

    [[faults]]
    id = "cs-slow"            # optional
    kind = "latency"
    match = { arrow = 8, actor = "cs" }
    params = { dist = "lognormal", median_ms = 300, sigma = 0.5 }
    count = 10                # optional
    probability = 0.5         # optional

How the gateway should apply a Decision, in order: ``down`` -> answer 503 (and record it); ``error`` ->
answer with its status; ``drop`` -> acknowledge, do not deliver; sleep ``latency_s``; ``duplicate`` ->
deliver twice; ``reorder`` > 0 -> push into a Reorderer of that window (flush it on a timer). Every
matching rule is evaluated in insertion order; latencies add up, the first error wins, the largest reorder
window wins. ``rules`` lists the ids that applied (for the trace note). Not thread-safe: event loop only.
Errors are HarnessError with codes GW-FAULT-KIND, GW-FAULT-FIELD, GW-FAULT-PARAM, GW-FAULT-ID.
"""

from __future__ import annotations

import builtins
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, cast, get_args

from aiohttp import web

from conformance.errors import Finding, HarnessError, fail
from simulators.clock import JST

FaultKind = Literal["latency", "error", "drop", "duplicate", "reorder", "downtime"]
KINDS: tuple[str, ...] = get_args(FaultKind)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FaultMatch:
    """Which messages a rule applies to; None matches anything. ``actor`` is the receiving actor."""

    arrow: int | None = None
    actor: str | None = None
    message_type: str | None = None
    tenant: str | None = None

    def matches(self, arrow: int | None, actor: str | None, message_type: str | None,
                tenant: str | None) -> bool:
        return ((self.arrow is None or self.arrow == arrow) and (self.actor is None or self.actor == actor)
                and (self.message_type is None or self.message_type == message_type)
                and (self.tenant is None or self.tenant == tenant))


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault: what kind, on which messages, with which parameters, how often."""

    id: str
    kind: FaultKind
    match: FaultMatch = field(default_factory=FaultMatch)
    params: Mapping[str, Any] = field(default_factory=dict)
    count: int | None = None
    probability: float = 1.0

    def to_json(self) -> dict[str, Any]:
        params = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.params.items()}
        m = self.match
        return {"id": self.id, "kind": self.kind, "params": params, "count": self.count,
                "probability": self.probability,
                "match": {"arrow": m.arrow, "actor": m.actor, "message_type": m.message_type,
                          "tenant": m.tenant}}


@dataclass(frozen=True, slots=True)
class FaultError:
    """The error a faulty simulator answers with."""

    status: int
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one message; the default is 'nothing'."""

    latency_s: float = 0.0
    error: FaultError | None = None
    drop: bool = False
    duplicate: bool = False
    down: bool = False
    reorder: int = 0
    rules: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.rules


CLEAN = Decision()

# ------------------------------------------------------------------------------------------ validation

_LATENCY_DISTS: dict[str, tuple[str, ...]] = {
    "uniform": ("low_ms", "high_ms"), "normal": ("mean_ms", "stddev_ms"), "lognormal": ("median_ms", "sigma")}
_PARAMS: dict[str, tuple[str, ...]] = {
    "latency": ("fixed_ms", "dist", "low_ms", "high_ms", "mean_ms", "stddev_ms", "median_ms", "sigma"),
    "error": ("status", "code", "message"), "drop": (), "duplicate": (), "reorder": ("window",),
    "downtime": ("from", "to"),
}
_MATCH_KEYS = ("arrow", "actor", "message_type", "tenant")
_TOP_KEYS = ("id", "kind", "match", "params", "count", "probability", *_MATCH_KEYS)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _when(v: Any) -> datetime:
    dt = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return dt.replace(tzinfo=JST) if dt.tzinfo is None else dt


def _check_params(kind: str, p: Mapping[str, Any]) -> list[str]:
    """Problems with a rule's params, as messages (empty = fine)."""
    known = _PARAMS[kind]
    bad = [f"unknown parameter {k!r} for {kind} (known: {list(known)})" for k in p if k not in known]
    if bad:
        return bad
    if kind == "latency":
        if "fixed_ms" in p:
            if len(p) != 1 or not _number(p["fixed_ms"]) or p["fixed_ms"] < 0:
                bad.append("latency needs either fixed_ms >= 0 alone, or dist with its parameters")
        elif p.get("dist") not in _LATENCY_DISTS:
            bad.append(f"latency dist must be one of {sorted(_LATENCY_DISTS)} (or use fixed_ms)")
        else:
            need = _LATENCY_DISTS[str(p["dist"])]
            extra = sorted(set(p) - {"dist", *need})
            if extra or not all(_number(p.get(k)) and p[k] >= 0 for k in need):
                bad.append(f"latency dist {p['dist']} needs numbers >= 0 for {list(need)} and nothing else")
            elif p["dist"] == "uniform" and p["low_ms"] > p["high_ms"]:
                bad.append("latency uniform needs low_ms <= high_ms")
    elif kind == "error":
        s = p.get("status")
        if not (isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 599):
            bad.append(f"error status must be an HTTP error code 400..599, not {s!r}")
        bad.extend(f"error {k} must be a string" for k in ("code", "message")
                   if k in p and not isinstance(p[k], str))
    elif kind == "reorder":
        w = p.get("window")
        if not (isinstance(w, int) and not isinstance(w, bool) and w >= 2):
            bad.append(f"reorder window must be an integer >= 2, not {w!r}")
    elif kind == "downtime":
        try:
            span = [_when(p[k]) for k in ("from", "to") if k in p]
            if len(span) == 2 and not span[0] < span[1]:
                bad.append("downtime from must be before to")
        except (ValueError, TypeError):
            bad.append("downtime from/to must be ISO 8601 date-times")
    return bad


def rule_from_json(obj: Mapping[str, Any]) -> FaultRule:
    """Build and validate a rule from its JSON/TOML form; every problem becomes one finding."""
    problems: list[Finding] = []

    def problem(code: str, message: str, where: str) -> None:
        problems.append(Finding(code, message, xpath=where))

    if not isinstance(obj, Mapping):
        raise fail("GW-FAULT-FIELD", f"a fault rule must be an object, not {type(obj).__name__}")
    for k in obj:
        if k not in _TOP_KEYS:
            problem("GW-FAULT-FIELD", f"unknown key {k!r} (known: {list(_TOP_KEYS)})", k)
    kind = obj.get("kind")
    if kind not in KINDS:
        problem("GW-FAULT-KIND", f"kind must be one of {list(KINDS)}, not {kind!r}", "kind")
    rid = obj.get("id", "")
    if not isinstance(rid, str):
        problem("GW-FAULT-FIELD", "id must be a string", "id")
    match_obj = dict(obj.get("match") or {})
    for k in _MATCH_KEYS:
        if k in obj:
            match_obj[k] = obj[k]
    for k, v in match_obj.items():
        if k not in _MATCH_KEYS:
            problem("GW-FAULT-FIELD", f"unknown match key {k!r} (known: {list(_MATCH_KEYS)})", f"match/{k}")
        elif v is not None and not (isinstance(v, int) and not isinstance(v, bool) if k == "arrow"
                                    else isinstance(v, str)):
            problem("GW-FAULT-FIELD", f"match {k} has the wrong type: {v!r}", f"match/{k}")
    params = obj.get("params") or {}
    if not isinstance(params, Mapping):
        problem("GW-FAULT-PARAM", "params must be an object", "params")
        params = {}
    elif kind in KINDS:
        for msg in _check_params(str(kind), params):
            problem("GW-FAULT-PARAM", msg, "params")
    count = obj.get("count")
    if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        problem("GW-FAULT-FIELD", f"count must be an integer >= 0 or absent, not {count!r}", "count")
    prob = obj.get("probability", 1.0)
    if not (_number(prob) and 0.0 <= prob <= 1.0):
        problem("GW-FAULT-FIELD", f"probability must be a number in 0..1, not {prob!r}", "probability")
    if problems:
        raise HarnessError(problems)
    return FaultRule(id=str(rid), kind=cast(FaultKind, kind), match=FaultMatch(**match_obj),
                     params=dict(params), count=count, probability=float(prob))


# ------------------------------------------------------------------------------------------------ plan

@dataclass(slots=True)
class _State:
    rule: FaultRule
    rng: random.Random
    start: datetime | None
    end: datetime | None
    applied: int = 0

    def in_window(self, now: datetime) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def latency_s(self) -> float:
        p = self.rule.params
        if "fixed_ms" in p:
            ms = float(p["fixed_ms"])
        elif p["dist"] == "uniform":
            ms = self.rng.uniform(p["low_ms"], p["high_ms"])
        elif p["dist"] == "normal":
            ms = self.rng.gauss(p["mean_ms"], p["stddev_ms"])
        else:
            ms = self.rng.lognormvariate(math.log(max(p["median_ms"], 1e-9)), p["sigma"])
        return max(ms, 0.0) / 1000.0


class FaultPlan:
    """The active fault rules of a gateway, and the reproducible decisions they make."""

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int = 0) -> None:
        self.seed = seed
        self._states: dict[str, _State] = {}
        self._next_id = 1
        for r in rules:
            self.add(r)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, seed: int = 0
                    ) -> FaultPlan:
        """From the parsed TOML (its ``faults`` list) or from the list itself."""
        items = config.get("faults", []) if isinstance(config, Mapping) else config
        problems: list[Finding] = []
        rules: list[FaultRule] = []
        for i, item in enumerate(items):
            try:
                rules.append(rule_from_json(item))
            except HarnessError as err:
                problems.extend(replace(f, xpath=f"faults[{i}]/{f.xpath or ''}") for f in err.findings)
        if problems:
            raise HarnessError(problems)
        return cls(rules, seed=seed)

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate a rule (validated again); an empty id is replaced by ``fault-N``."""
        rule = rule_from_json(rule.to_json())  # also validates rules built in code
        if not rule.id:
            while f"fault-{self._next_id}" in self._states:
                self._next_id += 1
            rule = replace(rule, id=f"fault-{self._next_id}")
            self._next_id += 1
        if rule.id in self._states:
            raise fail("GW-FAULT-ID", f"a fault rule with id {rule.id!r} already exists")
        p = rule.params
        start = _when(p["from"]) if rule.kind == "downtime" and "from" in p else None
        end = _when(p["to"]) if rule.kind == "downtime" and "to" in p else None
        self._states[rule.id] = _State(rule, random.Random(f"{self.seed}/{rule.id}"), start, end)
        return rule

    def remove(self, rule_id: str) -> bool:
        return self._states.pop(rule_id, None) is not None

    def clear(self, tenant: str | None = None) -> int:
        """Remove every rule (tenant None) or the rules scoped to one tenant; returns how many."""
        gone = [i for i, s in self._states.items() if tenant is None or s.rule.match.tenant == tenant]
        for i in gone:
            del self._states[i]
        return len(gone)

    def applied(self, rule_id: str) -> int:
        """How many times the rule has applied so far (0 if unknown)."""
        s = self._states.get(rule_id)
        return 0 if s is None else s.applied

    def decide(self, *, arrow: int | None, actor: str | None, message_type: str | None, tenant: str | None,
               now: datetime) -> Decision:
        """What to do to one message going to ``actor`` on ``arrow`` at virtual time ``now``."""
        if not self._states:
            return CLEAN
        latency = 0.0
        error: FaultError | None = None
        drop = duplicate = down = False
        window = 0
        hit: list[str] = []
        for s in self._states.values():
            r = s.rule
            if not r.match.matches(arrow, actor, message_type, tenant):
                continue
            if r.kind == "downtime" and not s.in_window(now):
                continue
            if r.count is not None and s.applied >= r.count:
                continue
            if r.probability < 1.0 and s.rng.random() >= r.probability:
                continue
            s.applied += 1
            hit.append(r.id)
            if r.kind == "latency":
                latency += s.latency_s()
            elif r.kind == "error":
                if error is None:
                    error = FaultError(int(r.params["status"]), r.params.get("code"), r.params.get("message"))
            elif r.kind == "drop":
                drop = True
            elif r.kind == "duplicate":
                duplicate = True
            elif r.kind == "reorder":
                window = max(window, int(r.params["window"]))
            else:
                down = True
        if not hit:
            return CLEAN
        return Decision(latency, error, drop, duplicate, down, window, tuple(hit))

    def list(self) -> builtins.list[FaultRule]:
        """The active rules, in the order they were added (which is the order they are evaluated)."""
        return [s.rule for s in self._states.values()]


class Reorderer(Generic[T]):
    """Holds items until ``window`` are there, then releases them newest first.

    The gateway keeps one per (tenant, arrow) and flushes it on a timer, so a short burst is not held forever.
    """

    def __init__(self, window: int) -> None:
        if window < 1:
            raise fail("GW-FAULT-PARAM", f"reorder window must be >= 1, not {window}")
        self.window = window
        self._held: list[T] = []

    def push(self, item: T) -> list[T]:
        """Add one item; returns the items to release now (empty while the window is filling)."""
        self._held.append(item)
        if len(self._held) < self.window:
            return []
        return self.flush()

    def flush(self) -> list[T]:
        """Release whatever is held, newest first."""
        out, self._held = self._held[::-1], []
        return out

    def __len__(self) -> int:
        return len(self._held)


# ------------------------------------------------------------------------------------------------- HTTP

PLAN_KEY = web.AppKey("fault_plan", FaultPlan)


def _rule_out(plan: FaultPlan, rule: FaultRule) -> dict[str, Any]:
    return {**rule.to_json(), "applied": plan.applied(rule.id)}


def _findings(err: HarnessError, status: int) -> web.Response:
    return web.json_response({"findings": [f.to_json() for f in err.findings]}, status=status)


async def _list(request: web.Request) -> web.Response:
    plan = request.app[PLAN_KEY]
    return web.json_response({"rules": [_rule_out(plan, r) for r in plan.list()]})


async def _add(request: web.Request) -> web.Response:
    plan = request.app[PLAN_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _findings(fail("GW-FAULT-FIELD", "the body is not JSON"), 400)
    try:
        rule = plan.add(rule_from_json(body))
    except HarnessError as err:
        return _findings(err, 409 if err.findings[0].code == "GW-FAULT-ID" else 400)
    return web.json_response({"rule": _rule_out(plan, rule)}, status=201)


async def _delete(request: web.Request) -> web.Response:
    rid = request.match_info["id"]
    if request.app[PLAN_KEY].remove(rid):
        return web.Response(status=204)
    return _findings(fail("GW-FAULT-ID", f"no fault rule with id {rid!r}"), 404)


async def _clear(request: web.Request) -> web.Response:
    return web.json_response({"removed": request.app[PLAN_KEY].clear(request.query.get("tenant") or None)})


def add_fault_routes(app: web.Application, plan: FaultPlan, prefix: str) -> None:
    """Serve the admin API at ``prefix`` on ``app`` itself, with and without the trailing slash
    (a sub-app at ``prefix`` answers only ``prefix/``: ``/control/faults`` was a 404)."""
    app[PLAN_KEY] = plan
    r = app.router
    for path in (prefix, f"{prefix}/"):
        r.add_get(path, _list)
        r.add_post(path, _add)
        r.add_delete(path, _clear)
    r.add_delete(f"{prefix}/{{id}}", _delete)


def faults_app(plan: FaultPlan) -> web.Application:
    """The admin API; the gateway mounts it with ``add_subapp("/admin/faults", ...)`` (path is its choice)."""
    app = web.Application()
    app[PLAN_KEY] = plan
    app.router.add_get("/", _list)
    app.router.add_post("/", _add)
    app.router.add_delete("/", _clear)
    app.router.add_delete("/{id}", _delete)
    return app
