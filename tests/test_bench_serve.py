"""`bench gateway` / `bench peers` against real processes on loopback, and the open-model scheduler."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from simulators.bench_load import open_schedule
from simulators.bench_serve import bench_gateway, bench_peers, mountebank_bin

GATEWAY_FIELDS = {
    "messages", "answers_by_status", "all_202", "busy_retries", "accepted", "accepted_msgs_per_s",
    "relays_per_message", "relays_recorded", "relays_expected", "sustained_msgs_per_s", "gateway_cpu_us_per_msg",
    "latency_rate_msgs_per_s", "p50_ms", "p99_ms", "service_p50_ms", "service_p99_ms", "late_sends",
    "rss_mb_start", "rss_mb_after_10k",
    "rss_mb_end", "trace_bytes_per_message", "rate_deciles_msgs_per_s", "loadavg", "trace_verified",
}


def test_open_schedule_counts_late_sends_of_a_slow_target() -> None:
    """Two slots, a target taking 20 ms, 500 msg/s due: most sends start late and latency shows the queue."""

    async def slow(i: int) -> None:
        await asyncio.sleep(0.02)

    res = asyncio.run(open_schedule(slow, 40, 500.0, slots=2))
    assert len(res.latencies) == 40
    assert res.late >= 30
    assert res.max_late_s > 0.2  # 40 messages, 2 at a time, 20 ms each: the last waits ~0.4 s minus 80 ms
    assert max(res.latencies) > 0.25  # measured from the due time, not from when the slot freed
    assert len(res.service) == 40 and max(res.service) < 0.15  # the target's own time: 20 ms, not the queue


def test_open_schedule_fast_target_has_no_late_sends() -> None:
    async def fast(i: int) -> None:
        await asyncio.sleep(0)

    res = asyncio.run(open_schedule(fast, 50, 200.0, slots=4))
    assert res.late < 25 and res.max_late_s < 0.05  # timer jitter on a busy machine, never a queue
    assert res.elapsed_s >= 49 / 200  # the schedule is kept, not rushed


@pytest.mark.slow
def test_bench_gateway_2000_messages_against_serve() -> None:
    r = bench_gateway(messages=2000, open_seconds=1.0)
    assert set(r) >= GATEWAY_FIELDS
    assert r["all_202"] and r["answers_by_status"].keys() == {"202"}
    assert r["accepted"] == r["messages"] == 2000
    assert r["relays_per_message"] >= 1 and r["relays_recorded"] >= r["relays_expected"]
    assert 0 < r["sustained_msgs_per_s"] <= r["accepted_msgs_per_s"]
    assert r["gateway_cpu_us_per_msg"] > 0 and r["rss_mb_end"] > 0
    assert len(r["rate_deciles_msgs_per_s"]) == 10
    assert r["trace_verified"] is True


@pytest.mark.slow  # seconds of real waiting: runs in `make test`, not in the fast set
def test_bench_peers_gateway_and_stub() -> None:
    r = bench_peers(messages=400, connections=8, mountebank=False)
    assert set(r["targets"]) == {"gateway", "stub"}
    assert r["all_202"] and r["trace_verified"]
    assert r["gateway_over_mountebank"] is None
    # the ratio is printed to 3 decimals: the bound is that rounding, however small the ratio
    assert r["gateway_over_stub"] == pytest.approx(r["targets"]["gateway"]["msgs_per_s"]
                                                   / r["targets"]["stub"]["msgs_per_s"], abs=5.1e-4)
    assert any("stub alone" in n for n in r["notes"])


def test_mountebank_without_npm_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    mb, why = mountebank_bin(cache=tmp_path)
    assert mb is None and "npm is not on PATH" in why


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is absent on this machine: Mountebank cannot be "
                                                         "installed (the message path is tested above)")
def test_bench_peers_with_mountebank() -> None:
    r = bench_peers(messages=500, connections=8)
    assert set(r["targets"]) == {"gateway", "stub", "mountebank"}, r["notes"]
    assert r["all_202"] and r["trace_verified"]
    assert r["gateway_over_mountebank"] is not None and r["gateway_over_mountebank"] > 0
