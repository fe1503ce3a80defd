"""Issue 13 item 8: every file of the hostile corpus, sent to every endpoint that takes XML, is refused with
its precise code — no 5xx, no outbound connection, bounded time and memory (tests/hostile/manifest.json)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from hostile_corpus import ENDPOINTS, HOSTILE, Case, first_code, load_manifest

from conformance.lint import lint_paths
from simulators.config import HarnessConfig, load_config
from simulators.edge import Limits
from simulators.runtime import Runtime

CASES = load_manifest()
SUT_TOKEN, CONTROL_TOKEN, GATEWAY_TOKEN = "sut-secret", "control-secret", "gateway-secret"


class Canary:
    """A TCP listener the corpus's outbound URLs point to: any connection is a leak."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _on(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        w.close()

    async def __aenter__(self) -> Canary:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


def _config(tmp: Path) -> HarnessConfig:
    cfg = load_config(None, data_dir=tmp / "var", port=0)
    limits = Limits(header_timeout=1.0, body_timeout=1.5, idle_timeout=5.0, sweep_seconds=0.2)
    return replace(cfg, gateway=replace(cfg.gateway, limits=limits))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Runtime, Canary, dict[str, tuple[str, str]]]]:
    async with Canary() as canary, Runtime(_config(tmp_path), with_reference_sut=True) as rt:
        eps = {"gw-msg": (f"{rt.gateway_url}/msg", SUT_TOKEN),
               "gw-counter": (f"{rt.gateway_url}/counter", CONTROL_TOKEN),
               "sut-inbound": (rt.config.sut.inbound_url, GATEWAY_TOKEN),
               "sut-counter": (rt.config.sut.counter_url, GATEWAY_TOKEN)}
        yield rt, canary, eps


def test_the_manifest_names_every_file_of_the_corpus_and_only_those() -> None:
    files = {p.name for p in HOSTILE.glob("*.xml")}
    assert files == {c.file for c in CASES if c.file}
    assert len(CASES) >= 30 and all(set(c.endpoints) <= set(ENDPOINTS) for c in CASES)
    assert sum((HOSTILE / f).stat().st_size for f in files) < 200_000  # big ones are generated, not committed


async def _send(http: aiohttp.ClientSession, url: str, token: str, data: bytes) -> tuple[int, str | None]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/xml"}
    async with http.post(url, data=data, headers=headers) as r:
        body = await r.read()
        assert len(body) < 64 * 1024, f"an error answer of {len(body)} bytes"
        return r.status, first_code(body)


async def test_every_case_is_refused_with_its_code_everywhere(world: Any, tmp_path: Path) -> None:
    rt, canary, eps = world
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    wrong: list[str] = []
    sent = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for case in CASES:
            data = case.data(canary.address)
            for ep in case.endpoints:
                t0 = time.perf_counter()
                if ep == "lint":
                    p = tmp_path / (case.file or f"{case.name}.xml")
                    p.write_bytes(data)
                    findings = lint_paths([str(p)])[0][1]
                    status, code = (400 if findings else 200), (findings[0].code if findings else None)
                else:
                    url, token = eps[ep]
                    status, code = await _send(http, url, token, data)
                sent += 1
                took = time.perf_counter() - t0
                if status < 400 or status >= 500 or code != case.expected(ep) or took > 3.0:
                    wrong.append(f"{case.name} -> {ep}: HTTP {status} {code} in {took:.2f}s "
                                 f"(expected {case.expected(ep)})")
    assert not wrong, "\n".join(wrong)
    assert sent >= 120
    await asyncio.sleep(0.2)
    assert canary.connections == 0, "an outbound connection was made"
    assert proc.memory_info().rss - rss0 < 300 * 1024 * 1024  # gateway, SUT and client together
    assert await _health(rt.gateway_url) and await _health(rt.sut_url or "")


async def _health(base: str) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/health") as r:
        return r.status == 200


def case_ids() -> list[str]:
    return [c.name for c in CASES]


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)
