"""`juki-harness serve`, `trace` and `bench`: run the harness, read its trace, measure it.

Why here and not in the simulators package: ``conformance.cli`` discovers subcommands by module
(``add_parsers``); the heavy imports (aiohttp server, simulators) happen only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8700"


# ------------------------------------------------------------------------------------------------ serve

def _cmd_serve(args: argparse.Namespace) -> int:
    import errno
    from dataclasses import replace

    from conformance.errors import fail
    from conformance.masking import install_log_masking
    from simulators.config import check_bind, load_config

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()
    log = logging.getLogger("juki.serve")
    cfg = load_config(args.config, data_dir=Path(args.data_dir) if args.data_dir else None, port=args.port)
    if args.allow_public_bind:
        cfg = replace(cfg, gateway=replace(cfg.gateway, allow_public_bind=True))
    warning = check_bind(cfg.gateway)
    if warning:
        log.warning("%s", warning)
    secrets_file: Path | None = None
    if cfg.default_secrets():
        if args.insecure_default_tokens:
            if not cfg.gateway.loopback:
                raise fail("GW-SECRETS", "--insecure-default-tokens works on loopback only")
            log.warning("well-known tokens in use (%s): anyone on this machine can send and control",
                        ", ".join(cfg.default_secrets()))
        else:
            cfg, secrets_file = generate_secrets(cfg)
    try:
        from simulators.runtime import run  # uvloop where installed (issue 10)

        return run(_serve(cfg, args.with_reference_sut, args.json, secrets_file))
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise fail("GW-BIND", f"cannot listen on {cfg.gateway.host}:{cfg.gateway.port}: "
                       f"{e.strerror or e} (another process holds the port? choose one with --port)") from None
        raise


def generate_secrets(cfg: Any) -> tuple[Any, Path]:
    """Random tokens for every well-known default still configured, written to DATA_DIR/secrets.toml (0600).

    Why a file and not the console: a console is scrolled back, shared and logged; the file is readable by
    its owner only and lives with the run's data. Only the file's path is ever printed.
    """
    import os
    import secrets

    from simulators.config import DEFAULT_SECRETS

    t = cfg.gateway.tokens

    def fresh(v: str) -> str | None:
        return secrets.token_urlsafe(24) if not v or v in DEFAULT_SECRETS else None

    cfg = cfg.with_tokens(control=fresh(t.control), gateway_to_sut=fresh(t.gateway_to_sut),
                          sut=fresh(cfg.sut.token))
    d = Path(cfg.gateway.data_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "secrets.toml"
    text = ("# tokens of this run of juki-harness serve (generated: the configured ones were the well-known "
            "defaults)\n[gateway.tokens]\n"
            f'control = "{cfg.gateway.tokens.control}"\ngateway_to_sut = "{cfg.gateway.tokens.gateway_to_sut}"\n'
            f'\n[sut]\ntoken = "{cfg.sut.token}"\n')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return cfg, path


async def _serve(cfg: Any, with_reference_sut: bool, as_json: bool, secrets_file: Path | None = None) -> int:
    from simulators.collector import CollectorSchedule
    from simulators.runtime import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            rt = await stack.enter_async_context(Runtime(cfg, with_reference_sut=with_reference_sut))
            # the collector on a schedule: never a long walk mid-load (issue 10; simulators.collector)
            await stack.enter_async_context(CollectorSchedule(lambda: rt.store.last_seq))
            info = rt.describe()
            info["secrets_file"] = str(secrets_file) if secrets_file else None
            if as_json:
                print(json.dumps(info, ensure_ascii=False), flush=True)
            else:
                print(f"juki-harness gateway  {info['gateway']}  (messages: POST {info['msg']})")
                print(f"  trace     {info['trace']}   file {info['trace_file']}")
                print(f"  control   {info['control']}   counter proxy {info['counter']}")
                print(f"  SUT       inbound {info['sut_inbound']}   counter {info['sut_counter']}"
                      + ("   (reference SUT)" if with_reference_sut else ""))
                print(f"  simulated {', '.join(info['simulated']) or '-'}")
                if info["real"]:
                    print("  real      " + ", ".join(f"{a} at {u}" for a, u in info["real"].items()))
                if info["missing_simulators"]:
                    print(f"  missing   {', '.join(info['missing_simulators'])} (answered 503)")
                if secrets_file:
                    print(f"  tokens    generated for this run: {secrets_file} (mode 0600)")
                print(f"  replayed  {info['replayed_records']} trace records; Ctrl-C stops", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("stopped", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------------ trace

def _matches(rec: Any, args: argparse.Namespace) -> bool:
    return bool((args.tenant is None or rec.tenant == args.tenant)
                and (args.arrow is None or rec.arrow == args.arrow)
                and (args.type is None or rec.message_type == args.type)
                and (args.kind is None or rec.kind == args.kind) and rec.seq > args.since)


def _print(rec: Any, as_json: bool, raw: bool = False) -> None:
    """One record: 個人番号 and 住民票コード masked unless ``--raw`` (the console wrapper masks again: harmless)."""
    from conformance.masking import mask_personal
    from simulators.trace import format_record, record_to_json

    line = json.dumps(record_to_json(rec), ensure_ascii=False) if as_json else format_record(rec)
    print(line if raw else mask_personal(line), flush=True)


def _verdict(res: Any, as_json: bool, where: str) -> int:
    if as_json:
        print(json.dumps(res.to_json()))
    elif res.ok:
        print(f"{where}: chain OK, {res.count} records")
    else:
        print(f"{where}: chain BROKEN at seq {res.first_bad_seq}: {res.reason}")
    return 0 if res.ok else 1


def _cmd_trace(args: argparse.Namespace) -> int:
    if args.db:
        return _trace_db(args)
    return asyncio.run(_trace_http(args))


def _trace_db(args: argparse.Namespace) -> int:
    from conformance.errors import fail
    from simulators.trace import read_records, verify_records

    path = Path(args.db)
    if not path.is_file():
        raise fail("GW-TRACE-FILE", f"{path}: no such trace file")
    records = read_records(path)
    if args.verify:
        return _verdict(verify_records(records), args.json, str(path))
    if args.follow:
        raise fail("GW-TRACE-FOLLOW", "--follow needs --url (a running gateway), not --db")
    for rec in records:
        if _matches(rec, args):
            _print(rec, args.json, args.raw)
    return 0


async def _trace_http(args: argparse.Namespace) -> int:
    import aiohttp

    from conformance.errors import fail
    from simulators.trace import VerifyResult, record_from_json

    base = args.url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.token}"}
    params = {k: str(v) for k, v in (("tenant", args.tenant), ("arrow", args.arrow), ("type", args.type),
                                     ("kind", args.kind), ("since", args.since)) if v is not None}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            if args.verify:
                async with http.get(f"{base}/trace/verify") as r:
                    if r.status != 200:
                        raise fail("GW-TRACE-HTTP", f"{base}/trace/verify answered HTTP {r.status}")
                    obj = await r.json()
                res = VerifyResult(obj["ok"], obj["count"], obj.get("first_bad_seq"), obj.get("reason"))
                return _verdict(res, args.json, base)
            if args.follow:
                timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
                async with http.get(f"{base}/trace/stream", params=params, timeout=timeout) as r:
                    if r.status != 200:
                        raise fail("GW-TRACE-HTTP", f"{base}/trace/stream answered HTTP {r.status}")
                    async for line in r.content:
                        if line.strip():
                            _print(record_from_json(json.loads(line)), args.json, args.raw)
                return 0
            since = args.since
            while True:
                async with http.get(f"{base}/trace/", params={**params, "since": str(since)}) as r:
                    if r.status != 200:
                        text = await r.text()
                        raise fail("GW-TRACE-HTTP", f"{base}/trace answered HTTP {r.status}: {text}")
                    obj = await r.json()
                for o in obj["records"]:
                    _print(record_from_json(o), args.json, args.raw)
                if obj.get("next_since") is None:
                    return 0
                since = int(obj["next_since"])
    except aiohttp.ClientConnectionError as e:
        raise fail("GW-TRACE-HTTP", f"cannot reach {base}: {e}") from None


# -------------------------------------------------------------------------------------------- register

def add_parsers(subparsers: Any) -> None:
    """Register serve and trace with ``conformance.cli``."""
    s = subparsers.add_parser("serve", help="start the gateway with every simulated actor (and optionally "
                                            "the reference SUT)")
    s.add_argument("--config", help="TOML config (config/default.toml documents every key)")
    s.add_argument("--with-reference-sut", action="store_true", help="also start the reference SUT")
    s.add_argument("--port", type=int, help="gateway port (overrides the config; 0 = any free port)")
    s.add_argument("--data-dir", help="where trace.sqlite lives (overrides the config)")
    s.add_argument("--json", action="store_true", help="print where everything listens as one JSON line")
    s.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    s.add_argument("--allow-public-bind", action="store_true",
                   help="listen beyond loopback without TLS (warned; prefer gateway.tls_cert)")
    s.add_argument("--insecure-default-tokens", action="store_true",
                   help="keep the well-known tokens (loopback only, warned); by default serve replaces them "
                        "with random ones written to DATA_DIR/secrets.toml")
    s.set_defaults(func=_cmd_serve)

    t = subparsers.add_parser("trace", help="read (or follow, or verify) the trace of a gateway")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--url", default=DEFAULT_URL, help=f"a running gateway (default {DEFAULT_URL})")
    src.add_argument("--db", help="a trace.sqlite file, read directly")
    t.add_argument("--token", default="control-secret", help="the control token (for --url)")
    t.add_argument("--tenant")
    t.add_argument("--arrow", type=int)
    t.add_argument("--type", help="message type")
    t.add_argument("--kind", choices=["message", "response", "refused", "delivery", "event"])
    t.add_argument("--since", type=int, default=0, help="only records after this seq")
    t.add_argument("--follow", action="store_true", help="keep printing new records (needs --url)")
    t.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 naming the broken seq")
    t.add_argument("--json", action="store_true", help="one JSON record per line")
    t.add_argument("--raw", action="store_true", help="do not mask 個人番号 and 住民票コード")
    t.set_defaults(func=_cmd_trace)
