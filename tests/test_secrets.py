"""Issue 13 item 6: well-known tokens are replaced for a `serve` run (file 0600, never printed), binding
beyond loopback needs TLS or an explicit flag, a busy port is one clear error."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from conformance.cli import main
from conformance.cli_serve import generate_secrets
from conformance.errors import HarnessError
from simulators.config import DEFAULT_SECRETS, check_bind, load_config

REPO = Path(__file__).resolve().parents[1]


def test_generated_tokens_replace_only_the_defaults_and_live_in_a_0600_file(tmp_path: Path) -> None:
    cfg = load_config(None, data_dir=tmp_path)
    cfg = cfg.with_tokens(sut="my-own-sut-token")
    assert cfg.default_secrets() == ["gateway.tokens.control", "gateway.tokens.gateway_to_sut"]
    new, path = generate_secrets(cfg)
    assert new.default_secrets() == []
    assert new.sut.token == "my-own-sut-token"  # configured: kept
    t = new.gateway.tokens
    assert t.control != t.gateway_to_sut and len(t.control) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["gateway"]["tokens"]["control"] == t.control and data["sut"]["token"] == "my-own-sut-token"
    assert not {t.control, t.gateway_to_sut} & DEFAULT_SECRETS


def test_binding_beyond_loopback_needs_tls_or_an_explicit_allowance() -> None:
    gw = load_config(None).gateway
    assert check_bind(gw) is None
    public = replace(gw, host="0.0.0.0")
    with pytest.raises(HarnessError) as e:
        check_bind(public)
    assert e.value.findings[0].code == "GW-BIND"
    warning = check_bind(replace(public, allow_public_bind=True))
    assert warning is not None and "plain HTTP" in warning
    assert "client certificates" in (check_bind(replace(public, tls_cert=Path("c"), tls_key=Path("k"))) or "")


def test_serve_on_a_busy_port_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path / "var")])
    err = capsys.readouterr().err
    assert code == 2
    assert "GW-BIND" in err and str(port) in err and "Traceback" not in err


@pytest.mark.slow
async def test_serve_generates_tokens_refuses_the_defaults_and_never_prints_a_secret(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "conformance.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "var"),
            "--json", "--log-level", "debug", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        info = json.loads(line)
        secrets = tomllib.loads(Path(info["secrets_file"]).read_text(encoding="utf-8"))
        control = secrets["gateway"]["tokens"]["control"]
        async with aiohttp.ClientSession() as http:
            for token, status in (("control-secret", 401), (control, 200)):
                async with http.get(f"{info['control']}/tenants",
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                    assert r.status == status, token
            async with http.post(info["msg"], data=b"<x/>", headers={"Authorization": "Bearer sut-secret"}) as r:
                assert r.status == 401
    finally:
        proc.terminate()
        rest = await asyncio.wait_for(proc.communicate(), 10)
    printed = line.decode() + (rest[0] or b"").decode() + log.read_text(encoding="utf-8", errors="replace")
    for value in (control, secrets["gateway"]["tokens"]["gateway_to_sut"], secrets["sut"]["token"]):
        assert value not in printed
