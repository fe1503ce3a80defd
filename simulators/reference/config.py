"""Configuration of the reference SUT: which municipality it serves, where the gateway is, its tokens.

Why its own small dataclass rather than the harness config: the reference SUT must run standalone (as a
vendor's system would) and embedded in the harness; the harness maps its settings onto this one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance.identifiers import is_valid_lg_code
from simulators.edge import Limits
from simulators.reference.defects import check_names


@dataclass(frozen=True, slots=True)
class RefConfig:
    """Settings of one reference SUT instance (port 0 = ephemeral, chosen at start)."""

    lg_code: str = "131016"
    gateway_url: str = "http://127.0.0.1:8700"
    token: str = "sut-secret"
    inbound_token: str = "gateway-secret"
    data_dir: Path = Path("var/reference")
    host: str = "127.0.0.1"
    port: int = 0
    defects: frozenset[str] = field(default_factory=frozenset)
    #: how long a counter operation waits for an asynchronous answer (staff wait at the terminal)
    answer_timeout: float = 15.0
    #: outbox backoff after a 503 or a connection error (doubling up to the maximum)
    retry_initial: float = 0.2
    retry_max: float = 5.0
    #: how often a MunicipalNotice the agency refused is resent before it is given up
    result_retries: int = 3
    #: how many other 住民票コード are tried when CS refuses a new one (code in use)
    code_change_attempts: int = 5
    http_timeout: float = 20.0
    db_file: str = "reference.sqlite"
    #: server limits of its HTTP edge (timeouts, connections) and TLS: server certificate, and the CA whose
    #: client certificates it requires (mutual TLS with the gateway); None = plain HTTP
    limits: Limits = field(default_factory=Limits)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    #: CA of the gateway's certificate (https gateway_url); its client certificate is tls_cert/tls_key
    gateway_ca: Path | None = None

    def __post_init__(self) -> None:
        if not is_valid_lg_code(self.lg_code):
            raise ValueError(f"lg_code {self.lg_code!r} is not a valid 全国地方公共団体コード")
        object.__setattr__(self, "defects", check_names(self.defects))

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.db_file

    def client_ssl(self) -> ssl.SSLContext | bool:
        """TLS towards the gateway: its CA, and this SUT's certificate for mutual TLS (True = defaults)."""
        if not self.gateway_url.startswith("https://") or not (self.gateway_ca or self.tls_cert):
            return True
        ctx = ssl.create_default_context(cafile=str(self.gateway_ca) if self.gateway_ca else None)
        if self.tls_cert and self.tls_key:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def with_(self, **kw: Any) -> RefConfig:
        return replace(self, **kw)
