"""Shared fixtures: a running harness on ephemeral ports (real servers on 127.0.0.1), a stand-in SUT, clients.

Generic on purpose: any test file can take ``harness`` (the Runtime started on a fresh data dir), ``sut``
(a small external system that plays the SUT's inbound and counter endpoints and logs what it got), ``http``
(an aiohttp session) and ``control`` (a JSON client for the control API with the control token).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conformance.envelope import body_of, build, read_header
from conformance.samples import sample
from conformance.xmlsafe import parse
from simulators.config import DeliveryConfig, HarnessConfig, load_config
from simulators.runtime import Runtime

#: Test modules that run whole-suite, subprocess or browser end-to-end runs: marked ``slow`` as a whole, so
#: ``make test-fast`` (``-m "not slow"``) is the inner loop and ``make test`` (CI) still runs them. A new slow
#: test elsewhere carries ``@pytest.mark.slow`` itself.
SLOW_MODULES = frozenset({
    "test_selftest.py", "test_full_run.py", "test_engine_plugin.py", "test_report_browser.py",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


SUT_TOKEN = "sut-secret"
CONTROL_TOKEN = "control-secret"
GATEWAY_TOKEN = "gateway-secret"


@dataclass
class FakeSut:
    """A stand-in SUT: answers its inbound endpoint from ``statuses`` (then 202) and logs every request."""

    url: str = ""
    received: list[bytes] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    counter_requests: list[bytes] = field(default_factory=list)
    counter_reply: Callable[[bytes], bytes] | None = None
    counter_statuses: deque[int] = field(default_factory=deque)
    counter_delay: float = 0.0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def message_ids(self) -> list[str]:
        return [read_header(parse(b)).message_id for b in self.received]

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[bytes]:
        """Until ``n`` inbound requests have arrived (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.received

    async def _inbound(self, request: web.Request) -> web.Response:
        self.received.append(await request.read())
        self.auth.append(request.headers.get("Authorization", ""))
        self._changed.set()
        return web.Response(status=self.statuses.popleft() if self.statuses else 202)

    async def _counter(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.counter_requests.append(data)
        if self.counter_delay:
            await asyncio.sleep(self.counter_delay)
        if self.counter_statuses:
            return web.Response(status=self.counter_statuses.popleft())
        reply = (self.counter_reply or counter_result_for)(data)
        return web.Response(status=200, body=reply, content_type="application/xml")


def counter_result_for(request: bytes) -> bytes:
    """A valid CounterResult envelope answering ``request`` (sample body, the request's ids)."""
    req = read_header(parse(request))
    body = body_of(parse(sample("CounterResult", 1)))
    return build(req.reply("CounterResult", req.sent_at), body)


@pytest.fixture
async def sut() -> AsyncIterator[FakeSut]:
    fake = FakeSut()
    app = web.Application()
    app.router.add_post("/inbound", fake._inbound)
    app.router.add_post("/counter", fake._counter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def harness_config(tmp_path: Path, sut: FakeSut) -> HarnessConfig:
    """Defaults, ephemeral port, a fresh data dir, fast delivery retries, the stand-in SUT's URLs."""
    cfg = load_config(None, data_dir=tmp_path / "var", port=0)
    cfg = replace(cfg, gateway=replace(cfg.gateway, delivery=DeliveryConfig(
        attempts=3, backoff_seconds=0.05, max_backoff_seconds=0.2, timeout_seconds=5.0)))
    return cfg.with_sut(inbound_url=f"{sut.url}/inbound", counter_url=f"{sut.url}/counter")


@pytest.fixture
async def harness(harness_config: HarnessConfig) -> AsyncIterator[Runtime]:
    async with Runtime(harness_config) as rt:
        yield rt


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class Control:
    """The control API with the control token: ``await control("POST", "/tenants", {...})``."""

    http: aiohttp.ClientSession
    base: str

    async def __call__(self, method: str, path: str, body: Any = None, *, expect: int | None = None
                       ) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as r:
            data = await r.json() if r.content_type == "application/json" else await r.text()
            if expect is not None:
                assert r.status == expect, (r.status, data)
            return r.status, data

    async def tenant(self, peers: int = 2, seed: int = 1, **kw: Any) -> dict[str, Any]:
        _, t = await self("POST", "/tenants", {"peers": peers, "seed": seed, **kw}, expect=201)
        assert isinstance(t, dict)
        return t


@pytest.fixture
def control(harness: Runtime, http: aiohttp.ClientSession) -> Control:
    return Control(http, harness.control_url)


async def post_msg(http: aiohttp.ClientSession, harness: Runtime, data: bytes, token: str | None = SUT_TOKEN
                   ) -> tuple[int, bytes]:
    """POST an envelope to /msg as the SUT (or with ``token``); (status, body)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with http.post(f"{harness.gateway_url}/msg", data=data, headers=headers) as r:
        return r.status, await r.read()


def identity_notice(i: int) -> bytes:
    """A valid IdentityNotice (juki -> cs, arrow 8) for a new person ``i`` (Change/Seq 1)."""
    from simulators.bench import make_bodies

    return make_bodies(900_000 + i, 1)[0]


def person_of(i: int) -> str:
    """The 住民票コード of ``identity_notice(i)``."""
    from simulators.bench import bench_ids

    return bench_ids(900_000 + i)[1]


def body_xml(envelope: bytes) -> str:
    """The body element of an envelope as a string (what the control API's send takes)."""
    from lxml import etree

    return etree.tostring(body_of(parse(envelope)), encoding="unicode")


async def send_to_sut(control: Control, tenant: str, seed: int) -> dict[str, Any]:
    """Make the simulated CS send a MoveOutCertRequest to the SUT (arrow 9); the control API's answer."""
    _, out = await control("POST", f"/tenants/{tenant}/send", {
        "actor": "cs", "to": "juki", "type": "MoveOutCertRequest",
        "body": body_xml(sample("MoveOutCertRequest", seed))}, expect=200)
    assert isinstance(out, dict)
    return out
