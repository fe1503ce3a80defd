"""Kill -9 mid-flow: every message the gateway acknowledged is in the trace after a restart, chain intact."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from conftest import CONTROL_TOKEN, SUT_TOKEN, identity_notice

from conformance.envelope import read_header
from conformance.xmlsafe import parse

REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def serve(data_dir: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    """`juki-harness serve` in a subprocess on an ephemeral port; yields (process, where it listens)."""
    log = data_dir.parent / "serve.log"
    with log.open("ab") as err:  # a file, not a pipe: a full pipe would stall the server
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "conformance.cli", "serve", "--port", "0", "--data-dir", str(data_dir),
            "--json", "--insecure-default-tokens", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, log.read_text(encoding="utf-8", errors="replace")
        yield proc, json.loads(line)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_acknowledged_messages_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    acked: list[str] = []
    bodies = [identity_notice(1000 + i) for i in range(2000)]
    async with serve(data_dir) as (proc, info), aiohttp.ClientSession() as http:
        it = iter(bodies)

        async def client() -> None:
            for body in it:
                try:
                    async with http.post(info["msg"], data=body,
                                         headers={"Authorization": f"Bearer {SUT_TOKEN}"}) as r:
                        if r.status == 202:
                            acked.append(read_header(parse(body)).message_id)  # the client's log of 202s
                except (aiohttp.ClientError, ConnectionError):
                    return

        clients = [asyncio.create_task(client()) for _ in range(16)]
        while len(acked) < 150:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-flow: requests are in flight
        await proc.wait()
        await asyncio.gather(*clients)
    assert 150 <= len(acked) < len(bodies)

    async with serve(data_dir) as (proc, info), aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}) as http:
        assert info["replayed_records"] >= len(acked)
        async with http.get(f"{info['trace']}/verify") as r:
            verdict = await r.json()
        assert verdict["ok"], verdict
        async with http.get(f"{info['trace']}/", params={"arrow": "8", "kind": "message"}) as r:
            traced = {rec["message_id"] for rec in (await r.json())["records"]}
        assert set(acked) <= traced
        proc.send_signal(signal.SIGTERM)  # and a clean stop on SIGTERM
        assert await asyncio.wait_for(proc.wait(), 10) == 0
