"""What the simulated actors share: the base class that registers them, refusals, siblings, small XML helpers.

This module imports no actor. Each actor in :mod:`simulators.actors` registers itself by subclassing
:class:`SimBase` with its actor id (``class CsSimulator(SimBase, actor="cs")``); importing
:mod:`simulators.actors` imports every actor module, so adding a simulator is adding a module there.

Conventions every simulator here follows (the gateway relies on them):

- **Refusals.** A simulator that refuses a message it received raises :class:`Refusal` from ``react``; the
  gateway records the message with verdict ``refused`` and the refusal's finding (pref: ``PREF-ORDER``,
  portal: ``PORTAL-WINDOW``). Business answers that the catalogue carries (``Result/Status refused``) are
  answers, not refusals.
- **Idempotent state.** Every state change is keyed by a message or business id, and the same pure helper
  runs from ``apply`` and from ``react``. So the order in which the gateway calls ``apply(msg, "in")`` and
  ``react(msg)`` does not matter, calling both is harmless, and replaying the trace through ``apply`` (in for
  the receiver, out for the sender) restores the state — including which 個人番号 were handed out.
- **Siblings.** Simulators created on one port find each other in process (:func:`sibling`): national reads
  the prefecture's and the peers' stores to answer queries; a peer hands its 転出証明書情報 to national, which
  delivers it on arrow 4 (the catalogue has no arrow from a peer to the SUT for that type).
- **lgCodes of non-municipal actors** (:func:`lg_of`): the prefecture uses its 都道府県コード (first two
  digits of the SUT's code + ``000`` + check digit); every other upper-tier or municipal-side actor uses the
  SUT's code; peers use their own.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import unicodedata
import weakref
from collections.abc import Callable
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any, cast

import jaconv
from lxml import etree

from conformance.codec import result_el
from conformance.envelope import J
from conformance.errors import Finding
from conformance.identifiers import make_lg_code
from conformance.xmlsafe import parse, q
from simulators.base import GatewayPort, Message, SendResult, Simulator

__all__ = [
    "ACTORS",
    "CORRELATE_SYNC_RELAYS",
    "HEX",
    "SEED_MAX_BYTES",
    "UPPER",
    "E",
    "Refusal",
    "SimBase",
    "capped",
    "child",
    "corr",
    "deep",
    "from_xml",
    "identity_from_resident",
    "identity_keys",
    "jdate_key",
    "kana_key",
    "lg_of",
    "remember",
    "residents_in",
    "result_el",
    "seed_fields",
    "sibling",
    "stable_token",
    "to_xml",
    "txt",
]

class _TypedMaker:
    """``conformance.envelope.J`` with a return type: ``E.Result(E.Status("accepted"))`` is an _Element."""

    def __getattr__(self, tag: str) -> Callable[..., etree._Element]:
        return cast("Callable[..., etree._Element]", getattr(J, tag))

    def __call__(self, tag: str, *content: Any) -> etree._Element:
        made: etree._Element = J(tag, *content)
        return made


E = _TypedMaker()
UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEX = "0123456789ABCDEF"
SEED_MAX_BYTES = 64 * 1024 * 1024
#: Whether sync requests made while relaying carry the original's correlation id (see SimBase.ask).
CORRELATE_SYNC_RELAYS = True


class Refusal(Exception):
    """A simulator refuses a message it received; the gateway records it as refused with this finding."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def finding(self) -> Finding:
        return Finding(code=self.code, message=self.message)


# --- siblings -----------------------------------------------------------------------------------------------
_BY_PORT: weakref.WeakKeyDictionary[Any, dict[str, Simulator]] = weakref.WeakKeyDictionary()
_BY_PORT_ID: dict[int, tuple[Any, dict[str, Simulator]]] = {}


def _directory(port: Any) -> dict[str, Simulator]:
    try:
        return _BY_PORT.setdefault(port, {})
    except TypeError:  # a port that cannot be weakly referenced: keep it alive with its directory
        entry = _BY_PORT_ID.setdefault(id(port), (port, {}))
        return entry[1]


def sibling(port: GatewayPort, actor: str) -> Simulator | None:
    """The simulator of ``actor`` created on the same port (in process), or None (e.g. a real system)."""
    return _directory(port).get(actor)


def lg_of(port: GatewayPort, actor: str) -> str:
    """The lgCode an upper-tier or municipal-side actor uses in Sender/Receiver (peers use their own)."""
    if actor == "pref":
        return _prefecture_lg(port.sut_lg[:2])
    return port.sut_lg


@cache
def _prefecture_lg(prefecture: str) -> str:
    return make_lg_code(prefecture + "000")


#: Every actor class by actor id, filled as each actor module is imported (``SimBase.__init_subclass__``).
ACTORS: dict[str, type[Simulator]] = {}


class SimBase(Simulator):
    """Shared plumbing: registration as a sibling, sending as this actor, locks that keep relays in order."""

    def __init_subclass__(cls, actor: str = "", **kwargs: Any) -> None:
        """``class X(SimBase, actor="x")`` names the actor X plays and registers X in :data:`ACTORS`."""
        super().__init_subclass__(**kwargs)
        if actor:
            other = ACTORS.get(actor)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"actor {actor!r} is played by both {other.__qualname__} and {cls.__qualname__}")
            cls.actor = actor
            ACTORS[actor] = cls

    def __init__(self, port: GatewayPort) -> None:
        super().__init__(port)
        _directory(port)[self.actor] = self
        self._locks: dict[tuple[str | None, str], asyncio.Lock] = {}

    def me(self, lg: str | None = None) -> tuple[str, str]:
        return (self.actor, lg or lg_of(self.port, self.actor))

    def to(self, actor: str, lg: str | None = None) -> tuple[str, str]:
        return (actor, lg or lg_of(self.port, actor))

    async def send(self, tenant: str | None, receiver: tuple[str, str], message_type: str,
                   body: etree._Element, *, correlation_id: str | None = None, sender_lg: str | None = None,
                   business_date: date | None = None) -> SendResult:
        return await self.port.send(sender=self.me(sender_lg), receiver=receiver, message_type=message_type,
                                    body=body, tenant=tenant, correlation_id=correlation_id,
                                    business_date=business_date)

    async def relay(self, msg: Message, receiver: tuple[str, str], *,
                    correlation_id: str | None = None) -> SendResult:
        """Pass ``msg`` on to ``receiver`` with its body unchanged (the gateway keeps the body's bytes)."""
        return await self.port.relay(msg, sender=self.me(), receiver=receiver, correlation_id=correlation_id)

    async def ask(self, tenant: str | None, receiver: tuple[str, str], message_type: str,
                  body: etree._Element, *, correlation_id: str | None = None) -> SendResult:
        """A sync request made while handling another message (the answer comes in the SendResult).

        The conversation's id goes along when :data:`CORRELATE_SYNC_RELAYS` is set, so relayed hops are linked
        end to end; the answer itself correlates to the relayed request's MessageId (``Header.reply``).
        """
        return await self.send(tenant, receiver, message_type, body,
                               correlation_id=correlation_id if CORRELATE_SYNC_RELAYS else None)

    def register(self, tenant: str | None, *values: str | None) -> None:
        for v in values:
            if v:
                self.port.register(tenant, v)

    def lock(self, tenant: str | None, key: str) -> asyncio.Lock:
        """A FIFO lock per (tenant, key): relays on one arrow leave in the order they arrived."""
        k = (tenant, key)
        lk = self._locks.get(k)
        if lk is None:
            lk = self._locks[k] = asyncio.Lock()
        return lk

    def now(self, tenant: str | None) -> datetime:
        return self.port.now(tenant)


# --- XML helpers --------------------------------------------------------------------------------------------
_PATHS: dict[str, tuple[str, ...]] = {}  # '/'-separated local names -> Clark names (paths are code literals)


def child(el: etree._Element | None, path: str) -> etree._Element | None:
    """The element at a '/'-separated path of local names, or None.

    The first child with each name, as ``find`` gives it; a loop over the children is about three times
    cheaper than lxml's ``find`` (an ElementPath evaluation) for the few children a message element has.
    """
    tags = _PATHS.get(path)
    if tags is None:
        if len(_PATHS) >= 4096:
            _PATHS.clear()
        tags = _PATHS[path] = tuple(q(part) for part in path.split("/"))
    cur = el
    for tag in tags:
        if cur is None:
            return None
        for c in cur:
            if c.tag == tag:
                cur = c
                break
        else:
            return None
    return cur


def txt(el: etree._Element | None, path: str) -> str | None:
    """Text at a '/'-separated path of local names ('' for an empty element), or None."""
    c = child(el, path)
    if c is None:
        return None
    return c.text or ""


def deep(el: etree._Element) -> etree._Element:
    """A detached copy (an element has one parent; answers and relays must not steal the original)."""
    return copy.deepcopy(el)


def to_xml(el: etree._Element) -> str:
    return etree.tostring(el, encoding="unicode")


def from_xml(s: str | bytes | etree._Element) -> etree._Element:
    if isinstance(s, etree._Element):
        return s
    return parse(s)


def corr(msg: Message) -> str:
    """The id an answer or relay of ``msg`` carries, so the original sender can match it end to end."""
    return msg.header.correlation_id or msg.header.message_id


_IDENTITY_CHILDREN = ("JuminhyoCode", "MyNumber", "Name", "BirthDate", "Sex", "Address")


def identity_from_resident(resident: etree._Element, tag: str = "Identity") -> etree._Element:
    """PersonIdentityType (本人確認情報) from a ResidentType or PersonIdentityType element."""
    out = E(tag)
    for name in _IDENTITY_CHILDREN:
        c = resident.find(q(name))
        if c is not None:
            out.append(deep(c))
    return out


def identity_keys(identity: etree._Element) -> dict[str, Any]:
    """What a search needs of a 本人確認情報, kept beside its XML so a query does not parse every person."""
    return {
        "my_number": txt(identity, "MyNumber"),
        "kana": tuple(sorted({k for k in (kana_key(txt(identity, "Name/Kana")),
                                          kana_key(txt(identity, "Name/TsushoKana"))) if k})),
        "birth": jdate_key(child(identity, "BirthDate")),
        "sex": txt(identity, "Sex"),
    }


def remember(seen: dict[str, int], key: str, limit: int = 20_000) -> bool:
    """Note ``key`` in an insertion-ordered dict used for idempotency; False if it was there already.

    Only the newest ``limit`` keys are kept, so a long load run does not grow without bound (the gateway
    itself never delivers an accepted MessageId twice; this guards against replays and direct calls).
    """
    if key in seen:
        return False
    seen[key] = 1
    if len(seen) > limit:
        del seen[next(iter(seen))]
    return True


def capped(items: list[Any], item: Any, limit: int = 1_000) -> None:
    """Append, keeping the newest ``limit`` items."""
    items.append(item)
    if len(items) > limit:
        del items[: len(items) - limit]


def jdate_key(el: etree._Element | None) -> str | None:
    """A comparable key for a JDateType element: the 西暦 date, else the 不詳 text."""
    if el is None:
        return None
    w = txt(el, "Western")
    if w:
        return w.strip()
    u = txt(el, "Uncertain")
    return u.strip() if u else None


def kana_key(s: str | None) -> str:
    """Kana compared the way a search terminal does: NFKC, katakana, no spaces."""
    if not s:
        return ""
    return _kana_key(s)


@lru_cache(maxsize=8192)
def _kana_key(s: str) -> str:
    n = unicodedata.normalize("NFKC", s)
    n = jaconv.hira2kata(n)
    return "".join(ch for ch in n if not ch.isspace())


def stable_token(*parts: str, n: int, alphabet: str = UPPER) -> str:
    """A deterministic token of ``n`` characters from ``alphabet`` (same inputs, same token — replay-safe)."""
    out: list[str] = []
    counter = 0
    while len(out) < n:
        h = hashlib.sha256(("\x1f".join(parts) + f"\x1f{counter}").encode("utf-8")).digest()
        out.extend(alphabet[b % len(alphabet)] for b in h)
        counter += 1
    return "".join(out[:n])


# --- seeding ------------------------------------------------------------------------------------------------
def seed_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Kind-specific fields of a seed: top-level keys, with a nested ``data`` object merged under them."""
    nested = data.get("data")
    out: dict[str, Any] = dict(nested) if isinstance(nested, dict) else {}
    out.update({k: v for k, v in data.items() if k != "data"})
    return out


def residents_in(data: dict[str, Any]) -> list[etree._Element]:
    """The ResidentType elements of a seed's ``xml`` (a <Residents> list, or a single <Resident>)."""
    raw = data.get("xml")
    if raw is None or raw == "":
        return []
    # seeds come from the control API (control token): larger than a message, still parsed hardened
    root = raw if isinstance(raw, etree._Element) else parse(raw, max_bytes=SEED_MAX_BYTES)
    if root.tag == q("Resident"):
        return [root]
    return [c for c in root if isinstance(c.tag, str) and c.tag == q("Resident")]
