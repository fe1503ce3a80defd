"""The Locust side of ``juki-harness load``: replay a prepared plan as an open model, time cascades end to end.

Why not plain Locust users with ``wait_time``: that is a closed model (a stalled SUT slows the senders and
hides the stall). Here one dispatcher per process starts each action at its INTENDED time in its own greenlet,
whatever the previous ones are doing; latency is measured from the intended time; an action that cannot start
on time is counted late, one that finds ``max_inflight`` cascades already open is dropped (k6's
``dropped_iterations``). A cascade is done when the SUT answered and every message its route requires is in
the trace — one trace follower per process reads ``GET /trace/stream`` (no polling per cascade).

Environment: ``JUKI_LOAD_PLAN`` (the plan JSON written by ``load.runner``: the run's parameters and one row
per action — index, intended time, function, seed). With ``--workers N`` each worker takes the actions whose
index ≡ its worker index (mod N), so the totals do not depend on N, and builds their requests itself
(``load.plan.Planner``) just before each is due.
Each process writes ``results-{index}.jsonl`` (one line per action) and ``start-{index}.json`` (the wall-clock
time of its intended t = 0) into the plan's ``out`` directory.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import date
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Group
from locust import LoadTestShape, User, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from load import connections
from load.model import Action
from load.plan import WAITED, Planner, Tenant

_KEYS = re.compile(r"<(?:\w+:)?(?:JuminhyoCode|KioskId|RequestNo|ApplicationId)>([^<]{1,60})</")


def _load_plan() -> dict[str, Any]:
    path = os.environ.get("JUKI_LOAD_PLAN")
    if not path:
        raise SystemExit("load/locustfile.py replays a plan prepared by `juki-harness load` (which starts the "
                         "harness, the SUT and Locust): run that command, or set JUKI_LOAD_PLAN (docs/load.md)")
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


PLAN = _load_plan()
_done_workers: set[int] = set()
_local_done = Event()


class Cascade:
    """One action in flight: the keys (arrow, type, 住民票コード) still missing, and when each arrived."""

    __slots__ = ("action", "event", "last_seen", "missing")

    def __init__(self, action: dict[str, Any]) -> None:
        self.action = action
        self.missing = {(int(a), str(t), str(j)) for a, t, j in action["require"]}
        self.last_seen = 0.0
        self.event = Event()


class Follower:
    """The one trace follower of this process: reads the stream and completes waiting cascades."""

    def __init__(self, client: connections.Client, token: str, since: int) -> None:
        self.client = client
        self.params = {"since": str(since)}
        self.headers = {"Authorization": f"Bearer {token}"}
        self.waiting: dict[tuple[int, str, str], Cascade] = {}
        # deliveries a plan step waits for: (arrow, type) watched; MessageId -> (arrow, type, key) of its body
        self.watched = WAITED
        self.by_mid: dict[str, list[tuple[int, str, str]]] = {}
        self.delivered: dict[tuple[int, str, str], float] = {}
        self.delivery_waits: dict[tuple[int, str, str], Event] = {}
        self.records = 0
        self._glet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._glet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._glet is not None:
            self._glet.kill(block=False)

    def expect(self, c: Cascade) -> None:
        for key in c.missing:
            self.waiting[key] = c
        if not c.missing:
            c.event.set()

    def wait_delivered(self, arrow: int, mtype: str, body_key: str, timeout: float) -> bool:
        """Block this greenlet until the message of ``mtype`` on ``arrow`` whose body holds ``body_key`` has been
        delivered (its delivery record is in the trace), or ``timeout``."""
        key = (arrow, mtype, body_key)
        if self.delivered.pop(key, None) is not None:
            return True
        ev = self.delivery_waits[key] = Event()
        ok = bool(ev.wait(timeout=timeout))
        self.delivery_waits.pop(key, None)
        self.delivered.pop(key, None)
        return ok

    def _run(self) -> None:
        while True:
            try:
                for line in self.client.lines("/trace/stream", self.params, self.headers):
                    self._record(json.loads(line))
            except (*connections.ClientError, ValueError):
                gevent.sleep(0.2)

    def _record(self, rec: dict[str, Any]) -> None:
        now = time.monotonic()
        self.records += 1
        self.params["since"] = str(rec.get("seq", self.params["since"]))
        if rec.get("arrow") is None:
            return
        arrow, mtype, kind = int(rec["arrow"]), str(rec.get("message_type")), rec.get("kind")
        if kind == "delivery" and rec.get("verdict") == "delivered":
            for key in self.by_mid.pop(str(rec.get("message_id")), []):
                ev = self.delivery_waits.get(key)
                if ev is not None:
                    ev.set()
                else:
                    self.delivered[key] = now
            return
        if kind != "message" or rec.get("verdict") != "accepted":
            return
        codes = set(_KEYS.findall(rec.get("payload") or ""))
        if (arrow, mtype) in self.watched:
            self.by_mid[str(rec.get("message_id"))] = [(arrow, mtype, code) for code in codes]
        for code in codes:
            key = (arrow, mtype, code)
            c = self.waiting.pop(key, None)
            if c is not None:
                c.missing.discard(key)
                c.last_seen = max(c.last_seen, now)
                if not c.missing:
                    c.event.set()


class Dispatcher:
    """Start each of this process's actions at its intended time; record what happened to it."""

    def __init__(self, env: Environment, index: int, workers: int) -> None:
        self.env = env
        self.index = index
        self.actions = [Action(float(t), str(fn), int(seed), int(i)) for i, t, fn, seed in PLAN["actions"]
                        if int(i) % workers == index]
        self.planner = Planner(Tenant(str(PLAN["tenant"]), str(PLAN["sut_lg"]), tuple(PLAN["peers"])),
                               date.fromisoformat(str(PLAN["day"])), float(PLAN["compress"]))
        self.base = str(PLAN["gateway"]).rstrip("/")
        self.token = str(PLAN["token"])
        self.tenant = str(PLAN["tenant"])
        self.late = float(PLAN.get("late_ms", 100.0)) / 1000.0
        self.timeout = float(PLAN.get("cascade_timeout", 30.0))
        self.max_inflight = int(PLAN.get("max_inflight", 1000))
        self.client = connections.Client(self.base, float(PLAN.get("reuse_idle_s", 15.0)), max(10, self.max_inflight))
        self.follower = Follower(self.client, self.token, int(PLAN.get("since", 0)))
        self.results: list[list[Any]] = []
        self.inflight = 0
        self.t0 = 0.0
        self.written = False

    def run(self) -> None:
        self.follower.start()
        self.t0 = time.monotonic()
        # the wall-clock time of intended t = 0, so the harness can line its CPU samples up with the schedule
        (Path(PLAN["out"]) / f"start-{self.index}.json").write_text(json.dumps({"t0": time.time()}),
                                                                     encoding="utf-8")
        running = Group()  # forgets each cascade when it ends: a national day must not keep 525,000 of them
        for action in self.actions:
            a = self.planner.action(action)  # built before it is due (≈ 0.3 ms), so it starts on time
            delay = self.t0 + float(a["t"]) - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            running.spawn(self.one, a)
        running.join()
        self.write()

    def one(self, a: dict[str, Any]) -> None:
        intended = self.t0 + float(a["t"])
        start = time.monotonic()
        if self.inflight >= self.max_inflight:
            self._finish(a, intended, None, None, "dropped", f"{self.inflight} cascades open")
            return
        self.inflight += 1
        try:
            c = Cascade(a)
            self.follower.expect(c)
            err = None
            for st in a["steps"]:
                if st["kind"] == "wait":
                    left = max(0.0, start + self.timeout - time.monotonic())
                    if not self.follower.wait_delivered(int(st["arrow"]), str(st["type"]), str(st["key"]), left):
                        err = f"{st['type']} not delivered on arrow {st['arrow']} within {self.timeout:g} s"
                else:
                    err = self._step(st)
                if err:
                    break
            answered = time.monotonic()
            if err is None and not c.event.wait(timeout=max(0.0, start + self.timeout - time.monotonic())):
                missing = ", ".join(f"{t}({ar})" for ar, t, _ in sorted(c.missing))
                err = f"incomplete after {self.timeout:g} s: missing {missing}"
            done = max(answered, c.last_seen)
            status = "late" if start - intended > self.late else "ok"
            self._finish(a, intended, start, done, "error" if err else status, err)
        finally:
            self.inflight -= 1

    def _step(self, st: dict[str, Any]) -> str | None:
        """Send one request; the error, or None."""
        auth = {"Authorization": f"Bearer {self.token}"}
        try:
            if st["kind"] == "counter":
                r = self.client.post("/counter", st["body"].encode("utf-8"),
                                     {**auth, "X-Juki-Tenant": self.tenant,
                                      "Content-Type": "application/xml; charset=utf-8"})
                if r.status != 200:
                    return f"{st['op']}: HTTP {r.status}"
                if "<Status>accepted</Status>" not in r.text:
                    m = re.search(r"<Code>([^<]*)</Code>", r.text)
                    return f"{st['op']}: not accepted ({m.group(1) if m else 'no code'})"
                return None
            r = self.client.post_json(f"/control/tenants/{self.tenant}/send", st["body"], auth)
            data = r.json() if r.status == 200 else {"status": r.status}
            status = data.get("status")
            if status not in (200, 202):
                return f"{st['op']}: HTTP {status}"
            return None
        except (*connections.ClientError, ValueError) as e:
            return f"{st['op']}: {type(e).__name__}"

    def _finish(self, a: dict[str, Any], intended: float, start: float | None, done: float | None,
                status: str, err: str | None) -> None:
        t0 = self.t0
        self.results.append([a["i"], a["fn"], round(intended - t0, 6),
                             None if start is None else round(start - t0, 6),
                             None if done is None else round(done - t0, 6), status, err, a["require"]])
        elapsed = ((done if done is not None else time.monotonic()) - intended) * 1000.0
        self.env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type="cascade" if status != "dropped" else "dropped", name=a["fn"], response_time=elapsed,
            response_length=0, exception=RuntimeError(err) if err else None, context={})

    def write(self) -> None:
        """results-{index}.jsonl: every action of this process and the follower's message counts."""
        if self.written:
            return
        self.written = True
        out = Path(PLAN["out"])
        seen = {i for i, *_ in self.results}
        lines = [json.dumps(r, ensure_ascii=False) for r in self.results]
        lines += [json.dumps([a.index, a.function, a.t / self.planner.compress, None, None, "unsent",
                              "the run ended first", []])
                  for a in self.actions if a.index not in seen]
        (out / f"results-{self.index}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.follower.stop()


_dispatcher: list[Dispatcher] = []


class ScheduleUser(User):
    """The schedule's dispatcher for this process (the roles — counter staff, CS terminal, peers — are the
    actions' ``role``; Locust reports each function as its own request name)."""

    fixed_count = 0

    @task
    def replay(self) -> None:
        runner = self.environment.runner
        if _dispatcher:  # one dispatcher per process even if Locust gave this process two users
            gevent.sleep(3600)
            return
        index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        d = Dispatcher(self.environment, index, int(PLAN.get("workers", 1)) or 1)
        _dispatcher.append(d)
        d.run()
        if isinstance(runner, WorkerRunner):
            runner.send_message("juki_done", {"index": index})
        _local_done.set()
        gevent.sleep(3600)


class ScheduleShape(LoadTestShape):
    """One user per process until every process finished its share of the plan (or the time limit)."""

    def tick(self) -> tuple[int, float] | None:
        workers = int(PLAN.get("workers", 1)) or 1
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        if elapsed > float(PLAN.get("limit", 60.0)):
            return None
        if (workers > 1 and len(_done_workers) >= workers) or (workers <= 1 and _local_done.is_set()):
            return None
        return workers, float(workers)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("juki_done", _worker_done)


def _worker_done(msg: Any, **_: Any) -> None:
    _done_workers.add(int(msg.data["index"]))


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _on_stop(environment: Environment, **_: Any) -> None:
    for d in _dispatcher:
        d.write()
