"""``python -m simulators.reference``: run the reference SUT standalone until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from simulators.reference.app import ReferenceSut
from simulators.reference.config import RefConfig
from simulators.reference.defects import DEFECTS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = RefConfig()
    p = argparse.ArgumentParser(
        prog="python -m simulators.reference",
        description="Run the reference existing resident-record system (SUT).",
    )
    p.add_argument("--lg-code", default=d.lg_code, help="全国地方公共団体コード served (default %(default)s)")
    p.add_argument("--gateway-url", default=d.gateway_url, help="the gateway (POST {url}/msg)")
    p.add_argument("--token", default=d.token, help="credential sent to the gateway")
    p.add_argument(
        "--inbound-token", default=d.inbound_token, help="credential expected on /inbound and /counter"
    )
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="where the SQLite register lives")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8800)
    p.add_argument("--answer-timeout", type=float, default=d.answer_timeout)
    p.add_argument(
        "--defect",
        action="append",
        default=[],
        choices=sorted(DEFECTS),
        help="inject a defect (repeatable; for the judge's self-test only)",
    )
    p.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    p.add_argument("--tls-client-ca", type=Path,
                   help="mutual TLS: require a client certificate signed by this CA (the gateway's)")
    p.add_argument("--gateway-ca", type=Path, help="CA of an https gateway (its certificate is --tls-cert)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    cfg = RefConfig(
        lg_code=args.lg_code,
        gateway_url=args.gateway_url,
        token=args.token,
        inbound_token=args.inbound_token,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        answer_timeout=args.answer_timeout,
        defects=frozenset(args.defect),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        gateway_ca=args.gateway_ca,
    )
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    log = logging.getLogger("simulators.reference")
    if cfg.host not in ("127.0.0.1", "::1", "localhost"):
        if not cfg.tls_cert:
            log.warning("listening on %s in plain HTTP: the tokens cross the network unencrypted", cfg.host)
        if cfg.inbound_token in ("gateway-secret", "sut-secret") or cfg.token in ("gateway-secret", "sut-secret"):
            log.warning("well-known default tokens on a non-loopback address: pass --token/--inbound-token")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ReferenceSut(cfg) as sut:
        print(f"reference SUT {cfg.lg_code} listening on {sut.url} (gateway {cfg.gateway_url})", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from conformance.masking import install_log_masking

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_masking()  # 個人番号 and 住民票コード never in its log
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
