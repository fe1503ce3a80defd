"""Issue 13 item 9: the soak benchmark runs `serve` as a process, samples RSS and fds, and judges flatness."""

from __future__ import annotations

import pytest

from simulators.soak import soak, verdict


def test_the_verdict_sees_growth_and_flatness() -> None:
    flat = [{"rss_mb": 80.0 + (i % 2), "fds": 12} for i in range(20)]
    growing = [{"rss_mb": 80.0 + 5 * i, "fds": 12 + i} for i in range(20)]
    assert verdict(flat)["flat"] and not verdict(growing)["flat"]


@pytest.mark.slow
async def test_a_short_soak_samples_the_serve_process_and_stays_flat() -> None:
    res = await soak(5 / 60, rate=50, every=1.0)  # ≈ 5 s of load after a ≈ 2 s start
    assert res["answers"].get("202", 0) > 100
    assert set(res["answers"]) <= {"202", "400", "401"}  # the refusals mixed in on purpose, no 5xx
    assert len(res["samples"]) >= 4 and all(s["rss_mb"] > 10 and s["fds"] > 3 for s in res["samples"])
    assert res["flat"], res
