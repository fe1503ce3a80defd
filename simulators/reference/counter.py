"""Counter operations (contract section 4): what staff do at the terminal, and the documents printed.

Why each operation first checks and then changes: a refusal (``Result/Status refused`` with a code) must
leave nothing behind, so every check runs before the first write, and the writes of one operation share
one transaction with the messages they cause. Operations that wait for an asynchronous answer (F21, F23,
F24) commit first and then wait, as staff wait at the terminal; the answer is applied by the inbound
handler whether or not anyone still waits.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from lxml import etree

from conformance.codec import (
    address_el,
    address_from,
    foreign_from,
    honseki_from,
    jdate_el,
    jdate_from,
    name_el,
    name_from,
    person_identity_el,
    resident_from,
)
from conformance.envelope import J, new_id
from conformance.model import Address, ForeignInfo, Honseki, JDate, Name, Resident
from conformance.xmlsafe import parse, q
from simulators.clock import JST
from simulators.reference import defects
from simulators.reference.core import (
    CardEvent,
    Core,
    Ctx,
    Refusal,
    address_text,
    child,
    date_text,
    doc_member,
    el_text,
    fill,
    item,
    jd,
    koseki_person_el,
    name_text,
    need,
    reason_names,
    status_after_moveout,
    western,
)
from simulators.reference.inbound import (
    koseki_record,
    move_out_cert_info,
    start_code_change,
    start_number_request,
)
from simulators.reference.store import DELETED, MOVING_OUT, RESIDENT, Person, PlannedMove

LATE_DAYS = 14  # 住基法22条: 転入届 within 14 days


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


# --- F01 住民異動届 ---------------------------------------------------------------------------------------


async def moving_notification(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    kind = el_text(op, "Kind") or ""
    event = fill(jdate_from(need(op, "EventDate")))
    persons = [counter_person(p) for p in op.iterfind(q("Person"))]
    new_addr = _opt_address(op, "NewAddress")
    head_code = el_text(op, "HeadJuminhyoCode")
    if kind == "国内転入":
        return await _move_in(core, ctx, op, event, persons, new_addr, head_code)
    if kind in ("国外転入", "出生"):
        return await _new_persons(core, ctx, kind, event, persons, new_addr, head_code)
    if kind in ("国内転出", "国外転出"):
        return _move_out(core, ctx, op, kind, event, persons, new_addr)
    if kind == "転居":
        return _tenkyo(core, ctx, event, persons, new_addr, head_code)
    if kind == "世帯変更":
        return _household_change(core, ctx, event, persons, head_code)
    if kind == "死亡":
        return _death(core, ctx, event, persons)
    raise Refusal("MOVE-KIND", f"unknown notification kind {kind!r}")


def _late(ctx: Ctx, event: JDate) -> bool:
    d = western(event)
    return d is not None and (ctx.op_date - d).days > LATE_DAYS


def _household_of(
    core: Core, persons: list[CounterPerson], head_code: str | None, first_name: Name
) -> tuple[Person | None, str, str]:
    """For persons arriving together: (an existing head to join, new household no, head name)."""
    head = core.store.by_code(head_code) if head_code else None
    if head is not None and head.status != DELETED:
        return head, head.r.household_no, head.r.head_name
    named = next((cp for cp in persons if cp.relationship == "世帯主" and cp.name is not None), None)
    head_name = name_text(named.name) if named is not None and named.name else name_text(first_name)
    return None, core.store.new_household_no(), head_name


async def _move_in(
    core: Core,
    ctx: Ctx,
    op: etree._Element,
    event: JDate,
    persons: list[CounterPerson],
    new_addr: Address | None,
    head_code: str | None,
) -> OpResult:
    from_lg = el_text(op, "FromLgCode")
    if not from_lg or from_lg == core.lg:
        raise Refusal("MOVE-FROM", "国内転入 needs FromLgCode of another municipality (転出証明書)")
    addr = _need_here(core, new_addr, "MOVE-ADDRESS", "NewAddress")
    for cp in persons:
        if not cp.jcode or not cp.my_number:
            raise Refusal(
                "MOVE-IDS", "国内転入: each person carries the 住民票コード and 個人番号 of the 転出証明書"
            )
        _need_identity(cp, "MOVE-PERSON")
        existing = core.store.by_code(cp.jcode)
        if existing is not None and existing.status != DELETED:
            raise Refusal("ALREADY-RECORDED", f"住民票コード {cp.jcode} is already recorded here")
    late = _late(ctx, event) and not defects.on(core.cfg, "movein-no-late-item")
    reason = "A04" if defects.on(core.cfg, "movein-wrong-reason") else "A01"
    recorded: list[Person] = []
    with core.store.tx():
        name0 = persons[0].name or Name()
        head, hh_no, head_name = _household_of(core, persons, head_code, name0)
        for i, cp in enumerate(persons):
            name, birth, sex = _need_identity(cp, "MOVE-PERSON")
            rel = cp.relationship or ("世帯主" if head is None and i == 0 else "同居人")
            assert cp.jcode is not None
            recorded.append(_record_new(
                core, ctx, cp, code=cp.jcode, my_number=cp.my_number, identity=(name, birth, sex),
                household=(hh_no, head_name, rel), addr=addr, event=event, reason=reason, late=late,
            ))
        if not defects.skip(core.cfg, "skip-movein-notice"):
            core.emit(
                ctx,
                "MoveInNotice",
                move_in_notice(
                    core, ctx, recorded, from_lg, event, addr, el_text(op, "MoveOutCertificateNo")
                ),
                to_lg=from_lg,
            )
    items = [item("届出期間経過", f"異動日から{LATE_DAYS}日を経過した届出")] if late else []
    return OpResult(
        documents=[receipt(core, ctx, "国内転入", recorded, items + core.new_record_items(recorded))]
    )


def move_in_notice(
    core: Core,
    ctx: Ctx,
    persons: list[Person],
    from_lg: str,
    move_in: JDate,
    addr: Address,
    cert_no: str | None,
) -> etree._Element:
    """MoveInNotice (F13): to the moving-out municipality, confirmed date and address."""
    body: etree._Element = J.MoveInNotice(J.NoticeNo(new_id("N")))
    if cert_no:
        body.append(J.CertificateNo(cert_no[:80] if _is_id(cert_no) else new_id("C")))
    body.append(J.MoveOutLgCode(from_lg))
    body.append(J.MoveInLgCode(core.lg))
    jdate_el("MoveInDate", move_in, body)
    body.append(J.NotifiedDate(ctx.op_date.isoformat()))
    address_el("NewAddress", addr, body)
    for p in persons:
        pe = J.Person(J.JuminhyoCode(p.code))
        if p.r.my_number:
            pe.append(J.MyNumber(p.r.my_number))
        name_el("Name", p.r.name, pe)
        jdate_el("BirthDate", p.r.birth_date, pe)
        body.append(pe)
    return body


def _is_id(s: str) -> bool:
    return re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._:\-]{0,79}", s) is not None


async def _new_persons(
    core: Core,
    ctx: Ctx,
    kind: str,
    event: JDate,
    persons: list[CounterPerson],
    new_addr: Address | None,
    head_code: str | None,
) -> OpResult:
    """国外転入 and 出生: a new 住民票コード chosen here, then the 個人番号 from J-LIS (F23)."""
    head = core.store.by_code(head_code) if head_code else None
    if kind == "出生":
        if head is None or head.status == DELETED:
            raise Refusal("MOVE-HEAD", "出生: HeadJuminhyoCode must name the household the child joins")
        addr = new_addr if new_addr is not None else head.r.address
        addr = _need_here(core, addr, "MOVE-ADDRESS", "the child's address")
    else:
        addr = _need_here(core, new_addr, "MOVE-ADDRESS", "NewAddress")
    for cp in persons:
        if cp.name is None or cp.sex is None or (cp.birth is None and kind != "出生"):
            raise Refusal("MOVE-PERSON", "氏名, 生年月日 and 性別 are required for a person being recorded")
        existing = core.store.by_code(cp.jcode) if cp.jcode else None
        if existing is not None and existing.status != DELETED:
            raise Refusal("ALREADY-RECORDED", f"住民票コード {cp.jcode} is already recorded here")
    late = kind == "国外転入" and _late(ctx, event) and not defects.on(core.cfg, "movein-no-late-item")
    recorded: list[Person] = []
    requests: list[str] = []
    chosen: list[str] = []
    with core.store.tx():
        name0 = persons[0].name or Name()
        if head is not None and head.status != DELETED:
            join: Person | None = head
            hh_no, head_name = head.r.household_no, head.r.head_name
        else:
            join, hh_no, head_name = _household_of(core, persons, None, name0)
        for i, cp in enumerate(persons):
            assert cp.name is not None and cp.sex is not None
            birth = cp.birth or event
            default_rel = "子" if kind == "出生" else ("世帯主" if join is None and i == 0 else "同居人")
            rel = cp.relationship or default_rel
            returning = bool(cp.jcode and cp.my_number)
            code = cp.jcode if returning and cp.jcode else core.new_juminhyo_code(chosen)
            chosen.append(code)
            reason = "A03" if kind == "出生" else ("A06" if cp.foreign is not None else "A02")
            p = _record_new(
                core, ctx, cp, code=code, my_number=cp.my_number if returning else None,
                identity=(cp.name, birth, cp.sex), household=(hh_no, head_name, rel), addr=addr, event=event,
                reason=reason, late=late,
            )
            recorded.append(p)
            if p.r.my_number is None and not defects.skip(core.cfg, "designate-no-number-request"):
                requests.append(start_number_request(core, ctx, p, "新規指定"))
    items = [item("届出期間経過", f"異動日から{LATE_DAYS}日を経過した届出")] if late else []
    answered = await wait_requests(core, requests) if requests else True
    res = OpResult(documents=[receipt(core, ctx, kind, recorded, items + core.new_record_items(recorded))])
    if not answered:
        res.status, res.code = "held", "NUMBER-PENDING"
        res.detail = "個人番号とすべき番号を待っています（記載は完了）"
    return res


def _move_out(
    core: Core,
    ctx: Ctx,
    op: etree._Element,
    kind: str,
    event: JDate,
    persons: list[CounterPerson],
    new_addr: Address | None,
) -> OpResult:
    to_lg = el_text(op, "ToLgCode")
    if kind == "国内転出" and (not to_lg or to_lg == core.lg):
        raise Refusal("MOVE-TO", "国内転出 needs ToLgCode of another municipality")
    targets = []
    for cp in persons:
        p = core.person(cp.jcode, prefix="MOVE")
        if p.status != RESIDENT:
            raise Refusal("MOVE-STATUS", f"{p.code} is {p.status}, not 住民")
        targets.append(p)
    reason = "D01" if kind == "国内転出" else "D02"
    planned = PlannedMove(
        to_lg=to_lg if kind == "国内転出" else None, when=event, address=new_addr, notified=ctx.op_date
    )
    done = []
    with core.store.tx():
        for p in targets:
            after = replace(p, status=status_after_moveout(core.cfg), planned=planned)
            done.append(core.apply_change(ctx, p, after, reason, event, notified=ctx.op_date))
    items = core.planned_items(done[0]) if done else []
    return OpResult(documents=[receipt(core, ctx, kind, done, items)])


def _tenkyo(
    core: Core,
    ctx: Ctx,
    event: JDate,
    persons: list[CounterPerson],
    new_addr: Address | None,
    head_code: str | None,
) -> OpResult:
    addr = _need_here(core, new_addr, "MOVE-ADDRESS", "NewAddress")
    movers = [core.person(cp.jcode, prefix="MOVE") for cp in persons]
    rels = {p.rid: cp.relationship for p, cp in zip(movers, persons, strict=True)}
    for p in movers:
        if p.status != RESIDENT:
            raise Refusal("MOVE-STATUS", f"{p.code} is {p.status}, not 住民")
    head = core.person(head_code, prefix="MOVE") if head_code else None
    done = []
    with core.store.tx():
        hh_no, head_name = movers[0].r.household_no, movers[0].r.head_name
        mover_ids = {p.rid for p in movers}
        whole = {m.rid for m in core.store.household(hh_no) if m.status != DELETED} <= mover_ids
        if head is not None:
            hh_no, head_name = head.r.household_no, head.r.head_name
        elif not whole and not any(p.r.relationship == "世帯主" for p in movers):
            hh_no, head_name = core.store.new_household_no(), name_text(movers[0].r.name)
            rels[movers[0].rid] = "世帯主"
        for p in movers:
            after = p.with_r(
                address=addr,
                previous_address=p.r.address,
                address_since=event,
                household_no=hh_no,
                head_name=head_name,
                relationship=rels.get(p.rid) or p.r.relationship,
            )
            done.append(core.apply_change(ctx, p, after, "M01", event, notified=ctx.op_date))
    return OpResult(documents=[receipt(core, ctx, "転居", done)])


def _household_change(
    core: Core, ctx: Ctx, event: JDate, persons: list[CounterPerson], head_code: str | None
) -> OpResult:
    if not head_code:
        raise Refusal("MOVE-HEAD", "世帯変更 needs HeadJuminhyoCode (the head after the change)")
    head = core.person(head_code, prefix="MOVE")
    movers = [core.person(cp.jcode, prefix="MOVE") for cp in persons]
    rels = {p.rid: cp.relationship for p, cp in zip(movers, persons, strict=True)}
    done = []
    with core.store.tx():
        if head.rid in {p.rid for p in movers}:
            old = {m.rid for m in core.store.household(head.r.household_no) if m.status != DELETED}
            hh_no = head.r.household_no if old <= {p.rid for p in movers} else core.store.new_household_no()
            head_name = name_text(head.r.name)
        else:
            hh_no, head_name = head.r.household_no, head.r.head_name
        for p in movers:
            rel = "世帯主" if p.rid == head.rid else (rels.get(p.rid) or "同居人")
            after = p.with_r(household_no=hh_no, head_name=head_name, relationship=rel)
            done.append(core.apply_change(ctx, p, after, "M02", event, notified=ctx.op_date))
    return OpResult(documents=[receipt(core, ctx, "世帯変更", done)])


def _death(core: Core, ctx: Ctx, event: JDate, persons: list[CounterPerson]) -> OpResult:
    targets = [core.person(cp.jcode, prefix="MOVE") for cp in persons]
    done = []
    with core.store.tx():
        for p in targets:
            done.append(
                core.apply_change(ctx, p, replace(p, status=DELETED), "D03", event, notified=ctx.op_date)
            )
    return OpResult(documents=[receipt(core, ctx, "死亡", done)])


# --- F02 職権 ---------------------------------------------------------------------------------------------


def _fields(p: Resident) -> dict[str, str]:
    """The printable items of a record, for Before/After on a 処理票."""
    f = p.foreign
    return {
        "氏名": " ".join(x for x in (p.name.kanji, p.name.kana, p.name.latin, p.name.tsusho) if x),
        "生年月日": date_text(p.birth_date),
        "性別": {"1": "男", "2": "女"}.get(p.sex, p.sex),
        "住所": address_text(p.address),
        "世帯主・続柄": f"{p.head_name}・{p.relationship}",
        "本籍・筆頭者": f"{p.honseki.place}・{p.honseki.head_of_family}" if p.honseki else "",
        "外国人住民の記載事項": " ".join(
            x
            for x in (
                f.nationality,
                f.category,
                f.residence_status or "",
                f.period_of_stay or "",
                f.residence_card_no,
            )
            if x
        )
        if f
        else "",
        "個人番号": p.my_number or "",
        "住民票コード": p.juminhyo_code,
        "カード管理番号": p.card_no or "",
    }


def before_after_items(
    before: Resident | None, after: Resident | None, cfg_no_before: bool
) -> list[etree._Element]:
    b = _fields(before) if before is not None else {}
    a = _fields(after) if after is not None else {}
    out = []
    for label in a or b:
        bv, av = b.get(label), a.get(label)
        if before is not None and after is not None and bv == av:
            continue
        out.append(item(label, before=None if cfg_no_before else (bv or None), after=av or None))
    return out


async def official_correction(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    action = el_text(op, "Action") or ""
    basis = el_text(op, "Basis") or ""
    event = fill(jdate_from(need(op, "EventDate")))
    cp = counter_person(need(op, "Person"))
    new_addr = _opt_address(op, "NewAddress")
    no_before = defects.on(core.cfg, "correction-no-before")
    basis_item = item("根拠", basis)
    if action == "記載":
        name, birth, sex = _need_identity(cp, "CORR-PERSON")
        addr = _need_here(core, new_addr, "CORR-ADDRESS", "NewAddress")
        if cp.jcode:
            existing = core.store.by_code(cp.jcode)
            if existing is not None and existing.status != DELETED:
                raise Refusal("ALREADY-RECORDED", f"住民票コード {cp.jcode} is already recorded here")
        request: list[str] = []
        with core.store.tx():
            rel = cp.relationship or "世帯主"
            hh_no, head_name, rel = core.household_for(
                head=None, relationship=rel, self_name=name, address=addr, join_at_address=True
            )
            code = cp.jcode or core.new_juminhyo_code()
            p = _record_new(
                core, ctx, cp, code=code, my_number=cp.my_number if cp.jcode else None,
                identity=(name, birth, sex), household=(hh_no, head_name, rel), addr=addr, event=event,
                reason="A04",
            )
            if p.r.my_number is None and not defects.skip(core.cfg, "designate-no-number-request"):
                request.append(start_number_request(core, ctx, p, "新規指定"))
        answered = await wait_requests(core, request) if request else True
        fresh = core.store.by_rid(p.rid) or p
        doc = core.document(
            "処理票",
            "職権記載処理票",
            ctx,
            [doc_member(fresh, my_number=True, jcode=True, honseki=True, state=True, card=True)],
            [basis_item, *before_after_items(None, fresh.r, no_before), *core.new_record_items([fresh])],
        )
        res = OpResult(documents=[doc])
        if not answered:
            res.status, res.code, res.detail = (
                "held",
                "NUMBER-PENDING",
                "個人番号とすべき番号を待っています（記載は完了）",
            )
        return res
    p = core.person(cp.jcode, prefix="CORR")
    if action == "消除":
        with core.store.tx():
            after = core.apply_change(ctx, p, replace(p, status=DELETED), "D04", event, notified=ctx.op_date)
        doc = core.document(
            "処理票",
            "職権消除処理票",
            ctx,
            [doc_member(after, jcode=True, state=True)],
            [basis_item, item("状態", before=None if no_before else p.status, after=DELETED)],
        )
        return OpResult(documents=[doc])
    # 修正: every part the request states replaces the record's
    r = p.r
    changes: dict[str, object] = {}
    if cp.name is not None and cp.name != r.name:
        changes["name"] = cp.name
    if cp.birth is not None and cp.birth != r.birth_date:
        changes["birth_date"] = cp.birth
    if cp.sex is not None and cp.sex != r.sex:
        changes["sex"] = cp.sex
    if cp.relationship is not None and cp.relationship != r.relationship:
        changes["relationship"] = cp.relationship
    if cp.honseki is not None and cp.honseki != r.honseki:
        changes["honseki"] = cp.honseki
    if cp.foreign is not None and cp.foreign != r.foreign:
        changes["foreign"] = cp.foreign
    if cp.card_no is not None and cp.card_no != r.card_no:
        changes["card_no"] = cp.card_no
    if new_addr is not None and new_addr != r.address:
        _need_here(core, new_addr, "CORR-ADDRESS", "NewAddress")
        changes.update(address=new_addr, previous_address=r.address, address_since=event)
    if not changes:
        raise Refusal("CORR-NO-CHANGE", "the correction states nothing that differs from the record")
    with core.store.tx():
        after = core.apply_change(ctx, p, p.with_r(**changes), "M07", event, notified=ctx.op_date)
    doc = core.document(
        "処理票",
        "職権修正処理票",
        ctx,
        [doc_member(after, my_number=True, jcode=True, honseki=True, state=True, card=True)],
        [basis_item, *before_after_items(r, after.r, no_before)],
    )
    return OpResult(documents=[doc])


# --- F03 住民票の写し / F04 転出証明書 --------------------------------------------------------------------


async def copy_request(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    requester = el_text(op, "Requester") or ""
    want_rel, want_honseki = _bool(op, "Relationship"), _bool(op, "Honseki")
    want_mn, want_code = _bool(op, "IncludeMyNumber"), _bool(op, "IncludeJuminhyoCode")
    if (
        requester in ("第三者", "代理人")
        and (want_honseki or want_mn or want_code)
        and not defects.on(core.cfg, "copy-restricted-allowed")
    ):
        raise Refusal("COPY-RESTRICTED", f"a {requester} cannot be given 本籍, 個人番号 or 住民票コード")
    p = core.person(el_text(op, "JuminhyoCode"), alive=False, prefix="COPY")
    if p.status == DELETED:
        return removed_copy(core, ctx, p, my_number=want_mn, jcode=want_code, honseki=want_honseki)
    members = [p]
    if el_text(op, "Scope") == "世帯全員":
        members = [m for m in core.store.household(p.r.household_no) if m.status != DELETED]
    honseki = want_honseki or defects.on(core.cfg, "copy-unasked-honseki")
    address = not defects.on(core.cfg, "copy-missing-address")
    els = [
        doc_member(
            m, my_number=want_mn, jcode=want_code, household=want_rel, honseki=honseki, address=address
        )
        for m in members
    ]
    items = [item("認証文", "この写しは、住民票の原本と相違ないことを証明する。")]
    return OpResult(documents=[core.document("住民票の写し", "住民票の写し", ctx, els, items)])


def removed_copy(core: Core, ctx: Ctx, p: Person, *, my_number: bool, jcode: bool, honseki: bool) -> OpResult:
    """住民票の除票の写し (住基法15条の4): the deleted record alone, with why and when it was deleted and, for a
    転出, the planned move (転出届) beside the confirmed one (転入通知) — neither replaces the other."""
    els = [doc_member(p, my_number=my_number, jcode=jcode, honseki=honseki)]
    code = p.last_change.code if p.last_change else ""
    items = [item("消除事由", reason_names().get(code, code))]
    items += core.planned_items(p)
    if p.confirmed is not None:
        items += [
            item("転出確定年月日", date_text(p.confirmed.when)),
            item("転出確定住所", address_text(p.confirmed.address)),
        ]
    items.append(item("認証文", "この写しは、住民票の除票の原本と相違ないことを証明する。"))
    return OpResult(documents=[core.document("住民票の除票の写し", "住民票の除票の写し", ctx, els, items)])


async def moveout_certificate_issue(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    p = core.person(el_text(op, "JuminhyoCode"), alive=False, prefix="MOC")
    if (p.status != MOVING_OUT or p.planned is None or p.planned.to_lg is None) and not defects.on(
        core.cfg, "moc-any-status"
    ):
        raise Refusal(
            "MOC-NOT-MOVING", f"{p.code} has not notified a move to another municipality (転出予定)"
        )
    members = core.members_moving(p)
    items = core.planned_items(p)
    if defects.on(core.cfg, "moc-missing-destination"):
        items = [it for it in items if el_text(it, "Label") != "転出先"]
    els = [doc_member(m, my_number=True, jcode=True, honseki=True) for m in members]
    return OpResult(documents=[core.document("転出証明書", "転出証明書", ctx, els, items)])


# --- F09 特例転入 -----------------------------------------------------------------------------------------


def _cert_members(xml: str) -> tuple[etree._Element, list[tuple[Resident, str | None]]]:
    body = parse(xml)
    out = []
    for m in body.iterfind(q("Member")):
        out.append((resident_from(need(m, "Resident")), el_text(m, "CardNo")))
    return body, out


async def special_movein_pending(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    lg_filter, code_filter = el_text(op, "MoveOutLgCode"), el_text(op, "JuminhyoCode")
    members: list[etree._Element] = []
    items: list[etree._Element] = []
    for cert_no, from_lg, xml in core.store.certs_unused():
        if lg_filter and from_lg != lg_filter:
            continue
        _, residents = _cert_members(xml)
        for r, _card in residents:
            if code_filter and r.juminhyo_code != code_filter:
                continue
            members.append(doc_member(Person(rid=0, r=r), jcode=True, household=False))
            items.append(item("証明書番号", cert_no))
    return OpResult(documents=[core.document("特例転入候補", "受信した転出証明書情報", ctx, members, items)])


async def special_movein_confirm(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    cert_no = el_text(op, "CertificateNo") or ""
    card_no = el_text(op, "CardNo") or ""
    move_in = fill(jdate_from(need(op, "MoveInDate")))
    addr = _need_here(core, _opt_address(op, "NewAddress"), "SMI-ADDRESS", "NewAddress")
    codes = [e.text or "" for e in op.iterfind(q("JuminhyoCode"))]
    found = core.store.cert_get(cert_no)
    if found is None:
        raise Refusal("SMI-NO-CERT", f"no 転出証明書情報 {cert_no} has been received")
    xml, used = found
    if used:
        raise Refusal("SMI-USED", f"転出証明書情報 {cert_no} has already been used")
    body, residents = _cert_members(xml)
    if card_no not in {c for _, c in residents if c} and not defects.on(core.cfg, "smi-no-card-check"):
        raise Refusal("SMI-CARD", f"card {card_no} belongs to nobody on 転出証明書情報 {cert_no}")
    by_code = {r.juminhyo_code: (r, c) for r, c in residents}
    missing = [c for c in codes if c not in by_code]
    if missing:
        raise Refusal("SMI-PERSON", f"{', '.join(missing)} not on 転出証明書情報 {cert_no}")
    d_in = western(move_in)
    if (
        d_in is not None
        and ctx.op_date > d_in + timedelta(days=14)
        and not defects.on(core.cfg, "smi-no-14day-check")
    ):
        raise Refusal(
            "SMI-14DAYS", f"特例転入 must be notified within 14 days of moving in ({d_in.isoformat()})"
        )
    planned_el = child(body, "PlannedMoveOutDate")
    planned = western(jdate_from(planned_el)) if planned_el is not None else None
    if (
        planned is not None
        and ctx.op_date > planned + timedelta(days=30)
        and not defects.on(core.cfg, "smi-no-30day-check")
    ):
        raise Refusal(
            "SMI-30DAYS",
            f"特例転入 must be notified within 30 days of the planned move-out ({planned.isoformat()})",
        )
    for c in codes:
        existing = core.store.by_code(c)
        if existing is not None and existing.status != DELETED:
            raise Refusal("ALREADY-RECORDED", f"住民票コード {c} is already recorded here")
    from_lg = el_text(body, "MoveOutLgCode") or ""
    chosen = [by_code[c] for c in codes]
    head = next((r for r, _ in chosen if r.relationship == "世帯主"), chosen[0][0])
    recorded: list[Person] = []
    with core.store.tx():
        hh_no, head_name = core.store.new_household_no(), name_text(head.name)
        for r, card in chosen:
            rel = "世帯主" if r is head else r.relationship
            nr = replace(
                r,
                household_no=hh_no,
                head_name=head_name,
                relationship=rel,
                address=addr,
                previous_address=r.address,
                resident_since=move_in,
                address_since=move_in,
                card_no=card,
                card_serial=None,
                identification_no=None,
            )
            recorded.append(
                core.apply_change(
                    ctx, None, core.new_person(nr), "A05", move_in, notified=ctx.op_date, card=False
                )
            )
        if not defects.skip(core.cfg, "skip-movein-notice"):
            core.emit(
                ctx,
                "MoveInNotice",
                move_in_notice(core, ctx, recorded, from_lg, move_in, addr, cert_no),
                to_lg=from_lg,
            )
        for p in recorded:
            core.card_info(ctx, p, CardEvent("転入継続利用", ctx.op_date, addr))
        core.store.cert_mark_used(cert_no)
    return OpResult(
        documents=[
            receipt(
                core,
                ctx,
                "特例転入",
                recorded,
                core.new_record_items(recorded),
                title="住民異動届受付票（特例転入）",
            )
        ]
    )


# --- F14 戸籍の記載 ---------------------------------------------------------------------------------------


async def koseki_entry(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    cp = counter_person(need(op, "Person"))
    address_lg = el_text(op, "AddressLgCode") or ""
    entry_kind = el_text(op, "EntryKind") or ""
    entry_date = fill(jdate_from(need(op, "EntryDate")))
    nn = child(op, "NewName")
    new_name = name_from(nn) if nn is not None else None
    if cp.name is None or cp.birth is None:
        raise Refusal("KOSEKI-PERSON", "氏名 and 生年月日 of the person are required")
    items = [item("戸籍の記載", entry_kind), item("届出・記載の年月日", date_text(entry_date))]
    if new_name is not None:
        items.append(item("氏名", before=name_text(cp.name), after=name_text(new_name)))
    if address_lg == core.lg:
        p = core.store.by_code(cp.jcode) if cp.jcode else None
        if p is None:
            p = core.by_name_birth(cp.name, cp.birth, alive=True)
        if p is None or p.status == DELETED:
            raise Refusal(
                "KOSEKI-NOT-FOUND", "the person does not live here (AddressLgCode is this municipality)"
            )
        with core.store.tx():
            koseki_record(
                core,
                cp.jcode or p.code,
                new_name or cp.name,
                cp.birth,
                cp.sex,
                cp.honseki or p.r.honseki,
                address_lg,
                entry_kind,
                dead=entry_kind == "死亡",
                old_name=cp.name,
            )
            after = p
            if entry_kind == "死亡":
                after = core.apply_change(
                    ctx, p, replace(p, status=DELETED), "D03", entry_date, notified=ctx.op_date
                )
            elif new_name is not None and new_name != p.r.name:
                after = core.apply_change(
                    ctx, p, p.with_r(name=new_name), "M08", entry_date, notified=ctx.op_date
                )
            else:
                items.append(item("住民票", "修正すべき事項なし"))
        return OpResult(
            documents=[
                core.document(
                    "処理票",
                    "戸籍の記載に伴う処理票",
                    ctx,
                    [doc_member(after, jcode=True, state=True)],
                    items,
                )
            ]
        )
    if cp.honseki is None:
        raise Refusal("KOSEKI-HONSEKI", "本籍・筆頭者 are required to notify the address municipality")
    with core.store.tx():
        koseki_record(
            core,
            cp.jcode,
            new_name or cp.name,
            cp.birth,
            cp.sex,
            cp.honseki,
            address_lg,
            entry_kind,
            dead=entry_kind == "死亡",
            old_name=cp.name,
        )
        if not defects.skip(core.cfg, "koseki-no-entry-notice"):
            body = J.KosekiEntryNotice(
                J.NoticeNo(new_id("N")),
                J.HonsekiLgCode(core.lg),
                koseki_person_el(
                    "Person", jcode=cp.jcode, name=cp.name, birth=cp.birth, sex=cp.sex, honseki_=cp.honseki
                ),
                J.EntryKind(entry_kind),
            )
            jdate_el("EntryDate", entry_date, body)
            if new_name is not None:
                name_el("NewName", new_name, body)
            core.emit(ctx, "KosekiEntryNotice", body, to_lg=address_lg)
    items.append(item("通知先", address_lg))
    return OpResult(documents=[core.document("処理票", "戸籍の記載に伴う住所地への通知", ctx, [], items)])


# --- CS terminal (arrow 13, sync): F07, F20, F22 ----------------------------------------------------------


async def _ask_cs(
    core: Core, ctx: Ctx, message_type: str, body: etree._Element, expected_root: str
) -> etree._Element | OpResult:
    """Send a terminal request through the outbox and await the CS's answer (or a held/refused result)."""
    with core.store.tx():
        oid = core.emit(ctx, message_type, body)
    ans = await core.outbox.wait_answer(oid, core.cfg.answer_timeout)
    if ans is None:
        return OpResult(status="held", code="CS-NO-ANSWER", detail="CSからの応答を待っています")
    if not ans.ok or ans.body is None or etree.QName(ans.body).localname != expected_root:
        return OpResult(status="refused", code="CS-REFUSED", detail=f"the gateway answered {ans.status}")
    return ans.body


def _answer_status(body: etree._Element) -> tuple[str, str | None, str | None]:
    return (
        el_text(body, "Result/Status") or "refused",
        el_text(body, "Result/Code"),
        el_text(body, "Result/Detail"),
    )


async def identity_query_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    body = J.IdentityQuery(J.QueryNo(new_id("Q")), J.Purpose(el_text(op, "Purpose") or "窓口照会"))
    jc, mn, kana = el_text(op, "JuminhyoCode"), el_text(op, "MyNumber"), el_text(op, "NameKana")
    if jc:
        body.append(J.JuminhyoCode(jc))
    elif mn:
        body.append(J.MyNumber(mn))
    else:
        b = child(op, "BirthDate")
        if not kana or b is None:
            raise Refusal("QUERY-ATTRIBUTES", "a 4情報 query needs NameKana and BirthDate")
        attrs = J.Attributes(J.NameKana(kana))
        jdate_el("BirthDate", fill(jdate_from(b)), attrs)
        body.append(attrs)
    got = await _ask_cs(core, ctx, "IdentityQuery", body, "IdentityQueryResult")
    if isinstance(got, OpResult):
        return got
    status, code, detail = _answer_status(got)
    members = (
        []
        if defects.on(core.cfg, "query-not-printed")
        else [_identity_member(i) for i in got.iterfind(q("Identity"))]
    )
    items = [item("照会結果", status if not code else f"{status} {code}")]
    doc = core.document("照会結果", "本人確認情報照会結果", ctx, members, items)
    return OpResult(
        status=status if status in ("accepted", "refused", "not-found", "held") else "refused",
        code=code,
        detail=detail,
        documents=[doc],
    )


def _identity_member(identity: etree._Element) -> etree._Element:
    """A DocMember copied from a PersonIdentityType (same leading order: codes, name, birth, sex, address)."""
    m: etree._Element = J.Member()
    for c in identity:
        if isinstance(c.tag, str):
            m.append(etree.fromstring(etree.tostring(c)))
    return m


async def card_issue_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    p = core.person(el_text(op, "JuminhyoCode"), prefix="CARD")
    if not p.r.my_number:
        raise Refusal("CARD-NO-NUMBER", f"{p.code} has no 個人番号 yet")
    body = J.CardIssuanceRequest(J.ApplicationNo(el_text(op, "ApplicationNo") or new_id("A")))
    person_identity_el("Identity", p.r, body)
    body.append(J.HandoverDate(ctx.op_date.isoformat()))
    for d in op.iterfind(q("CheckedDocument")):
        body.append(J.CheckedDocument(d.text or ""))
    got = await _ask_cs(core, ctx, "CardIssuanceRequest", body, "CardIssuanceResult")
    if isinstance(got, OpResult):
        return got
    status, code, detail = _answer_status(got)
    if status != "accepted":
        return OpResult(
            status="refused" if status != "held" else "held", code=code or "CARD-REFUSED", detail=detail
        )
    fresh = core.store.by_rid(p.rid) or p
    items = [
        item("カード管理番号", el_text(got, "CardNo") or ""),
        item("交付年月日", ctx.op_date.isoformat()),
    ]
    if el_text(got, "ValidUntil"):
        items.append(item("有効期限", el_text(got, "ValidUntil")))
    if fresh.r.identification_no:
        items.append(item("識別番号", fresh.r.identification_no))
    doc = core.document(
        "交付通知", "個人番号カード交付通知", ctx, [doc_member(fresh, jcode=True, card=True)], items
    )
    return OpResult(documents=[doc])


async def card_verify_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    card_no, serial = el_text(op, "CardNo") or "", el_text(op, "CertSerial") or ""
    jc = el_text(op, "JuminhyoCode")
    body = J.CardVerificationRequest(
        J.VerificationNo(new_id("V")),
        J.CardNo(card_no),
        J.CertSerial(serial),
        J.PinVerified("true" if _bool(op, "PinVerified") else "false"),
    )
    if jc:
        body.append(J.JuminhyoCode(jc))
    got = await _ask_cs(core, ctx, "CardVerificationRequest", body, "CardVerificationResult")
    if isinstance(got, OpResult):
        return got
    status, code, detail = _answer_status(got)
    if status == "held":
        return OpResult(status="held", code=code, detail=detail)
    valid = el_text(got, "Valid") == "true" or defects.on(core.cfg, "verify-always-valid")
    identity = child(got, "Identity")
    matches_text = el_text(got, "Matches")
    if matches_text is not None:
        matches: bool | None = matches_text == "true"
    elif jc and identity is not None:
        matches = el_text(identity, "JuminhyoCode") == jc
    else:
        matches = None
    items = [
        item("カードの有効性", "有効" if valid else "無効"),
        item("暗証番号の照合", "一致" if _bool(op, "PinVerified") else "不一致"),
    ]
    if matches is not None:
        items.append(item("本人との一致", "一致" if matches else "不一致"))
    if code:
        items.append(item("結果コード", code))
    members = [_identity_member(identity)] if identity is not None else []
    return OpResult(
        documents=[core.document("本人確認結果", "マイナンバーカードによる本人確認結果", ctx, members, items)]
    )


# --- F21 個人番号の変更, F24 住民票コードの変更 -----------------------------------------------------------


async def my_number_change_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    p = core.person(el_text(op, "JuminhyoCode"), prefix="MNC")
    if not p.r.my_number:
        raise Refusal("MNC-NO-NUMBER", f"{p.code} has no 個人番号 to change")
    with core.store.tx():
        req = start_number_request(
            core,
            ctx,
            p,
            "変更",
            extra={"basis": el_text(op, "Basis") or "", "reason": el_text(op, "ReasonText") or ""},
        )
    if not await wait_requests(core, [req]):
        return OpResult(status="held", code="NUMBER-PENDING", detail="個人番号とすべき番号を待っています")
    fresh = core.store.by_rid(p.rid) or p
    items = [
        item("変更前の個人番号", p.r.my_number),
        item("変更後の個人番号", fresh.r.my_number or ""),
        item("変更の根拠", el_text(op, "Basis") or ""),
    ]
    return OpResult(
        documents=[
            core.document(
                "変更通知", "個人番号変更通知", ctx, [doc_member(fresh, my_number=True, jcode=True)], items
            )
        ]
    )


async def resident_code_change_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    p = core.person(el_text(op, "JuminhyoCode"), prefix="RCC")
    with core.store.tx():
        origin = start_code_change(core, ctx, p)
    if not await wait_requests(core, [origin]):
        return OpResult(status="held", code="CODE-PENDING", detail="住民票コード変更の結果を待っています")
    found = core.store.request_get(origin)
    if found is None or found[2] != "done":
        return OpResult(status="refused", code="RCC-FAILED", detail="CS refused every new 住民票コード tried")
    fresh = core.store.by_rid(p.rid) or p
    items = [item("変更前の住民票コード", p.code), item("変更後の住民票コード", fresh.code)]
    return OpResult(
        documents=[
            core.document("変更通知", "住民票コード変更通知", ctx, [doc_member(fresh, jcode=True)], items)
        ]
    )


# --- F28 交付予約, F30 電子申請, F11 処理票 ---------------------------------------------------------------


async def card_handover_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    p = core.person(el_text(op, "JuminhyoCode"), prefix="HANDOVER")
    slot_text = el_text(op, "Slot") or ""
    if defects.on(core.cfg, "handover-wrong-slot"):
        slot_text = (datetime.fromisoformat(slot_text) + timedelta(hours=1)).isoformat()
    items = [
        item("予約番号", el_text(op, "BookingId") or ""),
        item("予約日時", slot_text),
        item("交付場所", el_text(op, "Place") or ""),
    ]
    if p.r.card_no:
        items.append(item("カード管理番号", p.r.card_no))
    return OpResult(
        documents=[
            core.document(
                "交付通知", "個人番号カード交付（予約）", ctx, [doc_member(p, jcode=True, card=True)], items
            )
        ]
    )


async def eapplication_process_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    app_id = el_text(op, "ApplicationId") or ""
    found = core.store.eapp_get(app_id)
    if found is None:
        raise Refusal("EAPP-NOT-FOUND", f"no e-application {app_id} has been received")
    state, xml = found
    if state != "received":
        raise Refusal("EAPP-DONE", f"e-application {app_id} is already {state}")
    app = parse(xml)
    kind = el_text(app, "Kind") or ""
    submitted = datetime.fromisoformat(el_text(app, "SubmittedAt") or "")
    sub_day = (submitted.astimezone(JST) if submitted.tzinfo else submitted).date()
    planned_day = date.fromisoformat(el_text(app, "PlannedMoveOutDate") or "")
    if not (
        planned_day - timedelta(days=30) <= sub_day <= planned_day + timedelta(days=10)
    ) and not defects.on(core.cfg, "eapp-no-window-check"):
        raise Refusal(
            "EAPP-WINDOW",
            f"submitted {sub_day.isoformat()}: outside 30 days before to 10 days after "
            f"the planned move-out ({planned_day.isoformat()})",
        )
    dest = address_from(need(app, "Destination"))
    if dest.is_overseas or dest.lg_code == core.lg:
        raise Refusal("EAPP-DESTINATION", "an online 転出届 is for a move to another municipality in Japan")
    people = [child(app, "Applicant"), *app.iterfind(q("Member"))]
    persons: list[Person] = []
    for a in people:
        p = core.find_subject(a)
        if p is None or p.status != RESIDENT:
            n_el = child(a, "Name")
            who = name_text(name_from(n_el)) if n_el is not None else "?"
            raise Refusal("EAPP-UNKNOWN", f"{who}: no such resident here")
        persons.append(p)
    planned = PlannedMove(to_lg=dest.lg_code, when=jd(planned_day), address=dest, notified=sub_day)
    done: list[Person] = []
    with core.store.tx():
        for p in persons:
            after = replace(p, status=status_after_moveout(core.cfg), planned=planned)
            done.append(core.apply_change(ctx, p, after, "D01", planned.when, notified=sub_day))
        if kind == "転出届・転入予約" and not defects.skip(core.cfg, "eapp-no-moc-info"):
            assert dest.lg_code is not None
            core.emit(
                ctx, "MoveOutCertInfo", move_out_cert_info(core, done, dest.lg_code, None), to_lg=dest.lg_code
            )
        core.store.eapp_set_state(app_id, "processed")
    return OpResult(
        documents=[
            receipt(
                core,
                ctx,
                "国内転出",
                done,
                core.planned_items(done[0]),
                title="住民異動届受付票（電子申請・国内転出）",
            )
        ]
    )


async def immigration_slips_op(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    notice_no = el_text(op, "NoticeNo")
    slips = core.store.slips(notice_no)
    if notice_no and not slips:
        raise Refusal("SLIP-NOT-FOUND", f"no 法務省通知 {notice_no} has been received")
    docs = []
    if not defects.on(core.cfg, "moj-no-slip"):
        for no, state, data in slips:
            items = [
                item("通知番号", no),
                item("通知の種別", str(data.get("kind", ""))),
                item("区分", str(data.get("category", ""))),
                item("処理", state),
            ]
            for label, before, after in data.get("items", []):
                items.append(item(str(label), before=before or None, after=after or None))
            members = []
            if data.get("rid"):
                p = core.store.by_rid(int(data["rid"]))
                if p is not None:
                    members.append(doc_member(p, jcode=True, state=True))
            docs.append(core.document("処理票", f"法務省通知処理票（{no}）", ctx, members, items))
        core.store.slips_mark_printed([s[0] for s in slips])
    return OpResult(documents=docs)


Operation = Callable[[Core, Ctx, etree._Element], Awaitable[OpResult]]

#: CounterRequest choice element → operation (the contract's section 4, one per row)
OPERATIONS: dict[str, Operation] = {
    "MovingNotification": moving_notification,
    "OfficialCorrection": official_correction,
    "CopyRequest": copy_request,
    "MoveOutCertificateIssue": moveout_certificate_issue,
    "SpecialMoveInPending": special_movein_pending,
    "SpecialMoveInConfirm": special_movein_confirm,
    "KosekiEntry": koseki_entry,
    "IdentityQueryOp": identity_query_op,
    "CardIssueOp": card_issue_op,
    "MyNumberChangeOp": my_number_change_op,
    "CardVerifyOp": card_verify_op,
    "ResidentCodeChangeOp": resident_code_change_op,
    "CardHandoverOp": card_handover_op,
    "EApplicationProcessOp": eapplication_process_op,
    "ImmigrationSlipsOp": immigration_slips_op,
}


async def run_operation(core: Core, op_date: date, op: etree._Element, cause: str | None = None) -> OpResult:
    """Dispatch one CounterRequest operation; business refusals become ``Result/Status refused``."""
    name = etree.QName(op).localname
    handler = OPERATIONS.get(name)
    if handler is None:
        return OpResult(
            status="refused", code="COUNTER-UNKNOWN-OP", detail=f"operation {name} is not implemented"
        )
    try:
        return await handler(core, core.ctx(op_date, cause), op)
    except Refusal as r:
        return OpResult(status="refused", code=r.code, detail=r.detail)
