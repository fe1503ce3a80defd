"""Issue 13 item 3: slow headers, slow and endless bodies, too many connections — cut off, /health answers.

Runs against the reference SUT's edge (``simulators.edge.GuardedRunner``, short timeouts so each test takes
a few seconds); the gateway's edge is the same runner (tests/test_hostile_gateway.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from simulators.edge import Limits, RefusalLimiter
from simulators.hostile import Target, during, p99, slow_body, slow_connections, slow_header
from simulators.reference.app import ReferenceSut
from simulators.reference.config import RefConfig

LIMITS = Limits(header_timeout=1.0, body_timeout=1.5, idle_timeout=3.0, max_connections=600,
                sweep_seconds=0.2)


@pytest.fixture
async def sut(tmp_path: Path) -> AsyncIterator[ReferenceSut]:
    cfg = RefConfig(data_dir=tmp_path / "ref", limits=LIMITS, gateway_url="http://127.0.0.1:9")
    async with ReferenceSut(cfg) as s:
        yield s


async def test_a_slow_header_is_cut_off_after_the_header_timeout(sut: ReferenceSut) -> None:
    t = Target.of(sut.inbound_url)
    cut = await slow_header(t, seconds=5.0, interval=0.2)
    assert cut is not None and 0.9 <= cut <= 2.5, cut


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_slow_or_endless_body_is_cut_off_after_the_body_timeout(sut: ReferenceSut,
                                                                         chunked: bool) -> None:
    t = Target.of(sut.inbound_url)
    cut = await slow_body(t, seconds=6.0, chunked=chunked, token=sut.cfg.inbound_token, interval=0.2)
    assert cut is not None and 1.4 <= cut <= 3.5, cut


@pytest.mark.slow  # seconds of real waiting: runs in `make test`, not in the fast set
async def test_health_answers_quickly_while_200_plus_200_slow_clients_are_held(sut: ReferenceSut) -> None:
    t = Target.of(sut.inbound_url)
    res, lat = await during(lambda: slow_connections(t, 200, 200, 4.0, token=sut.cfg.inbound_token),
                            f"{sut.url}/health", 3.0)
    assert res["still_held_at_end"] == 0  # every attacker was cut off by the timeouts
    assert len(lat) > 20 and p99(lat) < 250, (len(lat), p99(lat))  # generous: 2 shared cores


async def test_connections_beyond_the_limit_are_answered_503_and_closed(tmp_path: Path) -> None:
    cfg = RefConfig(data_dir=tmp_path / "ref", limits=Limits(max_connections=5, header_timeout=5.0),
                    gateway_url="http://127.0.0.1:9")
    async with ReferenceSut(cfg) as sut:
        held = [await asyncio.open_connection("127.0.0.1", sut.port) for _ in range(5)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", sut.port)
        answer = await asyncio.wait_for(reader.read(1024), 3)
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After" in answer
        writer.close()
        for _, w in held:
            w.close()


async def test_a_body_over_the_limit_is_an_error_report_with_xml_size(sut: ReferenceSut) -> None:
    headers = {"Authorization": f"Bearer {sut.cfg.inbound_token}", "Content-Type": "application/xml"}
    async with aiohttp.ClientSession() as http, \
            http.post(sut.inbound_url, data=b"<a>" + b"x" * (3 * 1024 * 1024) + b"</a>", headers=headers) as r:
        body = await r.read()
    assert r.status == 413
    assert b"XML-SIZE" in body and b"ErrorReport" in body


def test_refusals_are_rate_limited_per_source_with_a_retry_after() -> None:
    lim = RefusalLimiter(per_minute=3)
    assert [lim.allow("10.0.0.1", now=0.0)[0] for _ in range(3)] == [True] * 3
    ok, suppressed, retry = lim.allow("10.0.0.1", now=1.0)
    assert not ok and suppressed == 1 and 58.0 <= retry <= 60.0
    assert lim.allow("10.0.0.2", now=1.0)[0]  # another source has its own budget
    ok, suppressed, _ = lim.allow("10.0.0.1", now=61.0)  # a new window: recorded, and the count carried
    assert ok and suppressed == 1


async def test_health_answers_while_attribute_floods_are_validated(sut: ReferenceSut) -> None:
    from hostile_corpus import attribute_flood, first_code

    flood = attribute_flood()
    headers = {"Authorization": f"Bearer {sut.cfg.inbound_token}", "Content-Type": "application/xml"}

    async def attack() -> list[tuple[int, str | None]]:
        out = []
        async with aiohttp.ClientSession() as http:
            for _ in range(4):
                async with http.post(sut.inbound_url, data=flood, headers=headers) as r:
                    out.append((r.status, first_code(await r.read())))
        return out

    answers, lat = await during(attack, f"{sut.url}/health", 1.5)
    assert answers == [(400, "XML-ATTRIBUTES")] * 4
    assert len(lat) > 10 and p99(lat) < 250, (len(lat), p99(lat))
