"""The small base every simulated actor shares, and the port through which it talks to the gateway.

A simulator is event-sourced from the trace: ``apply`` updates its per-tenant state from a message it
received or sent (no side effects), ``react`` performs the side effects (answers, new messages). On restart the
gateway replays the trace through ``apply`` only, so state is restored and nothing is sent twice.
"""

from __future__ import annotations

from collections import OrderedDict
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

    async def relay(self, msg: Message, *, sender: tuple[str, str], receiver: tuple[str, str],
                    correlation_id: str | None = None) -> SendResult:
        """Send ``msg``'s body on unchanged under a new header (same type)."""
        ...

    def now(self, tenant: str | None) -> datetime: ...

    def register(self, tenant: str | None, value: str) -> None:
        """Attribute an identifier (住民票コード, 個人番号, card serial …) to a tenant."""
        ...


#: Entries kept per map (and per list) of the untenanted state. Traffic with no tenant (a benchmark, a
#: vendor's own traffic) is open-ended: its state forgets the oldest entries instead of growing with every
#: message.
UNTENANTED_CAP = 20_000
#: The same for a tenant's state. A scenario's tenant never comes near it; a load run's tenant lives for
#: the whole run and must not grow with it either, yet must remember every person the day still acts on:
#: a national peak day records ≈ 140,000 fixture persons before its clock starts (each acted on hours
#: later: a prefecture that had forgotten one refuses its next 本人確認情報通知 as out of order) and
#: ≈ 60,000 more through 転入 — ≈ 200,000, so twice that is kept (a person ≈ 1.5 KB in a map).
TENANT_CAP = 400_000


class CappedDict(OrderedDict[Any, Any]):
    """A dict that forgets its oldest entry once it holds ``cap`` entries."""

    def __init__(self, cap: int, *args: Any, **kwargs: Any) -> None:
        self.cap = cap
        super().__init__(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.cap:
            self.popitem(last=False)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


class CappedList(list[Any]):
    """A list that drops its oldest half once it holds ``cap`` items (amortised O(1) per append)."""

    def __init__(self, cap: int, items: Any = ()) -> None:
        self.cap = cap
        super().__init__(items)

    def append(self, item: Any) -> None:
        super().append(item)
        if len(self) > self.cap:
            del self[: len(self) - self.cap // 2]


def capped_state(st: dict[str, Any], cap: int = UNTENANTED_CAP) -> dict[str, Any]:
    """``st`` with each top-level map and list replaced by a capped one (counters stay as they are)."""
    out: dict[str, Any] = {}
    for k, v in st.items():
        if isinstance(v, dict):
            out[k] = CappedDict(cap, v)
        elif isinstance(v, list):
            out[k] = CappedList(cap, v)
        else:
            out[k] = v
    return out


class Simulator:
    """Base class: per-tenant state dicts, ``apply`` (state) and ``react`` (side effects)."""

    actor: ClassVar[str] = ""

    def __init__(self, port: GatewayPort) -> None:
        self.port = port
        self._state: dict[str | None, dict[str, Any]] = {}

    def state(self, tenant: str | None) -> dict[str, Any]:
        st = self._state.get(tenant)
        if st is None:
            st = self.new_state()
            st = capped_state(st, UNTENANTED_CAP if tenant is None else TENANT_CAP)
            self._state[tenant] = st
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
        """JSON-able view of a tenant's state (for the control API and tests); keys starting with ``_`` are
        indexes derived from the rest (kept so that a message's work does not grow with the state)."""
        return {k: v for k, v in self.state(tenant).items() if _jsonable(v) and not k.startswith("_")}

    def app(self) -> web.Application | None:
        """An optional sub-application of the simulator's own (mounted under /sim/{actor})."""
        return None


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))
