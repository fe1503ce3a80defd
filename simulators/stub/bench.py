"""``python -m simulators.stub.bench``: CPU per counter operation of the stub SUT, measured in its own process.

Why a separate process: in ``juki-harness load`` the stub shares the harness process with the gateway, so
``time.process_time`` there mixes both. Here the stub runs as ``python -m simulators.stub``, the gateway in
this process, and the stub's CPU is read from the OS (psutil) around N operations of each kind; each kind's
consequences (3–4 messages through the real gateway: XSD, rules, trace) are included in the gateway figure.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from conformance.envelope import build, header
from conformance.model import Resident
from conformance.residents import ResidentFactory, make_faker, municipality_for
from conformance.scenario import address_xml, counter_person_xml, jdate_xml
from conformance.xmlsafe import NS, parse
from simulators.clock import JST
from simulators.config import load_config
from simulators.runtime import Runtime

TOKEN = {"Authorization": "Bearer gateway-secret"}


class _Requests:
    """CounterRequest envelopes as the load test sends them (load/plan.py, which this layer cannot import)."""

    def __init__(self, lg: str, day: date) -> None:
        self.lg, self.day = lg, day
        self.sent_at = datetime.combine(day, datetime.min.time(), JST).replace(hour=9)

    def counter(self, op: str, inner: str) -> dict[str, Any]:
        root = parse(f'<_w xmlns="{NS}"><CounterRequest><OperationDate>{self.day.isoformat()}</OperationDate>'
                     f"<Staff>bench</Staff><{op}>{inner}</{op}></CounterRequest></_w>")
        h = header("CounterRequest", ("counter", self.lg), ("juki", self.lg), sent_at=self.sent_at,
                    business_date=self.day)
        return {"op": op, "body": build(h, root[0]).decode("utf-8")}

    def address(self, lg: str, seed: int) -> str:
        return str(address_xml(make_faker(f"bench:{seed}:{lg}").address_in(municipality_for(lg)), "NewAddress"))

    def record(self, r: Resident) -> dict[str, Any]:
        return self.counter("OfficialCorrection", (
            f"<Action>記載</Action><Basis>性能測定</Basis>{jdate_xml(r.resident_since or r.birth_date, 'EventDate')}"
            f"{counter_person_xml(r)}{address_xml(r.address, 'NewAddress')}"))

    def move_out(self, r: Resident, to_lg: str, seed: int) -> dict[str, Any]:
        return self.counter("MovingNotification", (
            f"<Kind>国内転出</Kind>{jdate_xml(self.day + timedelta(days=7), 'EventDate')}<ToLgCode>{to_lg}</ToLgCode>"
            f"{self.address(to_lg, seed)}<Person><JuminhyoCode>{r.juminhyo_code}</JuminhyoCode></Person>"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bench(n: int, concurrency: int, out: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """{kind: {"stub_ms": CPU ms per operation in the stub, "harness_ms": in the gateway process, "ops_s"}}."""
    day = date(2026, 3, 30)
    with tempfile.TemporaryDirectory(prefix="stub-bench-") as tmp:
        cfg = load_config(None, data_dir=Path(tmp), port=0)
        async with Runtime(cfg) as rt:
            port = _port()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulators.stub", "--port", str(port), "--gateway-url", rt.gateway_url,
                "--lg-code", cfg.sut.lg_code, stdout=asyncio.subprocess.PIPE)
            try:
                assert proc.stdout is not None
                await asyncio.wait_for(proc.stdout.readline(), 20)
                return await _drive(proc.pid, f"http://127.0.0.1:{port}", cfg.sut.lg_code, day, n, concurrency,
                                    out)
            finally:
                proc.terminate()
                await proc.wait()


async def _drive(pid: int, url: str, lg: str, day: date, n: int, concurrency: int,
                 out: Callable[[str], None]) -> dict[str, dict[str, float]]:
    b = _Requests(lg, day)
    people = [ResidentFactory(10_000 + i, lg, hard_share=0.0, today=day).resident() for i in range(n)]
    kinds: dict[str, list[dict[str, Any]]] = {
        "record (職権記載)": [b.record(r) for r in people],
        "tenkyo (転居)": [b.counter("MovingNotification", (
            f"<Kind>転居</Kind>{jdate_xml(day, 'EventDate')}{b.address(lg, i)}"
            f"<Person><JuminhyoCode>{r.juminhyo_code}</JuminhyoCode></Person>")) for i, r in enumerate(people)],
        "copy (写し)": [b.counter("CopyRequest", (
            f"<JuminhyoCode>{r.juminhyo_code}</JuminhyoCode><Scope>本人</Scope><Requester>本人</Requester>"
            "<Relationship>false</Relationship><Honseki>false</Honseki><IncludeMyNumber>false</IncludeMyNumber>"
            "<IncludeJuminhyoCode>false</IncludeJuminhyoCode>")) for r in people],
        "move_out (転出)": [b.move_out(r, "271276", i) for i, r in enumerate(people)],
        "move_in (転入)": [b.counter("MovingNotification", (
            f"<Kind>国内転入</Kind>{jdate_xml(day - timedelta(days=3), 'EventDate')}<FromLgCode>271276</FromLgCode>"
            f"{b.address(lg, i)}<MoveOutCertificateNo>MOC-{r.juminhyo_code}</MoveOutCertificateNo>"
            f"<Person><JuminhyoCode>{r.juminhyo_code}</JuminhyoCode><MyNumber>{r.my_number}</MyNumber>"
            f"<Name><Kanji>試験 太郎</Kanji></Name>{jdate_xml(r.birth_date, 'BirthDate')}<Sex>1</Sex></Person>"))
            for i, r in enumerate(ResidentFactory(90_000 + j, "271276", hard_share=0.0, today=day).resident()
                                  for j in range(n))],
    }
    stub, me = psutil.Process(pid), psutil.Process()
    results: dict[str, dict[str, float]] = {}
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:
        async def one(step: dict[str, Any]) -> None:
            async with sem, session.post(f"{url}/counter", data=step["body"].encode(), headers=TOKEN) as resp:
                body = await resp.read()
                if resp.status != 200 or b"<Status>accepted</Status>" not in body:
                    raise RuntimeError(f"{step['op']}: {resp.status} {body[:300]!r}")

        async def quiet() -> None:  # the stub's lanes drained: its sends are part of the operation's cost
            while True:
                async with session.get(f"{url}/health") as resp:
                    if (await resp.json())["outbox_pending"] == 0:
                        return
                await asyncio.sleep(0.05)

        for kind, steps in kinds.items():
            s0, m0, t0 = sum(stub.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.monotonic()
            await asyncio.gather(*(one(s) for s in steps))
            await quiet()
            await asyncio.sleep(0.3)  # the gateway's own delivery of what the stub sent
            s1, m1, t1 = sum(stub.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.monotonic()
            row = {"stub_ms": 1000 * (s1 - s0) / n, "harness_ms": 1000 * (m1 - m0) / n, "ops_s": n / (t1 - t0 - 0.3)}
            results[kind] = row
            out(f"{kind:18s} stub {row['stub_ms']:6.2f} ms CPU/op   harness (gateway+client) "
                f"{row['harness_ms']:6.2f} ms CPU/op   {row['ops_s']:7.1f} ops/s")
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m simulators.stub.bench", description=__doc__.split("\n")[0])
    p.add_argument("--ops", type=int, default=500, help="operations of each kind (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args(argv)
    asyncio.run(bench(a.ops, a.concurrency))


if __name__ == "__main__":
    main()
