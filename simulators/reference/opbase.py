"""What every counter operation shares: its result, the person as entered, the receipt, waiting for answers.

Why a module of its own: the operations are split by family (:mod:`counter`, :mod:`moving`) and both need these.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from lxml import etree

from conformance.codec import (
    address_from,
    foreign_from,
    honseki_from,
    jdate_from,
    name_from,
)
from conformance.model import Address, ForeignInfo, Honseki, JDate, Name, Resident
from simulators.reference.core import (
    Core,
    Ctx,
    Refusal,
    child,
    doc_member,
    el_text,
    fill,
)
from simulators.reference.store import Person

LATE_DAYS = 14  # 住基法22–25条: 届出 within 14 days of the event
#: 番号法施行令: a card not presented for continued use within 90 days of the 転入届 lapses
CONTINUED_USE_DAYS = 90


@dataclass(slots=True)
class OpResult:
    """What a counter operation answers: Result (status, code, detail) and the printed documents."""

    status: str = "accepted"
    code: str | None = None
    detail: str | None = None
    documents: list[etree._Element] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CounterPerson:
    """CounterPersonType read into values (every part optional; each operation says what it needs)."""

    jcode: str | None
    my_number: str | None
    name: Name | None
    birth: JDate | None
    sex: str | None
    relationship: str | None
    honseki: Honseki | None
    foreign: ForeignInfo | None
    card_no: str | None


def counter_person(el: etree._Element) -> CounterPerson:
    n, b, h, f = child(el, "Name"), child(el, "BirthDate"), child(el, "Honseki"), child(el, "Foreign")
    return CounterPerson(
        jcode=el_text(el, "JuminhyoCode"),
        my_number=el_text(el, "MyNumber"),
        name=name_from(n) if n is not None else None,
        birth=fill(jdate_from(b)) if b is not None else None,
        sex=el_text(el, "Sex"),
        relationship=el_text(el, "Relationship"),
        honseki=honseki_from(h) if h is not None else None,
        foreign=foreign_from(f) if f is not None else None,
        card_no=el_text(el, "CardNo"),
    )


def _opt_address(el: etree._Element, tag: str) -> Address | None:
    a = child(el, tag)
    return address_from(a) if a is not None else None


def _bool(el: etree._Element, tag: str) -> bool:
    return (el_text(el, tag) or "").strip() in ("true", "1")


def _need_here(core: Core, a: Address | None, code: str, what: str) -> Address:
    if a is None or not core.is_here(a):
        raise Refusal(code, f"{what} must be an address in this municipality ({core.lg})")
    return a


def _need_identity(cp: CounterPerson, code: str) -> tuple[Name, JDate, str]:
    if cp.name is None or cp.birth is None or cp.sex is None:
        raise Refusal(code, "氏名, 生年月日 and 性別 are required for a person being recorded")
    return cp.name, cp.birth, cp.sex


def _record_new(
    core: Core,
    ctx: Ctx,
    cp: CounterPerson,
    *,
    code: str,
    my_number: str | None,
    identity: tuple[Name, JDate, str],
    household: tuple[str, str, str],
    addr: Address,
    event: JDate,
    reason: str,
    late: bool = False,
) -> Person:
    """記載 of one person from the counter: the record, the 届出期間経過 note if late, the consequences."""
    name, birth, sex = identity
    hh_no, head_name, rel = household
    r = Resident(
        juminhyo_code=code,
        my_number=my_number,
        name=name,
        birth_date=birth,
        sex=sex,
        household_no=hh_no,
        head_name=head_name,
        relationship=rel,
        address=addr,
        resident_since=event,
        address_since=event,
        honseki=cp.honseki,
        foreign=cp.foreign,
        card_no=cp.card_no,
    )
    p = core.new_person(r)
    if late:
        p = replace(p, notes=(*p.notes, "届出期間経過"))
    return core.apply_change(ctx, None, p, reason, event, notified=ctx.op_date)


def receipt(
    core: Core,
    ctx: Ctx,
    kind: str,
    persons: list[Person],
    items: list[etree._Element] | None = None,
    title: str | None = None,
) -> etree._Element:
    """受付票: the members' new state (codes, 個人番号, household, address, status, last change, card)."""
    fresh = [core.store.by_rid(p.rid) or p for p in persons]
    return core.document(
        "受付票",
        title or f"住民異動届受付票（{kind}）",
        ctx,
        [doc_member(p, my_number=True, jcode=True, honseki=True, state=True, card=True) for p in fresh],
        items or [],
    )


async def wait_requests(core: Core, request_nos: list[str]) -> bool:
    """Wait (up to the configured answer timeout) until every asynchronous request has been answered."""
    events = [core.request_done.setdefault(n, asyncio.Event()) for n in request_nos]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), core.cfg.answer_timeout)
        return True
    except TimeoutError:
        return False

