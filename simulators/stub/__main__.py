"""``python -m simulators.stub``: run the stub SUT standalone (e.g. for ``juki-harness certify --sut URL``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from simulators.reference.config import RefConfig
from simulators.stub.core import StubLimits, start_stub_sut


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d, lim = RefConfig(), StubLimits()
    p = argparse.ArgumentParser(prog="python -m simulators.stub", description="Run the fast stub SUT.")
    p.add_argument("--lg-code", default=d.lg_code, help="全国地方公共団体コード served (default %(default)s)")
    p.add_argument("--gateway-url", default=d.gateway_url, help="the gateway (POST {url}/msg)")
    p.add_argument("--token", default=d.token, help="credential sent to the gateway")
    p.add_argument("--inbound-token", default=d.inbound_token, help="credential expected on /inbound and /counter")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8800)
    p.add_argument("--persons", type=int, default=lim.persons, help="cap of the persons kept (oldest forgotten)")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    cfg = RefConfig(lg_code=args.lg_code, gateway_url=args.gateway_url.rstrip("/"), token=args.token,
                    inbound_token=args.inbound_token, host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with start_stub_sut(cfg, StubLimits(persons=args.persons)) as sut:
        print(f"stub SUT {cfg.lg_code} listening on {sut.url} (gateway {cfg.gateway_url})", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from conformance.masking import install_log_masking

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_masking()  # 個人番号 and 住民票コード never in its log
    try:  # uvloop where installed: the stub is a measuring device, the less CPU per operation the better
        import uvloop
    except ImportError:
        asyncio.run(_main(args))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main(args))


if __name__ == "__main__":
    main()
