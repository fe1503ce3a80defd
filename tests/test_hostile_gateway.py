"""Issue 13 items 2–5 and 9 at the gateway: refusals cost no payload and are rate-limited, credentials bind
the sender (actor, lgCode, arrows), mutual TLS names the sender, timeouts hold, small defects fixed."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from hostile_corpus import attribute_flood, first_code

from conformance.samples import sample
from simulators.config import HarnessConfig, client_ssl_context, load_config
from simulators.edge import Limits
from simulators.hostile import Target, during, p99, slow_body, slow_connections, slow_header
from simulators.runtime import Runtime
from simulators.tls import make_certs

SUT = {"Authorization": "Bearer sut-secret"}
LIMITS = Limits(header_timeout=1.0, body_timeout=1.5, idle_timeout=5.0, refusals_per_minute=20,
                sweep_seconds=0.2)


def _config(tmp: Path, **gateway: object) -> HarnessConfig:
    cfg = load_config(None, data_dir=tmp / "var", port=0)
    return replace(cfg, gateway=replace(cfg.gateway, limits=LIMITS, **gateway))  # type: ignore[arg-type]


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime(_config(tmp_path)) as r:
        yield r


async def _post(url: str, data: bytes, headers: dict[str, str] | None = None,
                ctx: ssl.SSLContext | None = None) -> tuple[int, bytes, dict[str, str]]:
    conn = aiohttp.TCPConnector(ssl=ctx if ctx is not None else False)
    async with aiohttp.ClientSession(connector=conn) as http, \
            http.post(url, data=data, headers={"Content-Type": "application/xml", **(headers or {})}) as r:
        return r.status, await r.read(), dict(r.headers)


async def test_unauthenticated_posts_are_recorded_without_payload_then_rate_limited(rt: Runtime) -> None:
    trace = rt.config.gateway.trace_path
    big = b"<x>" + b"A" * (3 * 1024 * 1024) + b"</x>"
    answers = []
    for _ in range(LIMITS.refusals_per_minute + 5):
        status, body, headers = await _post(f"{rt.gateway_url}/msg", big)
        answers.append((status, first_code(body), headers.get("Retry-After")))
    assert all(a[:2] == (401, "GW-AUTH") for a in answers[:LIMITS.refusals_per_minute])
    assert all(a[0] == 429 and a[1] == "GW-RATE" and a[2] for a in answers[LIMITS.refusals_per_minute:])
    refused = [r for r in rt.store.scan() if r.kind == "refused"]
    assert len(refused) == LIMITS.refusals_per_minute  # rate-limited ones are counted, not written
    r0 = refused[0]
    assert r0.payload == b"" and "sha256" in (r0.note or "") and "3145735 bytes" in (r0.note or "")
    assert "127.0.0.1" in (r0.note or "")
    await asyncio.sleep(0.3)
    assert trace.stat().st_size < 1024 * 1024  # 25 × 3 MB sent, under 1 MB written


async def test_the_suts_token_binds_its_lgcode(rt: Runtime) -> None:
    other = sample("IdentityNotice", seed=2).replace(b'<Sender actor="juki" lgCode="131016"/>',
                                                     b'<Sender actor="juki" lgCode="011002"/>')
    assert b'lgCode="011002"' in other
    status, body, _ = await _post(f"{rt.gateway_url}/msg", other, SUT)
    assert (status, first_code(body)) == (403, "GW-SENDER-LG")
    ok, _, _ = await _post(f"{rt.gateway_url}/msg", sample("IdentityNotice", seed=3), SUT)
    assert ok == 202
    refused = [r for r in rt.store.scan() if r.kind == "refused"]
    assert refused and refused[-1].findings[0]["code"] == "GW-SENDER-LG"


async def test_a_real_actors_token_may_send_only_on_that_actors_arrows(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg = replace(cfg, actors={**cfg.actors, "kiosk": replace(cfg.actors["kiosk"], mode="real",
                                                              url="http://127.0.0.1:9/kiosk",
                                                              token="kiosk-token")})
    async with Runtime(cfg) as r:
        kiosk = {"Authorization": "Bearer kiosk-token"}
        status, body, _ = await _post(f"{r.gateway_url}/msg", sample("IdentityNotice", seed=4), kiosk)
        assert (status, first_code(body)) == (403, "GW-SENDER")  # arrow 8 is juki's
        status, _, _ = await _post(f"{r.gateway_url}/msg", sample("KioskCertificateRequest", seed=4), kiosk)
        assert status == 202  # arrow 26: kiosk -> centre


async def test_the_suts_token_is_not_accepted_on_direct(rt: Runtime) -> None:
    status, _, _ = await _post(f"{rt.gateway_url}/direct/cs", sample("IdentityNotice", seed=5), SUT)
    assert status == 401


async def test_a_body_over_the_limit_is_an_error_report_with_xml_size(rt: Runtime) -> None:
    status, body, _ = await _post(f"{rt.gateway_url}/msg", b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>", SUT)
    assert status == 413 and first_code(body) == "XML-SIZE"


@pytest.mark.slow  # seconds of real waiting: runs in `make test`, not in the fast set
async def test_slow_headers_and_endless_bodies_are_cut_off_and_health_answers(rt: Runtime) -> None:
    t = Target.of(f"{rt.gateway_url}/msg")
    cut = await slow_header(t, seconds=5.0, interval=0.2)
    assert cut is not None and cut <= 2.5
    cut = await slow_body(t, seconds=5.0, chunked=True, token="sut-secret", interval=0.2)
    assert cut is not None and cut <= 3.0
    res, lat = await during(lambda: slow_connections(t, 200, 200, 3.5, token="sut-secret"),
                            f"{rt.gateway_url}/health", 2.5)
    assert res["still_held_at_end"] == 0
    assert len(lat) > 20 and p99(lat) < 250, (len(lat), p99(lat))


async def test_health_answers_during_an_attribute_flood(rt: Runtime) -> None:
    flood = attribute_flood()

    async def attack() -> list[int]:
        out = []
        for _ in range(4):
            status, body, _ = await _post(f"{rt.gateway_url}/msg", flood, SUT)
            out.append(status)
            assert first_code(body) == "XML-ATTRIBUTES"
        return out

    statuses, lat = await during(attack, f"{rt.gateway_url}/health", 1.5)
    assert statuses == [400] * 4
    assert len(lat) > 10 and p99(lat) < 250, (len(lat), p99(lat))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    make_certs(d, ["kiosk", "cs"])
    return d


async def test_mutual_tls_names_the_sender_by_its_certificate(certs: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, tls_cert=certs / "gateway.pem", tls_key=certs / "gateway-key.pem",
                  tls_client_ca=certs / "ca.pem")
    async with Runtime(cfg) as r:
        assert r.gateway_url.startswith("https://")
        url = f"{r.gateway_url}/msg"
        sut = client_ssl_context(certs / "ca.pem", certs / "sut.pem", certs / "sut-key.pem")
        kiosk = client_ssl_context(certs / "ca.pem", certs / "kiosk.pem", certs / "kiosk-key.pem")
        status, _, _ = await _post(url, sample("IdentityNotice", seed=6), ctx=sut)
        assert status == 202  # the SUT's certificate, no token: accepted on arrow 8
        status, body, _ = await _post(url, sample("IdentityNotice", seed=7), ctx=kiosk)
        assert (status, first_code(body)) == (403, "GW-SENDER")  # a kiosk certificate cannot post on arrow 8
        status, _, _ = await _post(url, sample("KioskCertificateRequest", seed=7), ctx=kiosk)
        assert status == 202
        status, body, _ = await _post(url, sample("IdentityNotice", seed=8),
                                      {"Authorization": "Bearer sut-secret"}, ctx=kiosk)
        assert (status, first_code(body)) == (403, "GW-CREDENTIAL")  # token and certificate disagree
        no_cert = client_ssl_context(certs / "ca.pem", None, None)
        with pytest.raises(aiohttp.ClientError):
            await _post(url, sample("IdentityNotice", seed=9), SUT, ctx=no_cert)
        codes = [x.findings[0]["code"] for x in r.store.scan()
                 if x.kind == "refused" and x.findings[0]["code"].startswith("GW-")]
        assert codes == ["GW-SENDER", "GW-CREDENTIAL"]  # refusals recorded


async def test_a_certificate_data_request_sent_the_wrong_way_is_refused_precisely(rt: Runtime) -> None:
    """On arrow 19 the certificate server asks and the SUT answers: the sample goes certserver -> juki (the
    SUT's token may not send it), and the same request sent juki -> certserver is refused as not taken."""
    data = sample("CertificateDataRequest", seed=1)
    assert b'<Sender actor="certserver"' in data
    status, body, _ = await _post(f"{rt.gateway_url}/msg", data, SUT)
    assert (status, first_code(body)) == (403, "GW-SENDER")
    wrong_way = (data.replace(b'<Sender actor="certserver"', b'<Sender actor="@@"')
                 .replace(b'<Receiver actor="juki"', b'<Receiver actor="certserver"')
                 .replace(b'<Sender actor="@@"', b'<Sender actor="juki"'))
    status, body, _ = await _post(f"{rt.gateway_url}/msg", wrong_way, SUT)
    assert (status, first_code(body)) == (404, "GW-NOT-TAKEN")
