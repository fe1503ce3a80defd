"""`juki-harness reference-sut`: run the reference SUT standalone, as a vendor's system would run.

Why a subcommand: a vendor (or CI) wants to see the whole exchange with a SUT in its own process — start it
here, then ``juki-harness certify --sut http://127.0.0.1:8800`` — and to compare their SUT's behaviour with
the reference one, without reading its code. Its defaults match ``config/default.toml``: it sends to the
gateway at ``http://127.0.0.1:8700`` with token ``sut-secret`` and expects ``gateway-secret`` on ``/inbound``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "serve_reference"]


async def serve_reference(cfg: Any, *, ready: asyncio.Event | None = None,
                          stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); prints the URL once listening."""
    from simulators.reference.app import ReferenceSut

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    async with ReferenceSut(cfg) as sut:
        print(f"reference SUT for {cfg.lg_code} listening on {sut.url} (POST /inbound, POST /counter, "
              f"GET /contract, GET /health); it sends to {cfg.gateway_url}/msg; Ctrl-C stops it", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()


def _cmd(args: argparse.Namespace) -> int:
    from simulators.reference.config import RefConfig

    try:
        cfg = RefConfig(lg_code=args.lg_code, gateway_url=args.gateway_url.rstrip("/"), token=args.token,
                        inbound_token=args.inbound_token, data_dir=Path(args.data_dir), host=args.host,
                        port=args.port, defects=frozenset(args.defect))
    except ValueError as e:
        print(f"juki-harness reference-sut: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_reference(cfg))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"juki-harness reference-sut: port {args.port} on {args.host} is already in use; "
                  "give another --port", file=sys.stderr)
            return 2
        raise
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``reference-sut`` with the CLI."""
    from simulators.reference.config import RefConfig
    from simulators.reference.defects import DEFECTS

    d = RefConfig()
    p = subparsers.add_parser("reference-sut", help="run the reference SUT standalone (a vendor's system "
                                                    "stand-in), for certify --sut URL",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8800, help="port of /inbound, /counter, /contract, /health "
                                                         "(default %(default)s; 0 = any free port)")
    p.add_argument("--host", default=d.host, help="address to listen on (default %(default)s)")
    p.add_argument("--gateway-url", default=d.gateway_url, help="the gateway it sends to: POST {url}/msg "
                                                               "(default %(default)s)")
    p.add_argument("--lg-code", default=d.lg_code, help="全国地方公共団体コード served (default %(default)s)")
    p.add_argument("--token", default=d.token, help="its credential towards the gateway (default %(default)s)")
    p.add_argument("--inbound-token", default=d.inbound_token,
                   help="credential it expects on /inbound and /counter (default %(default)s)")
    p.add_argument("--data-dir", default=str(d.data_dir), help="where its SQLite register lives "
                                                               "(default %(default)s)")
    p.add_argument("--defect", action="append", default=[], choices=sorted(DEFECTS), metavar="NAME",
                   help="inject a catalogued defect (repeatable; to see a failing run)")
    p.set_defaults(func=_cmd)
