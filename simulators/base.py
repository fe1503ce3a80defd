"""The small base every simulated actor shares, and the port through which it talks to the gateway.

A simulator is event-sourced from the trace: ``apply`` updates its per-tenant state from a message it
received or sent (no side effects), ``react`` performs the side effects (answers, new messages). On restart the
gateway replays the trace through ``apply`` only, so state is restored and nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Protocol

from aiohttp import web
from lxml import etree

from conformance.catalogue import Catalogue
from conformance.envelope import Header
from conformance.errors import Finding


@dataclass(slots=True)
class Message:
    """A message as a simulator sees it: header, body element, the arrow it crossed, its tenant."""

    header: Header
    body: etree._Element
    arrow: int | None
    tenant: str | None
    raw: bytes = b""


@dataclass(slots=True)
class SendResult:
    """What the gateway answered: HTTP-like status, and for sync types the response message."""

    status: int
    message_id: str
    response: Message | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (200, 202)


class GatewayPort(Protocol):
    """What a simulator may ask of the gateway."""

    catalogue: Catalogue
    sut_lg: str

    async def send(
        self, *, sender: tuple[str, str], receiver: tuple[str, str], message_type: str,
        body: etree._Element, tenant: str | None, correlation_id: str | None = None,
        business_date: date | None = None,
    ) -> SendResult: ...

    def now(self, tenant: str | None) -> datetime: ...

    def register(self, tenant: str | None, value: str) -> None:
        """Attribute an identifier (住民票コード, 個人番号, card serial …) to a tenant."""
        ...


class Simulator:
    """Base class: per-tenant state dicts, ``apply`` (state) and ``react`` (side effects)."""

    actor: ClassVar[str] = ""

    def __init__(self, port: GatewayPort) -> None:
        self.port = port
        self._state: dict[str | None, dict[str, Any]] = {}

    def state(self, tenant: str | None) -> dict[str, Any]:
        st = self._state.get(tenant)
        if st is None:
            st = self._state[tenant] = self.new_state()
        return st

    def new_state(self) -> dict[str, Any]:
        return {}

    def apply(self, msg: Message, direction: str) -> None:
        """Update state from a message received (``direction='in'``) or sent (``'out'``). No side effects."""

    async def react(self, msg: Message) -> etree._Element | None:
        """Side effects of a received message. Sync types return the response body; async return None."""
        return None

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        """Control-API seeding (residents into peers/national, cards …); recorded in the trace as an event."""

    def snapshot(self, tenant: str | None) -> dict[str, Any]:
        """JSON-able view of a tenant's state (for the control API and tests)."""
        return {k: v for k, v in self.state(tenant).items() if _jsonable(v)}

    def app(self) -> web.Application | None:
        """An optional sub-application of the simulator's own (mounted under /sim/{actor})."""
        return None


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))
