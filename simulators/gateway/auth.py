"""Who is sending: the ONE place where a request's credential becomes a ``Principal``.

Why one place: issue 13 binds a credential to an actor, an lgCode and the arrows that actor may send on
(bearer tokens today, client certificates with mutual TLS). Intake only asks ``Credentials.principal`` and
then checks the envelope against the principal it got (``Principal.refusal``), so binding more to a
credential is a change here, not in the message path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from conformance.errors import Finding
from simulators.config import HarnessConfig
from simulators.gateway.values import SUT_ACTORS, Peek, finding


@dataclass(frozen=True, slots=True)
class Principal:
    """What a credential may do: send as ``actors`` (from ``lg_codes`` / on ``arrows`` when bound)."""

    name: str
    actors: frozenset[str]
    lg_codes: frozenset[str] | None = None  # None: any lgCode
    arrows: frozenset[int] | None = None  # None: any arrow whose sender is one of ``actors``

    def refusal(self, peek: Peek) -> Finding | None:
        """Why this principal may not send an envelope with this header (None: it may)."""
        if peek.sender_actor not in self.actors:
            return finding("GW-SENDER", f"this credential may send as {', '.join(sorted(self.actors))}, not as "
                           f"{peek.sender_actor!r}", "/j:Envelope/j:Header/j:Sender/@actor")
        if self.lg_codes is not None and peek.sender_lg not in self.lg_codes:
            return finding("GW-SENDER-LG", f"this credential may send from lgCode {', '.join(sorted(self.lg_codes))}"
                           f", not {peek.sender_lg!r}", "/j:Envelope/j:Header/j:Sender/@lgCode")
        return None

    def arrow_refusal(self, arrow: int) -> Finding | None:
        """Why this principal may not send on ``arrow`` (None: it may)."""
        if self.arrows is not None and arrow not in self.arrows:
            return finding("GW-SENDER", f"this credential ({self.name}) may not send on arrow {arrow}",
                           "/j:Envelope/j:Header")
        return None


def simulated(actor: str) -> Principal:
    """An in-process simulator sends as itself."""
    return Principal(f"sim:{actor}", frozenset({actor}))


def of_actors(actors: frozenset[str]) -> Principal:
    """A principal for a bare actor set (the control API's ``send`` as a simulated actor, old callers)."""
    return Principal(",".join(sorted(actors)), actors)


def sender_arrows(actors: frozenset[str]) -> frozenset[int]:
    """The arrows of the catalogue on which one of ``actors`` is the sender (either end of a ↔ arrow)."""
    from conformance import catalogue as catalogue_mod

    cat = catalogue_mod.default()
    return frozenset(n for n in cat.arrows if any(src in actors for src, _ in cat.ends(n)))


class CredentialMismatch(Exception):
    """A bearer token and a client certificate that name different senders (403 GW-CREDENTIAL)."""

    def __init__(self, token: str, cert: str) -> None:
        super().__init__(f"the bearer token is {token}'s but the client certificate is {cert}'s")
        self.finding = finding("GW-CREDENTIAL", str(self))


class Credentials:
    """The credential table of one gateway (built from the config; ``set_sut`` keeps it).

    Issue 13: the SUT's credential sends as juki/counter from the SUT's lgCode only; a real actor's token
    (or any actor's client certificate, with ``gateway.tls_client_ca``) only on the arrows where that actor
    is the sender. With mutual TLS the certificate's CN (``sut`` or an actor id) names the sender.
    """

    def __init__(self, config: HarnessConfig) -> None:
        s = config.sut
        sut = Principal("sut", SUT_ACTORS, frozenset({s.lg_code}), sender_arrows(SUT_ACTORS))
        self.by_header: dict[str, Principal] = {f"Bearer {s.token}": sut}
        self.by_cert: dict[str, Principal] = {"sut": sut}
        for a in config.actors:
            self.by_cert[a] = Principal(a, frozenset({a}), None, sender_arrows(frozenset({a})))
        for a, c in config.real_actors.items():
            self.by_header[f"Bearer {c.token}"] = self.by_cert[a]
        self.control = f"Bearer {config.gateway.tokens.control}"

    def principal(self, request: web.BaseRequest | Mapping[str, str]) -> Principal | None:
        """The principal of a request (or of its headers), None when the credential is missing or unknown;
        raises CredentialMismatch when the token and the client certificate name different senders."""
        headers = request.headers if isinstance(request, web.BaseRequest) else request
        by_token = self.by_header.get(headers.get("Authorization", ""))
        if not isinstance(request, web.BaseRequest) or request.transport is None:
            return by_token
        from simulators.tls import identity_of

        cn = identity_of(request.transport.get_extra_info("peercert"))
        by_cert = self.by_cert.get(cn) if cn else None
        if by_cert is None:
            return by_token
        if by_token is not None and by_token.name != by_cert.name:
            raise CredentialMismatch(by_token.name, by_cert.name)
        return by_cert

    def is_control(self, request: web.BaseRequest) -> bool:
        return request.headers.get("Authorization", "") == self.control


def control_only(credential: str) -> Any:
    """Middleware: only the control token passes (control API, trace API)."""
    @web.middleware
    async def mw(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization", "") != credential:
            return web.json_response({"findings": [{"code": "GW-AUTH", "message": "the control token is "
                                                    "required (Authorization: Bearer <token>)"}]}, status=401)
        resp: web.StreamResponse = await handler(request)
        return resp
    return mw
