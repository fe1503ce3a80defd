"""The running harness: trace, gateway with every simulated actor, HTTP server, optionally the reference SUT.

Why one context manager: ``serve``, ``certify`` and the tests start exactly the same thing, and everything
must stop cleanly in reverse order (server, deliveries, trace writer, reference SUT) whatever happens::

    async with Runtime(config, with_reference_sut=True) as rt:
        rt.gateway_url, rt.sut_url, rt.trace_url, rt.control_url, rt.gateway, rt.config

Ports ``0`` in the config mean ephemeral ports; the URLs hold the ports actually bound. With the reference
SUT, the gateway is bound first (the SUT needs its URL), then the SUT, then the gateway learns the SUT's URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from simulators.base import Simulator
from simulators.config import HarnessConfig
from simulators.gateway import Gateway, ValidatorLike
from simulators.gateway.http import build_app, start_server
from simulators.trace import TraceStore

log = logging.getLogger("juki.runtime")
T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (a cheaper hot path: issue 10), else None (asyncio's)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], *, fast: bool = True) -> T:
    """``asyncio.run`` on uvloop where installed (``serve``, ``certify``); ``fast=False``: plain asyncio."""
    with asyncio.Runner(loop_factory=loop_factory() if fast else None) as runner:
        return runner.run(main)


class Runtime:
    """Start (``async with``) and stop the whole harness; exposes URLs, the config and the Gateway."""

    def __init__(self, config: HarnessConfig, *, with_reference_sut: bool = False,
                 reference_defects: Iterable[str] = (), memory_trace: bool = False,
                 validator: ValidatorLike | None = None,
                 simulators: Mapping[str, Callable[[Gateway], Simulator]] | None = None) -> None:
        self.config = config
        self.with_reference_sut = with_reference_sut
        self.reference_defects = frozenset(reference_defects)
        self.memory_trace = memory_trace
        self._validator = validator
        self._simulators = simulators
        self._stack: contextlib.AsyncExitStack | None = None
        self._gateway: Gateway | None = None
        self.gateway_url = ""
        self.sut_url: str | None = None
        self.port = 0

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            raise RuntimeError("the runtime is not started")
        return self._gateway

    @property
    def trace_url(self) -> str:
        return f"{self.gateway_url}/trace"

    @property
    def control_url(self) -> str:
        return f"{self.gateway_url}/control"

    @property
    def store(self) -> TraceStore:
        return self.gateway.store

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        gw_cfg = cfg.gateway
        store = await stack.enter_async_context(TraceStore(None if self.memory_trace else gw_cfg.trace_path))
        gw = await stack.enter_async_context(Gateway(cfg, store, validator=self._validator,
                                                     simulators=self._simulators))
        self._gateway = gw
        if gw.missing_simulators:
            log.warning("no simulator for: %s (messages to them are answered 503)",
                        ", ".join(gw.missing_simulators))
        runner, self.port = await start_server(build_app(gw), gw_cfg)
        stack.push_async_callback(runner.cleanup)
        host = f"[{gw_cfg.host}]" if ":" in gw_cfg.host else gw_cfg.host
        self.gateway_url = f"{gw_cfg.scheme}://{host}:{self.port}"
        if self.with_reference_sut:
            url = await stack.enter_async_context(_reference_sut(self, self.reference_defects))
            self.sut_url = url
            self.config = cfg.with_sut(inbound_url=f"{url}/inbound", counter_url=f"{url}/counter")
            gw.set_sut(self.config)
        else:
            self.sut_url = cfg.sut.inbound_url.rsplit("/", 1)[0]

    def describe(self) -> dict[str, Any]:
        """Where everything listens (printed by ``serve``)."""
        gw = self.gateway
        return {
            "gateway": self.gateway_url, "msg": f"{self.gateway_url}/msg", "trace": self.trace_url,
            "control": self.control_url, "counter": f"{self.gateway_url}/counter",
            "sut": self.sut_url, "sut_inbound": self.config.sut.inbound_url,
            "sut_counter": self.config.sut.counter_url, "reference_sut": self.with_reference_sut,
            "trace_file": None if self.memory_trace else str(self.config.gateway.trace_path),
            "trace_commits": self.store.commit_mode,
            "trace_sync_ms": None if self.store.sync_latency_s is None else round(self.store.sync_latency_s * 1e3, 3),
            "simulated": sorted(gw.sims), "real": {a: c.url for a, c in self.config.real_actors.items()},
            "missing_simulators": gw.missing_simulators, "replayed_records": gw.replayed,
        }


@contextlib.asynccontextmanager
async def _reference_sut(rt: Runtime, defects: frozenset[str]) -> Any:
    """Start simulators.reference (the reference SUT) against this gateway; yields its base URL."""
    from simulators.reference.app import start_reference_sut  # late: only with --with-reference-sut
    from simulators.reference.config import RefConfig

    cfg = rt.config
    ref = RefConfig(lg_code=cfg.sut.lg_code, gateway_url=rt.gateway_url, token=cfg.sut.token,
                    inbound_token=cfg.gateway.tokens.gateway_to_sut,
                    data_dir=cfg.gateway.data_dir / "reference",
                    host=cfg.reference.host, port=cfg.reference.port, defects=defects)
    async with start_reference_sut(ref) as url:
        yield str(url).rstrip("/")
