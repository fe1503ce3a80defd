"""`juki-harness certs`: a test CA and one certificate per actor, for mutual TLS in a lab.

Why: with ``gateway.tls_client_ca`` set, the gateway asks every client for a certificate and the certificate
names the sender — a kiosk's certificate may post only on the kiosk's arrows, whatever its token says. This
module makes the files a lab needs (never for production: the CA key sits next to the certificates):

    DIR/ca.pem, ca-key.pem                 the test CA (keys are written mode 0600)
    DIR/gateway.pem, gateway-key.pem       the gateway's server certificate (SAN: localhost, 127.0.0.1, ::1)
    DIR/sut.pem, sut-key.pem               the SUT (client towards /msg, server for its /inbound)
    DIR/<actor>.pem, <actor>-key.pem       one per actor the harness plays (cs, kiosk, ...)

The subject CN is the identity: ``sut`` or an actor id (:func:`identity_of`). ``--hosts`` adds server names.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SUT_IDENTITY = "sut"
GATEWAY_IDENTITY = "gateway"


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _san(hosts: Iterable[str]) -> Any:
    from cryptography import x509

    names: list[Any] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_certs(out: Path, actors: Iterable[str], *, hosts: Iterable[str] = (), days: int = 30
               ) -> dict[str, Path]:
    """Write the CA and one certificate per identity into ``out``; returns identity -> certificate path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki-harness test CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "juki-harness (test only)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(out / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), False)
    _write(out / "ca-key.pem", _pem_key(ca_key), True)
    server_hosts = ["localhost", "127.0.0.1", "::1", *hosts]
    paths: dict[str, Path] = {}
    for ident in (GATEWAY_IDENTITY, SUT_IDENTITY, *actors):
        key = _key()
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ident)]))
             .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(until)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
             .add_extension(_san([*server_hosts, f"{ident}.juki-harness.test"]), critical=False))
        cert = b.sign(ca_key, hashes.SHA256())
        _write(out / f"{ident}.pem", cert.public_bytes(serialization.Encoding.PEM), False)
        _write(out / f"{ident}-key.pem", _pem_key(key), True)
        paths[ident] = out / f"{ident}.pem"
    return paths


def identity_of(peercert: Mapping[str, Any] | None) -> str | None:
    """The identity (CN) of a verified peer certificate, as ``ssl.SSLSocket.getpeercert()`` gives it."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName" and isinstance(v, str):
                return v
    return None


def config_snippet(out: Path, actors: Iterable[str]) -> str:
    """The TOML lines that turn mutual TLS on with the files in ``out``."""
    o = out.as_posix()
    lines = ["[gateway]", f'tls_cert = "{o}/gateway.pem"', f'tls_key = "{o}/gateway-key.pem"',
             f'tls_client_ca = "{o}/ca.pem"', "", "[sut]", f'tls_ca = "{o}/ca.pem"',
             f'tls_cert = "{o}/gateway.pem"', f'tls_key = "{o}/gateway-key.pem"',
             "# the SUT presents sut.pem / sut-key.pem to the gateway and serves https with them"]
    for a in actors:
        lines += ["", f"# [actors.{a}]  (a real {a}: it presents {a}.pem; the gateway trusts ca.pem)",
                  f'# tls_ca = "{o}/ca.pem"']
    return "\n".join(lines)


def _cmd_certs(args: argparse.Namespace) -> int:
    from simulators.config import HOSTED_ACTORS

    actors = args.actor or list(HOSTED_ACTORS)
    out = Path(args.out)
    paths = make_certs(out, actors, hosts=args.host or (), days=args.days)
    print(f"test CA and {len(paths)} certificates in {out} (private keys mode 0600; for tests only)")
    print(config_snippet(out, []))
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``certs`` with ``conformance.cli``."""
    p = subparsers.add_parser("certs", help="make a test CA and a certificate per actor (mutual TLS in a lab)")
    p.add_argument("--out", required=True, help="directory to write the PEM files into")
    p.add_argument("--actor", action="append", help="only these actors (repeatable; default: every actor)")
    p.add_argument("--host", action="append", help="extra server name or IP for the certificates' SAN")
    p.add_argument("--days", type=int, default=30, help="validity (default %(default)s days)")
    p.set_defaults(func=_cmd_certs)
