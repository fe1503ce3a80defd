"""The scenario engine: fixtures → drive → wait for messages → judge content and order, with evidence.

Everything goes over HTTP to the gateway (control API, counter proxy, trace API), so the engine works the same
against the reference SUT and a vendor's. Each scenario runs in its own tenant (``POST /control/tenants``):
its residents come from the synthetic provider by seed, are recorded in the SUT through the counter operation
``OfficialCorrection`` 記載 and/or seeded into peers and the national server; its steps drive the SUT; its
expectations are named checks (``conformance.checks``) evaluated on the tenant's trace records. Scenarios run
concurrently (asyncio, bounded); ``exclusive`` ones run alone afterwards.

API::

    Harness(session, gateway_url, control_token)      the HTTP client of the gateway
    Engine(harness, catalogue=None, *, concurrency=8, run_seed=None, settle=0.25)
      await run(scenario) -> ScenarioResult
      await run_many(scenarios, on_done=None) -> list[ScenarioResult]
    ScenarioResult(scenario, verdict, outcomes, steps, duration, tenant, error).to_json()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance.checks import (
    CHECKS,
    CheckContext,
    Evidence,
    Outcome,
    Rec,
    StepResult,
    mask_my_numbers,
    match_records,
    run_check,
)
from conformance.engine_http import Harness, HarnessHTTPError
from conformance.engine_util import (
    FixturePerson,
    _address,
    _bad_check,
    _bytes,
    _card_data,
    _counter_person,
    _effective_seed,
    _esc,
    _int,
    _plain,
    _residents_doc,
    _safe,
    _seconds,
    _uid,
    _x_jdate,
)
from conformance.envelope import build, header
from conformance.identifiers import make_juminhyo_code, make_my_number
from conformance.masking import mask_obj
from conformance.model import Address, Honseki, IndividualEntry, JDate, Municipality, Resident
from conformance.residents import ResidentFactory, make_faker, municipality_for
from conformance.scenario import Scenario, Step, body_env, value_env
from conformance.xmlsafe import NS, parse, q

__all__ = ["Engine", "FixturePerson", "Harness", "HarnessHTTPError", "ScenarioResult"]

JST_OFFSET = "+09:00"


# --------------------------------------------------------------------------------------------- results

@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    verdict: str  # pass | fail | error
    outcomes: list[Outcome] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    duration: float = 0.0
    tenant: str | None = None
    error: str | None = None
    seed: int | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, every 個人番号 masked."""
        d = {
            **self.scenario.to_json(), "verdict": self.verdict, "duration": round(self.duration, 3),
            "tenant": self.tenant, "seed": self.seed, "error": self.error,
            "expectations": [o.to_json() for o in self.outcomes],
            "steps": [{"id": s.step_id, "action": s.action, "status": s.status, "message_id": s.message_id,
                       "trace_mark": s.mark} for s in self.steps],
        }
        masked: dict[str, Any] = mask_obj(json.loads(json.dumps(d, ensure_ascii=False, default=str)))
        return masked

    def explain(self) -> str:
        """A readable account of what failed and why (masked)."""
        lines = [f"{self.scenario.id} {self.verdict.upper()}: {self.scenario.title_en}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for o in self.failures():
            where = f"{self.scenario.file}:{o.line}" if o.line else self.scenario.file
            lines.append(f"  ✗ {o.code} {o.check} [{o.expectation}] ({where}): {o.message}")
            if o.because:
                lines.append(f"      because: {o.because}")
            for e in o.evidence[:8]:
                lines.append(f"      - {e.for_people()}")
        return mask_my_numbers("\n".join(lines))


class _StepFailed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


# ------------------------------------------------------------------------------------------ one scenario

class _Run:
    """The state of one scenario run: tenant, fixtures, captured values, step results."""

    def __init__(self, engine: Engine, scenario: Scenario) -> None:
        self.engine = engine
        self.h = engine.harness
        self.sc = scenario
        self.seed = _effective_seed(engine.run_seed, scenario)
        self.tenant = ""
        self.sut_lg = ""
        self.peers: list[dict[str, Any]] = []
        self.fixture: dict[str, FixturePerson] = {}
        self.values: dict[str, Any] = {}
        self.captured: dict[str, Any] = {}
        self.steps: dict[str, StepResult] = {}
        self.order: list[StepResult] = []
        self.now = datetime.now(UTC)
        self._clock_anchor = (self.now, time.monotonic())
        self.faults: dict[str, str] = {}
        self.records: dict[int, Rec] = {}
        self.cursor = 0
        self.window = 0
        self._addresses: dict[tuple[str, str], Address] = {}
        self.background: dict[str, asyncio.Task[None]] = {}
        self.virtual_start: str | None = None

    # -- templates

    def _virtual_now(self) -> datetime:
        anchor, mono = self._clock_anchor
        return anchor + timedelta(seconds=time.monotonic() - mono)

    def context(self) -> dict[str, Any]:
        now = self._virtual_now()
        return {
            "fixture": self.fixture, "peers": self.peers, "sut_lg": self.sut_lg, "tenant": self.tenant,
            "values": self.values, "captured": self.captured, "now": now.isoformat(timespec="seconds"),
            "today": now.date().isoformat(),
            "steps": {k: {"status": s.status, "message_id": s.message_id, "mark": s.mark, **s.data}
                      for k, s in self.steps.items()},
            "sut": {"lg_code": self.sut_lg,
                    "municipality": municipality_for(self.sut_lg) if self.sut_lg else None},
            "uid": _uid, "bad_check": _bad_check, "municipality": municipality_for,
            "address_in": self.address_in,
            "my_number": make_my_number, "juminhyo_code": make_juminhyo_code,
        }

    def address_in(self, lg_code: str, key: str = "a") -> Address:
        """A synthetic address in a municipality, the same for the same key within the scenario."""
        k = (str(lg_code), key)
        a = self._addresses.get(k)
        if a is None:
            fake = make_faker(f"{self.seed}:{key}:{lg_code}")
            a = self._addresses[k] = fake.address_in(municipality_for(str(lg_code)))
        return a

    def render(self, value: Any, *, xml: bool = False) -> Any:
        """Render templates inside ``value`` (strings, lists, mappings); errors become ValueError."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            env = body_env() if xml else value_env()
            try:
                return env.from_string(value).render(self.context())
            except Exception as e:  # a template error of any kind is the scenario's, reported as a value
                raise ValueError(f"template: {type(e).__name__}: {e}") from e
        if isinstance(value, Mapping):
            return {k: self.render(v, xml=xml) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, xml=xml) for v in value]
        return value

    def element(self, text: str) -> etree._Element:
        """Parse a rendered body written without namespace declarations, in the project namespace."""
        root = parse(f'<_w xmlns="{NS}">{text}</_w>')
        kids = [c for c in root if isinstance(c.tag, str)]
        if len(kids) != 1:
            raise ValueError(f"a body must be one element, found {len(kids)}")
        el: etree._Element = kids[0]
        return el

    # -- set-up

    async def setup(self) -> None:
        sc = self.sc
        t = await self.h.create_tenant(f"{sc.id}", sc.peers, self.seed % 2_000_000_000)
        self.tenant = str(t["tenant"])
        self.sut_lg = str(t["sut_lg"])
        self.peers = [dict(p) for p in t.get("peers", [])]
        clock = t.get("clock")
        if sc.clock:
            clock = (await self.h.clock(self.tenant, {"set": sc.clock})).get("now", sc.clock)
        if clock:
            self._set_now(str(clock))
            self.virtual_start = str(clock)
        self._make_residents()
        self.values = {}
        for k, v in sc.values.items():
            self.values[k] = self.render(v)
        await self._seed_residents()

    def _set_now(self, iso: str) -> None:
        with contextlib.suppress(ValueError):
            self._clock_anchor = (datetime.fromisoformat(iso), time.monotonic())

    def _municipality(self, where: str) -> Municipality:
        if where == "sut":
            return municipality_for(self.sut_lg)
        n = int(where[4:])
        if n >= len(self.peers):
            raise ValueError(f"{where}: the tenant has only {len(self.peers)} peer(s)")
        return municipality_for(str(self.peers[n]["lg_code"]))

    def _make_residents(self) -> None:
        today = self._virtual_now().date()
        factories: dict[str, ResidentFactory] = {}
        for i, spec in enumerate(self.sc.residents):
            m = self._municipality(spec.lives)
            f = factories.get(m.lg_code)
            if f is None:
                f = factories[m.lg_code] = ResidentFactory(self.seed + i, m.lg_code, hard_share=0.0,
                                                           today=today)
            hard = None if spec.hard in (None, "none") else spec.hard
            if spec.foreign:
                if spec.members > 1:
                    members = f.household(spec.members, hard="foreign_tsusho" if spec.tsusho else "foreign")
                else:
                    cat = spec.foreign if isinstance(spec.foreign, str) else "中長期在留者"
                    members = [f.foreign_resident(tsusho=spec.tsusho, category=cat)]
            else:
                members = f.household(spec.members, hard=hard)
            out = []
            honseki = None if members[0].is_foreign else self._honseki(f, members[0], spec.honseki)
            for r in members:
                r = self._card(f, r, spec.card)
                if not r.is_foreign:
                    r = replace(r, honseki=honseki)
                if spec.entries:
                    rs = r.resident_since
                    since = rs.western if rs is not None and rs.western is not None else today
                    r = replace(r, entries=tuple(IndividualEntry(kind=k, from_=since) for k in spec.entries))
                out.append(r)
            self.fixture[spec.name] = FixturePerson(out, m)

    @staticmethod
    def _card(f: ResidentFactory, r: Resident, card: bool | None) -> Resident:
        if card is None:
            return r
        if not card:
            return replace(r, card_no=None, card_serial=None)
        if r.card_no and r.card_serial:
            return r
        return replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial())

    def _honseki(self, f: ResidentFactory, r: Resident, where: str) -> Honseki | None:
        """One 本籍 for a household: here, in a peer, elsewhere (neither here nor a peer), or none."""
        if where == "none":
            return None
        if where == "elsewhere":
            m = f._elsewhere()
            while m.lg_code == self.sut_lg or any(p["lg_code"] == m.lg_code for p in self.peers):
                m = f._elsewhere()
        else:
            m = self._municipality("sut" if where == "here" else where)
        head = r.honseki.head_of_family if r.honseki else (r.name.kanji or r.name.display)
        return Honseki(place=f.p.honseki_place(m), lg_code=m.lg_code, head_of_family=head)

    async def _seed_residents(self) -> None:
        """Record fixture persons in the SUT (職権記載), then seed the simulators that must know them."""
        recorded: list[str] = []
        for spec in self.sc.residents:
            if "sut" in spec.into:
                for j, r in enumerate(self.fixture[spec.name].members):
                    await self._seed_into_sut(f"seed_{spec.name}_{j}", r)
                    recorded.append(r.juminhyo_code)
        if recorded:
            await self._await_notices(recorded)
        by_target: dict[tuple[str, str], list[Resident]] = {}
        for spec in self.sc.residents:
            members = self.fixture[spec.name].members
            for target in spec.into:
                if target in ("sut", "none"):
                    continue
                if target.startswith("peer"):
                    by_target.setdefault(("peer", self._municipality(target).lg_code), []).extend(members)
                else:
                    by_target.setdefault((target, self.sut_lg), []).extend(members)
        for (actor, lg), members in by_target.items():
            body: dict[str, Any] = {"actor": actor, "lg_code": lg, "kind": "residents",
                                    "xml": _residents_doc(members)}
            if actor == "card":
                body["kind"] = "cards"
                body["data"] = {"cards": [_card_data(r) for r in members if r.card_no and r.card_serial]}
            elif actor == "centre":
                body = {"actor": "centre", "lg_code": lg, "kind": "cards", "data": {"cards": [
                    {"cert_serial": r.card_serial, "identification_no": r.identification_no, "lg_code": lg}
                    for r in members if r.card_serial and r.identification_no]}}
            await self.h.seed(self.tenant, body)
        await self.settle()
        self.window = self.cursor

    async def _await_notices(self, codes: list[str], timeout: float = 5.0) -> None:
        """Wait until CS accepted the IdentityNotice of every person just recorded, so the fixture's own
        messages stay out of the scenario's window (a SUT that sends none is judged by the scenario)."""
        want = set(codes)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            await self.pull(block=0.05)
            seen = set()
            for rec in self.records.values():
                if (rec.arrow == 8 and rec.message_type == "IdentityNotice" and rec.kind == "message"
                        and rec.verdict == "accepted" and rec.body is not None):
                    seen.add(rec.body.findtext(f"{q('Identity')}/{q('JuminhyoCode')}"))
            if want <= seen:
                return

    async def _seed_into_sut(self, sid: str, r: Resident) -> None:
        since = r.resident_since or r.birth_date
        event = since if since.western is not None else JDate.of(self._virtual_now().date())
        body = (f"<Action>記載</Action><Basis>フィクスチャの記載（試験用）</Basis>"
                f"{_x_jdate(event, 'EventDate')}{_counter_person(r)}"
                f"{_address(r)}")
        st = Step(id=sid, action="counter", arg="OfficialCorrection", params={"body": body}, title="fixture")
        res = await self.counter(st, body, raw_body=True)
        self._learn_ids(res)
        status = res.body.findtext(f"{q('Result')}/{q('Status')}") if res.body is not None else None
        if res.status != 200 or status != "accepted":
            detail = res.body.findtext(f"{q('Result')}/{q('Detail')}") if res.body is not None else None
            raise _StepFailed(Outcome(
                code="FIXTURE", check="fixture", passed=False,
                message=f"the SUT did not record fixture person {sid} (職権記載): HTTP {res.status} "
                        f"{status or ''} {detail or ''}".strip(),
                evidence=[Evidence(message_id=res.message_id, expected="accepted",
                                   actual=f"HTTP {res.status}")]))

    def _learn_ids(self, res: StepResult) -> None:
        """Take the 識別番号 the SUT gave recorded persons (処理票 items ``識別番号:{住民票コード}``)."""
        body = res.body
        if body is None:
            return
        given: dict[str, str] = {}
        for it in body.iter(q("Item")):
            label = it.findtext(q("Label")) or ""
            value = it.findtext(q("Value"))
            if label.startswith("識別番号:") and value:
                given[label.split(":", 1)[1]] = value
        if not given:
            return
        for fp in self.fixture.values():
            fp.members = [replace(r, identification_no=given.get(r.juminhyo_code, r.identification_no))
                          for r in fp.members]
            fp.resident = fp.members[0]

    # -- trace

    async def pull(self, block: float = 0.0) -> int:
        """Fetch the tenant's records since the window start; returns how many are new."""
        since = self.window
        have = sum(1 for k in self.records if k > since)
        recs, last = await self.h.records(self.tenant, since, have=have, block=block)
        n = 0
        for d in recs:
            rec = Rec(d)
            if rec.seq not in self.records:
                self.records[rec.seq] = rec
                n += 1
        self.cursor = max(self.cursor, last)
        return n

    async def pull_all(self) -> None:
        """Fetch every record of the tenant (fixtures included) for the final judgement."""
        recs, last = await self.h.records(self.tenant, 0)
        for d in recs:
            rec = Rec(d)
            self.records.setdefault(rec.seq, rec)
        self.cursor = max(self.cursor, last)

    async def settle(self, quiet: float | None = None, limit: float = 5.0) -> None:
        """Wait until the tenant's trace has been quiet for ``quiet`` seconds (at most ``limit``)."""
        quiet = self.engine.settle if quiet is None else quiet
        end = time.monotonic() + limit
        await self.pull()
        while time.monotonic() < end:
            if not await self.pull(block=max(0.01, min(quiet, end - time.monotonic()))):
                return

    def sorted_records(self) -> list[Rec]:
        return [self.records[k] for k in sorted(self.records)]

    # -- steps

    async def step(self, st: Step) -> None:
        """Run a step, or start it in the background (``background: true``) and go on; ``join`` waits."""
        if st.action == "join":
            await self.join(None if st.arg in (None, "all") else str(st.arg))
            return
        if st.params.get("background"):
            self.background[st.id] = asyncio.create_task(self.run_step(st))
            await asyncio.sleep(0.05)  # let it send before the next step
            return
        await self.run_step(st)

    async def join(self, sid: str | None = None) -> None:
        """Wait for background steps (one, or all); a failed one fails the scenario here."""
        names = [sid] if sid is not None else list(self.background)
        for name in names:
            task = self.background.pop(name, None)
            if task is None:
                raise ValueError(f"join: no background step {name!r}")
            await task

    async def run_step(self, st: Step) -> None:
        mark = await self.h.last_seq(self.tenant)
        started = datetime.now(UTC)
        if st.action == "counter":
            res = await self.counter(st, str(self.render(st.params.get("body", ""), xml=True)))
        elif st.action == "send":
            res = await self.send(st)
        elif st.action == "deliver_raw":
            raw = str(self.render(st.arg, xml=True))
            data = await self.h.deliver_raw(self.tenant, raw, self.render(st.params.get("token")))
            if "status" not in data:
                raise HarnessHTTPError(f"step {st.id}: deliver-raw failed: {data}")
            res = StepResult(st.id, st.action, status=_int(data.get("status")),
                             response=_bytes(data.get("body") or data.get("response")), data=_plain(data))
        elif st.action == "fault":
            rule = dict(self.render(st.arg))
            name = str(rule.pop("name", st.id))
            rule.setdefault("tenant", self.tenant)
            self.faults[name] = await self.h.add_fault(rule)
            res = StepResult(st.id, st.action, status=200, data={"fault_id": self.faults[name]})
        elif st.action == "fault_off":
            name = str(self.render(st.arg))
            fid = self.faults.pop(name, None)
            if fid is None:
                raise ValueError(f"fault_off: no fault named {name!r} is on")
            await self.h.delete_fault(fid)
            res = StepResult(st.id, st.action, status=200)
        elif st.action == "clock":
            spec = self.render(st.arg)
            body: dict[str, Any] = {}
            if "set" in spec:
                body["set"] = spec["set"]
            if "advance" in spec:
                body["advance_seconds"] = _seconds(spec["advance"])
            data = await self.h.clock(self.tenant, body)
            if data.get("now"):
                self._set_now(str(data["now"]))
            res = StepResult(st.id, st.action, status=200, data=_plain(data))
        elif st.action == "wait":
            res = await self.wait(st)
        elif st.action == "seed":
            spec = dict(self.render(st.arg, xml=True))
            spec.setdefault("lg_code", self.sut_lg)
            await self.h.seed(self.tenant, spec)
            res = StepResult(st.id, st.action, status=200)
        elif st.action == "hours":
            data = await self.h.hours(self.tenant, dict(self.render(st.arg)))
            res = StepResult(st.id, st.action, status=200, data=_plain(data))
        elif st.action == "settle":
            await self.settle(float(st.arg))
            res = StepResult(st.id, st.action, status=200)
        elif st.action == "sleep":
            await asyncio.sleep(float(st.arg))
            res = StepResult(st.id, st.action, status=200)
        else:  # pragma: no cover - the loader allows only the actions above
            raise ValueError(f"unknown action {st.action}")
        res.mark = mark
        res.started = started
        res.ended = datetime.now(UTC)
        self.steps[st.id] = res
        self.order.append(res)
        self._check_step(st, res)
        if "capture" in st.params and st.action != "wait":
            body_el = res.body
            if body_el is not None:
                from conformance.checks import xpath_values

                for name, expr in dict(st.params["capture"]).items():
                    vals = xpath_values(body_el, str(self.render(expr)))
                    self.captured[name] = vals[0] if len(vals) == 1 else (vals or None)

    def _check_step(self, st: Step, res: StepResult) -> None:
        want = st.params.get("status")
        if want is None:
            want = {"counter": [200], "send": [200, 202]}.get(st.action)
        wanted = [int(x) for x in (want if isinstance(want, list) else [want])] if want is not None else None
        ev = Evidence(message_id=res.message_id, expected=f"HTTP {wanted}", actual=f"HTTP {res.status}",
                      note=f"step {st.id} ({st.action} {st.arg if isinstance(st.arg, str) else ''})".strip())
        if wanted is not None and res.status not in wanted:
            codes = ""
            if res.body is not None and res.body.tag == q("ErrorReport"):
                codes = "; ".join(f"{c.text}" for c in res.body.iter(q("Code")))
            raise _StepFailed(Outcome(
                code="STEP", check="step", passed=False, line=st.line, expectation=st.id,
                message=f"step {st.id}: HTTP {res.status}, expected {wanted} {codes}".strip(), evidence=[ev]))
        if st.action == "counter":
            result = st.params.get("result", "accepted")
            body = res.body
            status = body.findtext(f"{q('Result')}/{q('Status')}") if body is not None else None
            code = body.findtext(f"{q('Result')}/{q('Code')}") if body is not None else None
            detail = body.findtext(f"{q('Result')}/{q('Detail')}") if body is not None else None
            if result != "any" and status != result:
                raise _StepFailed(Outcome(
                    code="STEP", check="step", passed=False, line=st.line, expectation=st.id,
                    message=f"step {st.id}: {st.arg} answered {status} ({code or ''} {detail or ''}), "
                            f"expected {result}", evidence=[Evidence(
                                message_id=res.message_id, xpath="j:Result/j:Status", expected=result,
                                actual=status, note=detail)]))
            want_code = st.params.get("code")
            if want_code is not None and code != self.render(want_code):
                raise _StepFailed(Outcome(
                    code="STEP", check="step", passed=False, line=st.line, expectation=st.id,
                    message=f"step {st.id}: result code {code}, expected {want_code}",
                    evidence=[Evidence(message_id=res.message_id, xpath="j:Result/j:Code", expected=want_code,
                                       actual=code, note=detail)]))

    async def counter(self, st: Step, inner: str, *, raw_body: bool = False) -> StepResult:
        op = str(st.arg)
        date_text = self.render(st.params.get("date")) if st.params.get("date") else None
        op_date = date.fromisoformat(str(date_text)[:10]) if date_text else self._virtual_now().date()
        staff = self.render(st.params.get("staff", "試験担当"))
        el = self.element(f"<CounterRequest><OperationDate>{op_date.isoformat()}</OperationDate>"
                          f"<Staff>{_esc(str(staff))}</Staff><{op}>{inner}</{op}></CounterRequest>")
        h = header("CounterRequest", ("counter", self.sut_lg), ("juki", self.sut_lg),
                   sent_at=self._virtual_now().replace(microsecond=0), business_date=op_date)
        env = build(h, el)
        status, body = await self.h.counter(self.tenant, env)
        res = StepResult(st.id, "counter", status=status, message_id=h.message_id, response=body)
        if raw_body:
            res.mark = self.cursor
            self.steps[st.id] = res
        res.data = {"response": body.decode("utf-8", "replace")}
        return res

    async def send(self, st: Step) -> StepResult:
        p = self.render({k: v for k, v in st.params.items() if k not in ("body", "raw", "capture")})
        mtype = str(self.render(st.arg))
        frm = p.get("from") or {}
        actor = str(frm.get("actor", "peer"))
        default_lg = self.peers[0]["lg_code"] if actor == "peer" and self.peers else self.sut_lg
        lg = str(frm.get("lg") or default_lg)
        to = p.get("to") or {}
        to_actor = str(to.get("actor") or self._default_receiver(actor, mtype))
        to_lg = str(to.get("lg") or self.sut_lg)
        body_text = None
        if "body" in st.params:
            body_text = etree.tostring(self.element(str(self.render(st.params["body"], xml=True))),
                                       encoding="unicode")
        raw = self.render(st.params["raw"], xml=True) if "raw" in st.params else None
        req = {"actor": actor, "lg_code": lg, "to": to_actor, "to_lg": to_lg, "type": mtype,
               "body": body_text,
               "correlation_id": p.get("correlation_id"), "business_date": p.get("business_date"), "raw": raw}
        data = await self.h.send(self.tenant, req)
        if "status" not in data:
            raise HarnessHTTPError(f"step {st.id}: the control API did not send: "
                                   + "; ".join(f"{f.get('code')}: {f.get('message')}"
                                               for f in data.get("findings", [])))
        return StepResult(st.id, "send", status=_int(data.get("status")), message_id=data.get("message_id"),
                          response=_bytes(data.get("response")), data=_plain(data))

    def _default_receiver(self, actor: str, mtype: str) -> str:
        cat = self.engine.catalogue
        mt = cat.message_types.get(mtype)
        if mt is not None:
            for n in mt.arrows:
                for src, dst in cat.ends(n):
                    if src == actor:
                        return dst
        return "juki"

    async def wait(self, st: Step) -> StepResult:
        m = dict(st.arg)
        count = int(st.params.get("count", 1))
        timeout = float(st.params.get("timeout", 10))
        end = time.monotonic() + timeout
        ctx = self.check_context()
        found: list[Rec] = []
        await self.pull()
        whole = bool(st.params.get("all"))
        while True:
            ctx.records = self.sorted_records()
            found = match_records(ctx, m, window=not whole)
            if len(found) >= count or time.monotonic() >= end:
                break
            await self.pull(block=max(0.01, min(0.5, end - time.monotonic())))
        if len(found) < count:
            from conformance.checks import describe

            what = describe(m, ctx.render)
            raise _StepFailed(Outcome(
                code="STEP", check="wait", passed=False, line=st.line, expectation=st.id,
                message=f"step {st.id}: waited {timeout} s for {count} × {what}; found {len(found)}",
                evidence=[Evidence.of(r) for r in found] or [
                    Evidence(expected=f"{count} × {what}", actual="nothing")]))
        rec = found[0]
        res = StepResult(st.id, "wait", status=200, message_id=rec.message_id, response=rec.payload,
                         data={"seq": rec.seq, "correlation_id": rec.correlation_id,
                               "message_ids": [r.message_id for r in found]})
        if "capture" in st.params and rec.body is not None:
            from conformance.checks import xpath_values

            for name, expr in dict(st.params["capture"]).items():
                vals = xpath_values(rec.body, str(self.render(expr)))
                self.captured[name] = vals[0] if len(vals) == 1 else (vals or None)
        return res

    # -- judging

    def check_context(self) -> CheckContext:
        people = {r.juminhyo_code: r for fp in self.fixture.values() for r in fp.members if r.juminhyo_code}
        return CheckContext(records=self.sorted_records(), catalogue=self.engine.catalogue,
                            window=self.window, steps=self.steps, captured=self.captured, render=self.render,
                            sut_lg=self.sut_lg, people=people, virtual_start=self.virtual_start)

    async def judge(self) -> list[Outcome]:
        """Wait (up to each ``within``) for what the waiting checks need, settle, then judge every one."""
        exps = list(self.sc.expect)
        deadline_of: dict[int, float] = {}
        start = time.monotonic()
        for i, ex in enumerate(exps):
            c = CHECKS[ex.check]
            if c.waits:
                deadline_of[i] = start + float(ex.params.get("within", self.engine.default_within))
        pending = set(deadline_of)
        await self.pull()
        while pending:
            ctx = self.check_context()
            for i, ex in enumerate(exps):
                if i in pending:
                    o = run_check(ex.check, ctx, ex.params)
                    known = CHECKS.get(ex.check)
                    ready = known.ready if known is not None else None
                    final = ready is not None and _safe(ready, ctx, ex.params)
                    if o.passed or final or time.monotonic() >= deadline_of[i]:
                        pending.discard(i)
                elif CHECKS[ex.check].waits:
                    run_check(ex.check, ctx, ex.params)  # keeps captures flowing to later expectations
            if pending:
                await self.pull(block=0.2)
        await self.settle()
        await self.pull_all()
        ctx = self.check_context()
        out = [run_check(ex.check, ctx, ex.params, expectation=ex.id, title=ex.title, line=ex.line)
               for ex in exps]
        out.extend(self.auto(ctx))
        return out

    def auto(self, ctx: CheckContext) -> list[Outcome]:
        return [run_check(name, ctx, {}, expectation=f"auto:{name}", title=c.title_en)
                for name, c in CHECKS.items() if c.auto and name not in self.sc.skip_auto]

    async def teardown(self) -> None:
        for task in self.background.values():
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background.values(), return_exceptions=True)
        self.background.clear()
        for fid in list(self.faults.values()):
            with contextlib.suppress(HarnessHTTPError, aiohttp.ClientError):
                await self.h.delete_fault(fid)
        self.faults.clear()
        if self.tenant and not self.engine.keep_tenants:
            with contextlib.suppress(HarnessHTTPError, aiohttp.ClientError):
                await self.h.delete_tenant(self.tenant)


# ---------------------------------------------------------------------------------------------- engine

class Engine:
    """Runs scenarios against the gateway at ``harness.url``."""

    def __init__(self, harness: Harness, catalogue: catalogue_mod.Catalogue | None = None, *,
                 concurrency: int = 8, run_seed: int | None = None, settle: float = 0.25,
                 default_within: float = 8.0, keep_tenants: bool = False) -> None:
        self.harness = harness
        self.catalogue = catalogue or catalogue_mod.default()
        self.concurrency = max(1, concurrency)
        self.run_seed = run_seed if run_seed is not None else int.from_bytes(os.urandom(4), "big")
        self.settle = settle
        self.default_within = default_within
        self.keep_tenants = keep_tenants

    async def run(self, scenario: Scenario) -> ScenarioResult:
        """Run one scenario in a fresh tenant; never raises for a SUT problem (that is a verdict)."""
        t0 = time.monotonic()
        r = _Run(self, scenario)
        result = ScenarioResult(scenario, "error", seed=r.seed)
        try:
            result = await asyncio.wait_for(self._run(r, result), timeout=scenario.timeout)
        except TimeoutError:
            result.verdict, result.error = "error", f"scenario timed out after {scenario.timeout} s"
        except Exception as e:  # one broken scenario must not stop the suite: it is an error verdict
            result.verdict, result.error = "error", f"{type(e).__name__}: {e}"
        finally:
            await r.teardown()
        result.duration = time.monotonic() - t0
        result.tenant = r.tenant or None
        result.steps = r.order
        return result

    async def _run(self, r: _Run, result: ScenarioResult) -> ScenarioResult:
        outcomes: list[Outcome] = []
        try:
            await r.setup()
            for st in r.sc.steps:
                await r.step(st)
            await r.join()
        except _StepFailed as e:
            outcomes.append(e.outcome)
            await r.settle()
            await r.pull_all()
            outcomes.extend(r.auto(r.check_context()))
            result.outcomes = outcomes
            result.verdict = "fail"
            return result
        outcomes.extend(await r.judge())
        result.outcomes = outcomes
        result.verdict = "pass" if all(o.passed for o in outcomes) else "fail"
        return result

    async def run_many(self, scenarios: Sequence[Scenario],
                       on_done: Callable[[ScenarioResult], Awaitable[None] | None] | None = None,
                       ) -> list[ScenarioResult]:
        """Run scenarios concurrently (bounded); ``exclusive`` ones one at a time after the rest.

        Results come back in the order of ``scenarios``.
        """
        sem = asyncio.Semaphore(self.concurrency)
        results: dict[int, ScenarioResult] = {}

        async def one(i: int, s: Scenario) -> None:
            async with sem:
                res = await self.run(s)
            results[i] = res
            if on_done is not None:
                maybe = on_done(res)
                if maybe is not None:
                    await maybe

        shared = [(i, s) for i, s in enumerate(scenarios) if not s.exclusive]
        alone = [(i, s) for i, s in enumerate(scenarios) if s.exclusive]
        await asyncio.gather(*(one(i, s) for i, s in shared))
        for i, s in alone:
            await one(i, s)
        return [results[i] for i in range(len(scenarios))]
