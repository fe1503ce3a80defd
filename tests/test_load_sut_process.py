"""Our own SUTs as child processes of ``juki-harness load``, the bottleneck sentence, absolute output paths.

What must hold: the SUT child is wired from the harness config (全国地方公共団体コード, both tokens), answers
before the run starts, is gone afterwards even when the run is cancelled; a child that dies or never answers
stops the run with LOAD-SUT naming the command and the end of its output, with no 個人番号 in clear there or in
``sut.log``; the bottleneck sentence names the side whose CPU ran out, with the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import date
from pathlib import Path

import aiohttp
import psutil
import pytest

from conformance.engine import Harness
from conformance.errors import HarnessError
from conformance.identifiers import make_my_number
from load.model import LoadModel, Scale
from load.plan import Planner, Tenant
from load.report import bottleneck
from load.runner import LoadOptions, LoadOutcome, harness_and_sut, locust_commands, run_setup, sut_child
from load.stats import Row, Stats
from simulators.tls import make_certs

MY_NUMBER = make_my_number("12345678901")  # a valid (synthetic) 個人番号


def _running(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    return False


async def test_the_stub_child_is_wired_from_the_config_and_stopped_even_on_cancel(tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text('[gateway.tokens]\ngateway_to_sut = "gw-to-sut-x"\ncontrol = "ctl-x"\n'
                   '[sut]\nlg_code = "271276"\ntoken = "sut-x"\n', encoding="utf-8")
    opts = LoadOptions(sut="stub", config=str(cfg))
    started, pids = asyncio.Event(), []

    async def hold() -> None:
        async with harness_and_sut(opts, tmp_path / "data", tmp_path) as (rt, child), \
                aiohttp.ClientSession() as session:
            assert child is not None and child.pid is not None
            pids.append(child.pid)
            assert rt.config.sut.counter_url == f"{child.url}/counter"  # the gateway sends to the child
            assert child.cmd[child.cmd.index("--token") + 1] == "sut-x"
            assert child.cmd[child.cmd.index("--gateway-url") + 1] == rt.gateway_url
            assert "sut-x" not in child.shown() and "gw-to-sut-x" not in child.shown()
            async with session.get(f"{child.url}/contract") as resp:
                assert (await resp.json())["lg_code"] == "271276"
            for token, status in (("gateway-secret", 401), ("gw-to-sut-x", 400)):  # 400: authorised, bad body
                async with session.post(f"{child.url}/counter", data=b"<x/>",
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == status
            assert psutil.Process(child.pid).cmdline()[1:3] == ["-m", "simulators.stub"]
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(hold())
    await asyncio.wait([task, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED,
                       timeout=25)
    assert started.is_set(), task.exception() if task.done() else "the stub child never answered"
    assert _running(pids[0])
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not _running(pids[0])
    assert "listening on" in (tmp_path / "sut.log").read_text(encoding="utf-8")


@pytest.mark.slow  # a stub SUT child process and 30 actions' fixtures: seconds
async def test_set_up_registers_every_persons_identifiers_with_the_load_tenant(tmp_path: Path) -> None:
    """The SUT's messages belong to the load tenant by its persons' identifiers: registered before the
    fixtures are sent, not only learned from traffic (a bounded window a national day's set-up outgrows)."""
    sched = LoadModel.default().schedule(Scale.parse("municipality:300000"), date(2026, 3, 30), 5)[:30]
    async with harness_and_sut(LoadOptions(sut="stub"), tmp_path / "data", tmp_path) as (rt, _), \
            aiohttp.ClientSession() as session:
        h = Harness(session, rt.gateway_url, rt.config.gateway.tokens.control)
        t = await h.create_tenant("load", 2, 5)
        tenant = Tenant(str(t["tenant"]), str(t["sut_lg"]), tuple(str(p["lg_code"]) for p in t["peers"]))
        planner = Planner(tenant, date(2026, 3, 30), 600.0)
        sent, errors = await run_setup(h, tenant, planner, sched, 4)
        assert errors == [] and sent == sum(len(planner.fixtures(a)) for a in sched) + len(
            planner.pool_fixtures(sched))
        ids = {v for a in sched for v in planner.ids(a)}
        assert {rt.gateway.tenant_by_id(v) for v in ids} == {tenant.tenant}


@pytest.mark.parametrize("sut", ["stub", "http://127.0.0.1:9"])
async def test_a_gateway_with_tls_is_refused_up_front_with_load_tls(tmp_path: Path, sut: str) -> None:
    """Locust and our SUTs hold no CA for the gateway's certificate: say so before anything starts, rather
    than a run whose every request fails on the certificate."""
    make_certs(tmp_path / "certs", [])
    cfg = tmp_path / "h.toml"
    cfg.write_text(f'[gateway]\ntls_cert = "{tmp_path}/certs/gateway.pem"\n'
                   f'tls_key = "{tmp_path}/certs/gateway-key.pem"\n', encoding="utf-8")
    with pytest.raises(HarnessError) as err:
        async with harness_and_sut(LoadOptions(sut=sut, config=str(cfg)), tmp_path / "data", tmp_path):
            pytest.fail("the harness started")
    assert err.value.findings[0].code == "LOAD-TLS" and "tls_cert" in err.value.findings[0].message
    assert not (tmp_path / "sut.log").exists()


async def test_a_child_that_dies_stops_the_run_naming_it_with_the_number_masked(tmp_path: Path) -> None:
    script = f"import sys; print('register failed for {MY_NUMBER}', file=sys.stderr); sys.exit(3)"
    log = tmp_path / "sut.log"
    with pytest.raises(HarnessError) as e:
        async with sut_child([sys.executable, "-c", script, "--token", "secret-t"], "http://127.0.0.1:9", log):
            pytest.fail("a dead child is not ready")
    f = e.value.findings[0]
    assert f.code == "LOAD-SUT"
    assert "exited with code 3" in f.message and "register failed for" in f.message
    assert MY_NUMBER not in f.message and MY_NUMBER[-4:] in f.message  # masked: ********  + last four
    assert "secret-t" not in f.message
    text = log.read_text(encoding="utf-8")
    assert "register failed for" in text and MY_NUMBER not in text


async def test_a_child_that_never_answers_is_named_and_killed(tmp_path: Path) -> None:
    script = "import time; print('starting', flush=True); time.sleep(60)"
    with pytest.raises(HarnessError) as e:
        async with sut_child([sys.executable, "-c", script], "http://127.0.0.1:9", tmp_path / "sut.log",
                             ready_timeout=1.0):
            pytest.fail("never ready")
    f = e.value.findings[0]
    assert f.code == "LOAD-SUT" and "did not answer GET http://127.0.0.1:9/health within 1 s" in f.message
    assert "starting" in f.message
    pids = [p.pid for p in psutil.Process().children() if "time.sleep(60)" in " ".join(p.cmdline())]
    assert pids == []  # terminated on the way out


def test_locust_writes_into_an_absolute_out_folder_whatever_was_given(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for workers in (0, 2):
        cmds = locust_commands(LoadOptions(workers=workers), tmp_path / "plan.json", Path("load-results"))
        master = cmds[0]
        csv, html = master[master.index("--csv") + 1], master[master.index("--html") + 1]
        assert csv == str(tmp_path / "load-results" / "locust") and Path(html).is_absolute()
        assert len(cmds) == workers + 1


def _cpu(gw: float, sut: float | None, loc: float, machine: float = 50.0, n: int = 10) -> list[dict[str, float]]:
    rows = []
    for i in range(n):
        r = {"t": float(i), "gateway_cpu": gw, "locust_cpu": loc, "locust_cpu_max": loc, "machine_cpu": machine,
             "lanes": 3.0, "trace_seq": 0.0}
        if sut is not None:
            r["sut_cpu"] = sut
        rows.append(r)
    rows[0] = {**rows[0], "gateway_cpu": 0.0, "locust_cpu": 0.0, "locust_cpu_max": 0.0}  # the priming sample
    return rows


LATE = [Row(i, "copy", float(i), i + 1.0, i + 1.1, "late", None) for i in range(100)]
QUEUED = [Row(i, "copy", float(i), float(i), i + 3.0, "ok", None) for i in range(100)]
ON_TIME = [Row(i, "copy", float(i), float(i), i + 0.05, "ok", None) for i in range(100)]


@pytest.mark.parametrize(("rows", "cpu", "start", "figures"), [
    (QUEUED, _cpu(97.0, 40.0, 10.0), "The harness was the bottleneck (its gateway process, one event loop, "
     "at 97% of one core while the SUT process used 40%)", ["p95 3000", "Locust 10%"]),
    (LATE, _cpu(60.0, 95.0, 10.0), "The SUT side was the bottleneck (the SUT process at 95% of one core",
     ["100.0% of the actions started late", "gateway process used 60%"]),
    (LATE, _cpu(30.0, 30.0, 92.0), "The harness was the bottleneck (its load generator: a Locust process at 92%",
     ["--workers", "SUT process 30%"]),
    (ON_TIME, _cpu(40.0, 35.0, 10.0), "Neither was saturated", ["p95 50.0 ms", "SUT process 35%",
                                                               "gateway process 40%"]),
    (ON_TIME, _cpu(99.0, 14.0, 30.0), "Neither held the run back, but the gateway process at 99% of one core",
     ["a higher rate would saturate it", "SUT process 14%"]),
    (QUEUED, _cpu(95.0, 96.0, 10.0), "Both sides were saturated: the gateway process at 95% and the SUT "
     "process at 96%", []),
    (QUEUED, _cpu(70.0, 70.0, 40.0, machine=97.0), "The machine was the bottleneck: its cores were 97% busy",
     []),
    (QUEUED, _cpu(30.0, 20.0, 10.0), "No process was CPU-bound, yet", ["up to 3 queued"]),
    (QUEUED, _cpu(30.0, None, 10.0), "The SUT side was the bottleneck: the harness kept to the schedule",
     ["SUT not measured"]),
])
def test_the_bottleneck_sentence_names_the_side_that_ran_out(rows: list[Row], cpu: list[dict[str, float]],
                                                              start: str, figures: list[str]) -> None:
    text = bottleneck(LoadOutcome(stats=Stats(rows=rows, cpu=cpu)))
    assert text.startswith(start), text
    for f in figures:
        assert f in text, text


def test_one_busy_second_is_not_a_saturated_gateway() -> None:
    cpu = _cpu(40.0, 30.0, 10.0, n=20)
    cpu[5] = {**cpu[5], "gateway_cpu": 99.0}  # one spike in 20 samples: the 90th percentile stays at 40 %
    text = bottleneck(LoadOutcome(stats=Stats(rows=QUEUED, cpu=cpu)))
    assert text.startswith("No process was CPU-bound"), text
