"""Issue 13 item 5: `juki-harness certs` makes a working test CA; mutual TLS refuses a client without a
certificate of that CA and names the client by its certificate."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import aiohttp
import pytest

from conformance.cli import main
from simulators.config import client_ssl_context, tls_server_context
from simulators.reference.app import ReferenceSut
from simulators.reference.config import RefConfig
from simulators.tls import identity_of, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    make_certs(d, ["kiosk", "cs"])
    return d


def test_certs_command_writes_a_ca_and_one_certificate_per_actor_with_private_keys_0600(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--actor", "kiosk", "--actor", "cs"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ca.pem", "ca-key.pem", "gateway.pem", "sut.pem", "kiosk.pem", "kiosk-key.pem", "cs.pem"} <= names
    for key in tmp_path.glob("*-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert "tls_client_ca" in out and "PRIVATE KEY" not in out  # the snippet, never a key


def test_a_server_context_with_a_client_ca_requires_a_certificate(certs: Path) -> None:
    ctx = tls_server_context(certs / "gateway.pem", certs / "gateway-key.pem", certs / "ca.pem")
    assert ctx.verify_mode == ssl.CERT_REQUIRED


async def _get(url: str, ctx: ssl.SSLContext | None) -> int:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=ctx if ctx is not None else True) as r:
        return r.status


async def test_reference_sut_with_mutual_tls_accepts_a_ca_certificate_and_refuses_none(
        certs: Path, tmp_path: Path) -> None:
    cfg = RefConfig(data_dir=tmp_path / "ref", tls_cert=certs / "sut.pem", tls_key=certs / "sut-key.pem",
                    tls_client_ca=certs / "ca.pem", gateway_url="http://127.0.0.1:9")
    async with ReferenceSut(cfg) as sut:
        assert sut.url.startswith("https://")
        good = client_ssl_context(certs / "ca.pem", certs / "gateway.pem", certs / "gateway-key.pem")
        assert await _get(f"{sut.url}/health", good) == 200
        no_cert = client_ssl_context(certs / "ca.pem", None, None)
        with pytest.raises(aiohttp.ClientError):
            await _get(f"{sut.url}/health", no_cert)


def test_identity_is_the_certificates_common_name(certs: Path) -> None:
    import socket
    import threading

    server = tls_server_context(certs / "gateway.pem", certs / "gateway-key.pem", certs / "ca.pem")
    seen: list[str | None] = []
    with socket.create_server(("127.0.0.1", 0)) as ls:
        port = ls.getsockname()[1]

        def accept() -> None:
            conn, _ = ls.accept()
            with server.wrap_socket(conn, server_side=True) as s:
                seen.append(identity_of(s.getpeercert()))

        t = threading.Thread(target=accept)
        t.start()
        client = client_ssl_context(certs / "ca.pem", certs / "kiosk.pem", certs / "kiosk-key.pem")
        assert client is not None
        with socket.create_connection(("127.0.0.1", port)) as c, \
                client.wrap_socket(c, server_hostname="localhost"):
            pass
        t.join(5)
    assert seen == ["kiosk"]
