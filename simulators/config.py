"""Harness configuration: one TOML file (``config/default.toml`` documents every key) read into frozen values.

Why a typed layer: the gateway, the runtime, the control API and the CLI all read the same settings; a typo
in a key must fail at start-up with the key's name (``GW-CONFIG``), not as a KeyError in the hot path. Port
``0`` means "an ephemeral port" (tests, ``certify``); :meth:`HarnessConfig.with_ports` rewrites them.

API::

    HarnessConfig                       the whole file (gateway, sut, clock, hours, actors, faults, reference)
    load_config(path | None, *, data_dir=None, port=None) -> HarnessConfig    None = the defaults
    parse_config(mapping, source="<dict>") -> HarnessConfig
    server_ssl_context(gw) / client_ssl_context(ca, cert, key) -> ssl.SSLContext | None
    DEFAULT_SECRETS, cfg.default_secrets() -> the well-known tokens still in use (``serve`` replaces them)
    cfg.with_tokens(control=.., gateway_to_sut=.., sut=.., actors={..}) -> the same config, new tokens

Mutual TLS: ``gateway.tls_client_ca`` makes the gateway ask every client for a certificate signed by that CA
(``ssl.CERT_REQUIRED``); the certificate's CN names the sender (``sut`` or an actor id, ``juki-harness certs``).
Binding beyond loopback needs TLS or ``gateway.allow_public_bind = true`` (and warns either way).
"""

from __future__ import annotations

import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance import catalogue
from conformance.errors import fail
from conformance.identifiers import is_valid_lg_code
from simulators.edge import Limits

DEFAULT_PORT = 8700
#: the tokens the documentation shows; ``serve`` replaces any of them still configured with random ones
DEFAULT_SECRETS = frozenset({"control-secret", "sut-secret", "gateway-secret"})
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
SIMULATED = "simulated"

#: Actors the harness plays: every actor of the catalogue that is not the SUT (its simulated counterparts and
#: the resident, whom scenarios drive).
HOSTED_ACTORS: tuple[str, ...] = tuple(
    a.id for a in catalogue.default().actors.values() if a.role in ("simulator", "driver")
)


@dataclass(frozen=True, slots=True)
class Tokens:
    control: str = "control-secret"
    gateway_to_sut: str = "gateway-secret"


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Retries of HTTP deliveries (to the SUT or a real actor): same MessageId every attempt."""

    attempts: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    timeout_seconds: float = 10.0
    #: a counter request is sent once (never resent: staff would see the operation twice) and waited for
    #: longer than the SUT's own 15 s wait for an asynchronous answer (contract §2)
    counter_timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("var")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tokens: Tokens = field(default_factory=Tokens)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    enforce_hours: bool = False
    trace_file: str = "trace.sqlite"
    tls_client_ca: Path | None = None  # mutual TLS: clients must present a certificate signed by this CA
    allow_public_bind: bool = False    # bind beyond loopback without TLS (warned)
    limits: Limits = field(default_factory=Limits)

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK or self.host.startswith("127.")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def trace_path(self) -> Path:
        return self.data_dir / self.trace_file


@dataclass(frozen=True, slots=True)
class SutConfig:
    lg_code: str = "131016"
    inbound_url: str = "http://127.0.0.1:8800/inbound"
    counter_url: str = "http://127.0.0.1:8800/counter"
    token: str = "sut-secret"
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True, slots=True)
class ActorConfig:
    """One actor: simulated in process, or a real system at ``url`` (with its token and TLS files)."""

    id: str
    mode: str = SIMULATED
    url: str | None = None
    token: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def simulated(self) -> bool:
        return self.url is None


@dataclass(frozen=True, slots=True)
class ClockConfig:
    start: str = "2026-03-30T10:00:00+09:00"
    frozen: bool = False


@dataclass(frozen=True, slots=True)
class ReferenceConfig:
    """Where ``--with-reference-sut`` serves the reference SUT (port 0 = ephemeral)."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True)
class HarnessConfig:
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    sut: SutConfig = field(default_factory=SutConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    hours: dict[str, Any] = field(default_factory=dict)
    actors: dict[str, ActorConfig] = field(
        default_factory=lambda: {a: ActorConfig(a) for a in HOSTED_ACTORS})
    faults: tuple[dict[str, Any], ...] = ()
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    source: str = "<defaults>"

    def with_ports(self, port: int) -> HarnessConfig:
        """The same configuration with the gateway on ``port`` (0 = ephemeral)."""
        return replace(self, gateway=replace(self.gateway, port=port))

    def with_data_dir(self, data_dir: Path) -> HarnessConfig:
        return replace(self, gateway=replace(self.gateway, data_dir=data_dir))

    def with_sut(self, **kw: Any) -> HarnessConfig:
        return replace(self, sut=replace(self.sut, **kw))

    def default_secrets(self) -> list[str]:
        """Config keys whose token is one of the well-known defaults (or empty)."""
        out = [k for k, v in (("gateway.tokens.control", self.gateway.tokens.control),
                              ("gateway.tokens.gateway_to_sut", self.gateway.tokens.gateway_to_sut),
                              ("sut.token", self.sut.token)) if not v or v in DEFAULT_SECRETS]
        return out

    def with_tokens(self, *, control: str | None = None, gateway_to_sut: str | None = None,
                    sut: str | None = None) -> HarnessConfig:
        """The same configuration with some tokens replaced (``serve`` with generated secrets)."""
        t = self.gateway.tokens
        tokens = Tokens(control=control or t.control, gateway_to_sut=gateway_to_sut or t.gateway_to_sut)
        return replace(self, gateway=replace(self.gateway, tokens=tokens),
                       sut=replace(self.sut, token=sut or self.sut.token))

    @property
    def simulated_actors(self) -> list[str]:
        return [a for a, c in self.actors.items() if c.simulated]

    @property
    def real_actors(self) -> dict[str, ActorConfig]:
        return {a: c for a, c in self.actors.items() if not c.simulated}


# ----------------------------------------------------------------------------------------------- parsing

class _Section:
    """Typed reads from one TOML table; every key read is remembered so unknown keys fail loudly."""

    def __init__(self, data: Mapping[str, Any], name: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise fail("GW-CONFIG", f"[{name}] must be a table", file=source)
        self.data, self.name, self.source = data, name, source
        self.seen: set[str] = set()

    def _get(self, key: str, default: Any, types: tuple[type, ...], what: str) -> Any:
        self.seen.add(key)
        if key not in self.data:
            return default
        v = self.data[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise fail("GW-CONFIG", f"{self.name}.{key} = {v!r}: expected {what}", file=self.source)
        return v

    def s(self, key: str, default: str) -> str:
        return str(self._get(key, default, (str,), "a string"))

    def opt_str(self, key: str) -> str | None:
        v = self._get(key, None, (str,), "a string")
        return v if v else None

    def path(self, key: str, default: Path | None = None) -> Path | None:
        v = self._get(key, None, (str,), "a path")
        return Path(v) if v else default

    def i(self, key: str, default: int, lo: int = 0, hi: int = 2**31) -> int:
        v = int(self._get(key, default, (int,), "an integer"))
        if not lo <= v <= hi:
            raise fail("GW-CONFIG", f"{self.name}.{key} = {v}: must be in {lo}..{hi}", file=self.source)
        return v

    def f(self, key: str, default: float) -> float:
        v = float(self._get(key, default, (int, float), "a number"))
        if v < 0:
            raise fail("GW-CONFIG", f"{self.name}.{key} = {v}: must not be negative", file=self.source)
        return v

    def b(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, (bool,), "true or false"))

    def table(self, key: str) -> _Section:
        self.seen.add(key)
        return _Section(self.data.get(key, {}), f"{self.name}.{key}", self.source)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise fail("GW-CONFIG", f"unknown key(s) in [{self.name}]: {', '.join(unknown)}",
                       file=self.source)


def _url(v: str | None, where: str, source: str) -> str | None:
    if v is not None and not v.startswith(("http://", "https://")):
        raise fail("GW-CONFIG", f"{where} = {v!r}: expected an http:// or https:// URL", file=source)
    return v


def parse_config(data: Mapping[str, Any], source: str = "<dict>") -> HarnessConfig:
    """Build a HarnessConfig from a parsed TOML mapping; unknown keys and bad values raise GW-CONFIG."""
    top = _Section(data, "(top)", source)

    g = top.table("gateway")
    tok = g.table("tokens")
    td = Tokens()
    tokens = Tokens(control=tok.s("control", td.control),
                    gateway_to_sut=tok.s("gateway_to_sut", td.gateway_to_sut))
    tok.done()
    d = g.table("delivery")
    dd = DeliveryConfig()
    delivery = DeliveryConfig(attempts=d.i("attempts", dd.attempts, 1, 100),
                              backoff_seconds=d.f("backoff_seconds", dd.backoff_seconds),
                              max_backoff_seconds=d.f("max_backoff_seconds", dd.max_backoff_seconds),
                              timeout_seconds=d.f("timeout_seconds", dd.timeout_seconds),
                              counter_timeout_seconds=d.f("counter_timeout_seconds", dd.counter_timeout_seconds))
    d.done()
    lt = g.table("limits")
    ld = Limits()
    limits = Limits(header_timeout=lt.f("header_timeout_seconds", ld.header_timeout),
                    body_timeout=lt.f("body_timeout_seconds", ld.body_timeout),
                    idle_timeout=lt.f("idle_timeout_seconds", ld.idle_timeout),
                    max_connections=lt.i("max_connections", ld.max_connections, 1, 1_000_000),
                    refusals_per_minute=lt.i("refusals_per_minute", ld.refusals_per_minute, 1, 1_000_000))
    lt.done()
    for k, v in (("header_timeout_seconds", limits.header_timeout), ("body_timeout_seconds",
                 limits.body_timeout), ("idle_timeout_seconds", limits.idle_timeout)):
        if v <= 0:
            raise fail("GW-CONFIG", f"gateway.limits.{k} = {v}: must be positive", file=source)
    gd = GatewayConfig()
    gw = GatewayConfig(
        host=g.s("host", gd.host), port=g.i("port", gd.port, 0, 65535),
        data_dir=g.path("data_dir", gd.data_dir) or gd.data_dir,
        tls_cert=g.path("tls_cert"), tls_key=g.path("tls_key"), tokens=tokens, delivery=delivery,
        enforce_hours=g.b("enforce_hours", gd.enforce_hours), trace_file=g.s("trace_file", gd.trace_file),
        tls_client_ca=g.path("tls_client_ca"), allow_public_bind=g.b("allow_public_bind", False),
        limits=limits)
    g.done()
    if bool(gw.tls_cert) != bool(gw.tls_key):
        raise fail("GW-CONFIG", "gateway.tls_cert and gateway.tls_key must be set together", file=source)
    if gw.tls_client_ca and not gw.tls_cert:
        raise fail("GW-CONFIG", "gateway.tls_client_ca (mutual TLS) needs gateway.tls_cert and tls_key",
                   file=source)

    s = top.table("sut")
    sd = SutConfig()
    sut = SutConfig(
        lg_code=s.s("lg_code", sd.lg_code),
        inbound_url=_url(s.s("inbound_url", sd.inbound_url), "sut.inbound_url", source) or sd.inbound_url,
        counter_url=_url(s.s("counter_url", sd.counter_url), "sut.counter_url", source) or sd.counter_url,
        token=s.s("token", sd.token), tls_ca=s.path("tls_ca"), tls_cert=s.path("tls_cert"),
        tls_key=s.path("tls_key"))
    s.done()
    if not is_valid_lg_code(sut.lg_code):
        raise fail("GW-CONFIG", f"sut.lg_code = {sut.lg_code!r} is not a valid 全国地方公共団体コード "
                   "(6 digits with the JIS X 0402 check digit)", file=source)

    c = top.table("clock")
    cd = ClockConfig()
    clock = ClockConfig(start=c.s("start", cd.start), frozen=c.b("frozen", cd.frozen))
    c.done()

    hours = dict(top.table("hours").data)  # checked by OperatingHours.from_config

    r = top.table("reference")
    reference = ReferenceConfig(host=r.s("host", ReferenceConfig().host), port=r.i("port", 0, 0, 65535))
    r.done()

    actors = {a: ActorConfig(a) for a in HOSTED_ACTORS}
    at = top.table("actors")
    for aid in at.data:
        if aid not in HOSTED_ACTORS:
            raise fail("GW-CONFIG", f"[actors.{aid}]: not an actor the harness plays; known: "
                       f"{', '.join(HOSTED_ACTORS)}", file=source)
        a = at.table(aid)
        mode = a.s("mode", SIMULATED)
        url = _url(a.opt_str("url"), f"actors.{aid}.url", source)
        if mode not in (SIMULATED, "real"):
            raise fail("GW-CONFIG", f"actors.{aid}.mode = {mode!r}: expected 'simulated' or 'real'",
                       file=source)
        if mode == "real" and url is None:
            raise fail("GW-CONFIG", f"actors.{aid}: mode 'real' needs a url", file=source)
        if mode == SIMULATED and url is not None and "mode" in a.data:
            raise fail("GW-CONFIG", f"actors.{aid}: mode 'simulated' with a url; drop one", file=source)
        actors[aid] = ActorConfig(aid, mode="real" if url else SIMULATED, url=url, token=a.opt_str("token"),
                                  tls_ca=a.path("tls_ca"), tls_cert=a.path("tls_cert"),
                                  tls_key=a.path("tls_key"))
        a.done()
        if url and not actors[aid].token:
            raise fail("GW-CONFIG", f"actors.{aid}: a real actor needs a token (it authenticates to /msg "
                       "with it)", file=source)
    top.seen.add("actors")

    raw_faults = top._get("faults", [], (list,), "an array of tables ([[faults]])")
    for i, f in enumerate(raw_faults):
        if not isinstance(f, Mapping):
            raise fail("GW-CONFIG", f"faults[{i}] must be a table", file=source)
    top.done()

    tokens_in_use = [tokens.control, sut.token, *(a.token for a in actors.values() if a.token)]
    if len(set(tokens_in_use)) != len(tokens_in_use):
        raise fail("GW-CONFIG", "the control token, sut.token and every actors.<id>.token must differ "
                   "(a token names who is sending)", file=source)
    return HarnessConfig(gateway=gw, sut=sut, clock=clock, hours=hours, actors=actors,
                         faults=tuple(dict(f) for f in raw_faults), reference=reference, source=source)


def load_config(path: str | Path | None = None, *, data_dir: Path | None = None,
                port: int | None = None) -> HarnessConfig:
    """Read a TOML config (None = built-in defaults); ``data_dir``/``port`` override the file."""
    if path is None:
        cfg = HarnessConfig()
    else:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise fail("GW-CONFIG", f"{p}: no such config file") from None
        except tomllib.TOMLDecodeError as e:
            raise fail("GW-CONFIG", f"{p}: not valid TOML: {e}", file=str(p)) from None
        cfg = parse_config(data, str(p))
    if data_dir is not None:
        cfg = cfg.with_data_dir(data_dir)
    if port is not None:
        cfg = cfg.with_ports(port)
    return cfg


def check_bind(gw: GatewayConfig) -> str | None:
    """Refuse (GW-BIND) binding beyond loopback without TLS unless allowed; a warning text when allowed."""
    if gw.loopback:
        return None
    if not gw.tls_cert and not gw.allow_public_bind:
        raise fail("GW-BIND", f"gateway.host = {gw.host!r} binds beyond loopback without TLS: set "
                   "gateway.tls_cert/tls_key, or allow it (gateway.allow_public_bind = true, serve "
                   "--allow-public-bind)")
    if not gw.tls_cert:
        return f"the gateway listens on {gw.host} in plain HTTP: tokens cross the network unencrypted"
    if not gw.tls_client_ca:
        return f"the gateway listens on {gw.host} without client certificates (no gateway.tls_client_ca)"
    return None


# ------------------------------------------------------------------------------------------------- TLS

def server_ssl_context(gw: GatewayConfig) -> ssl.SSLContext | None:
    """A real server SSLContext when ``tls_cert``/``tls_key`` are set, else None (plain HTTP)."""
    if not gw.tls_cert or not gw.tls_key:
        return None
    return tls_server_context(gw.tls_cert, gw.tls_key, gw.tls_client_ca)


def tls_server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server SSLContext; with ``client_ca`` every client must present a certificate it signed (mTLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
        if client_ca is not None:
            ctx.load_verify_locations(cafile=str(client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise fail("GW-CONFIG", f"server TLS: cannot load {cert} / {key} / {client_ca or '-'}: "
                   f"{type(e).__name__}") from None
    return ctx


def client_ssl_context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Client TLS for deliveries: a private CA and/or a client certificate (mutual TLS); None = defaults."""
    if not (ca or cert):
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cert:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise fail("GW-CONFIG", f"client TLS: cannot load {ca or ''} {cert or ''}: {e}") from None
    return ctx
