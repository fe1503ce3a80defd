"""Counter operations that move people: 住民異動届 (F01), 特例転入 (F09), 電子申請の転出届 (F30).

Why these together: they share the domain rules of a move (届出期間 of 住基法22–25条, the 転出証明書情報,
the card's continued use of 番号法17条2項 and 番号法施行令) and each ends in the consequences of
:meth:`Core.apply_change`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta

from lxml import etree

from conformance.codec import (
    address_el,
    address_from,
    jdate_el,
    jdate_from,
    name_el,
    name_from,
    resident_from,
)
from conformance.envelope import J, new_id
from conformance.model import Address, JDate, Name, Resident
from conformance.xmlsafe import parse, q
from simulators.clock import JST
from simulators.reference import defects
from simulators.reference.core import (
    CardEvent,
    Core,
    Ctx,
    Refusal,
    child,
    doc_member,
    el_text,
    fill,
    item,
    jd,
    name_text,
    need,
    status_after_moveout,
    western,
)
from simulators.reference.inbound import (
    move_out_cert_info,
    start_number_request,
)
from simulators.reference.opbase import (
    CONTINUED_USE_DAYS,
    LATE_DAYS,
    CounterPerson,
    OpResult,
    _need_here,
    _need_identity,
    _opt_address,
    _record_new,
    counter_person,
    receipt,
    wait_requests,
)
from simulators.reference.store import DELETED, RESIDENT, Person, PlannedMove

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


def _late(core: Core, ctx: Ctx, event: JDate, dropped: bool) -> bool:
    """A notification made more than 14 days after the event (住基法22条 転入, 23条 転居, 24条 転出 made after
    the move, 25条 世帯変更, 30条の46 国外転入 of a foreign resident): the day of the event is not counted
    (民法140条), so the 14th day after it is still in time. ``dropped``: a defect leaves the item out."""
    d = western(event)
    if d is None or dropped:
        return False
    if defects.on(core.cfg, "late-off-by-one"):
        return (ctx.op_date - d).days >= LATE_DAYS
    return (ctx.op_date - d).days > LATE_DAYS


def _late_items(late: bool) -> list[etree._Element]:
    """The receipt's 届出期間経過 item (staff then follow the 過料 procedure of 住基法52条2項)."""
    return [item("届出期間経過", f"異動日から{LATE_DAYS}日を経過した届出")] if late else []


def _noted(p: Person, late: bool) -> Person:
    return replace(p, notes=(*p.notes, "届出期間経過")) if late else p


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
    late = _late(core, ctx, event, defects.on(core.cfg, "movein-no-late-item"))
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
    items = _late_items(late)
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
    late = kind == "国外転入" and _late(core, ctx, event, defects.on(core.cfg, "abroad-movein-no-late-item"))
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
    items = _late_items(late)
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
    # a 転出届 is made beforehand (住基法24条); one made after the move is late past its 14th day
    late = _late(core, ctx, event, defects.on(core.cfg, "moveout-no-late-item"))
    done = []
    with core.store.tx():
        for p in targets:
            after = _noted(replace(p, status=status_after_moveout(core.cfg), planned=planned), late)
            done.append(core.apply_change(ctx, p, after, reason, event, notified=ctx.op_date))
    items = (core.planned_items(done[0]) if done else []) + _late_items(late)
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
    late = _late(core, ctx, event, defects.on(core.cfg, "tenkyo-no-late-item"))  # 住基法23条
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
            done.append(core.apply_change(ctx, p, _noted(after, late), "M01", event, notified=ctx.op_date))
    return OpResult(documents=[receipt(core, ctx, "転居", done, _late_items(late))])


def _household_change(
    core: Core, ctx: Ctx, event: JDate, persons: list[CounterPerson], head_code: str | None
) -> OpResult:
    if not head_code:
        raise Refusal("MOVE-HEAD", "世帯変更 needs HeadJuminhyoCode (the head after the change)")
    head = core.person(head_code, prefix="MOVE")
    movers = [core.person(cp.jcode, prefix="MOVE") for cp in persons]
    rels = {p.rid: cp.relationship for p, cp in zip(movers, persons, strict=True)}
    late = _late(core, ctx, event, defects.on(core.cfg, "household-change-no-late-item"))  # 住基法25条
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
            done.append(core.apply_change(ctx, p, _noted(after, late), "M02", event, notified=ctx.op_date))
    return OpResult(documents=[receipt(core, ctx, "世帯変更", done, _late_items(late))])


def _death(core: Core, ctx: Ctx, event: JDate, persons: list[CounterPerson]) -> OpResult:
    targets = [core.person(cp.jcode, prefix="MOVE") for cp in persons]
    done = []
    with core.store.tx():
        for p in targets:
            done.append(
                core.apply_change(ctx, p, replace(p, status=DELETED), "D03", event, notified=ctx.op_date)
            )
    return OpResult(documents=[receipt(core, ctx, "死亡", done)])



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


def continued_use(core: Core, ctx: Ctx, p: Person, presented: str, move_in: JDate, addr: Address) -> CardEvent:
    """転入継続利用 of a card holder moving in (番号法17条2項, 番号法施行令).

    The card presented at the 転入届 is processed at once (no deadline). A member's card that was not presented
    keeps its continued use open for 90 days counted from the 転入届 (not from the move-in date): the event
    then carries that deadline, after which the card lapses.
    """
    if p.r.card_no == presented:
        return CardEvent("転入継続利用", ctx.op_date, addr)
    start = ctx.op_date
    if defects.on(core.cfg, "card-continued-use-from-move-in"):
        start = western(move_in) or start
    return CardEvent("転入継続利用", ctx.op_date, addr, start + timedelta(days=CONTINUED_USE_DAYS))


async def special_movein_confirm(core: Core, ctx: Ctx, op: etree._Element) -> OpResult:
    cert_no = el_text(op, "CertificateNo") or ""
    card_no = el_text(op, "CardNo") or ""
    move_in = fill(jdate_from(need(op, "MoveInDate")))
    addr = _need_here(core, _opt_address(op, "NewAddress"), "SMI-ADDRESS", "NewAddress")
    codes = [e.text or "" for e in op.iterfind(q("JuminhyoCode"))]
    found = core.store.cert_get(cert_no)
    if found is None:
        if defects.on(core.cfg, "smi-no-cert-accepted"):
            return OpResult(documents=[receipt(core, ctx, "特例転入", [], title="住民異動届受付票（特例転入）")])
        # the 転出証明書情報 is late or never comes (住基法24条の2第2項): nothing is recorded; staff try again
        # when it arrives, or the resident brings a paper 転出証明書 (国内転入)
        core.missed_certs.add(cert_no)
        raise Refusal("SMI-NO-CERT", f"no 転出証明書情報 {cert_no} has been received")
    if cert_no in core.missed_certs and defects.on(core.cfg, "smi-late-cert-refused"):
        raise Refusal("SMI-CERT-LATE", f"転出証明書情報 {cert_no} arrived after the first attempt")
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
            core.card_info(ctx, p, continued_use(core, ctx, p, card_no, move_in, addr))
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


# --- F30 電子申請 ----------------------------------------------------------------------------------------


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
    # the window is the resident's (SubmittedAt), not the day the application reached the municipality: it
    # arrives about two hours later, or the next business day when made out of hours
    window_day = ctx.op_date if defects.on(core.cfg, "eapp-window-by-arrival") else sub_day
    planned_day = date.fromisoformat(el_text(app, "PlannedMoveOutDate") or "")
    if not (
        planned_day - timedelta(days=30) <= window_day <= planned_day + timedelta(days=10)
    ) and not defects.on(core.cfg, "eapp-no-window-check"):
        raise Refusal(
            "EAPP-WINDOW",
            f"submitted {window_day.isoformat()}: outside 30 days before to 10 days after "
            f"the planned move-out ({planned_day.isoformat()})",
        )
    dest = address_from(need(app, "Destination"))
    if dest.is_overseas or dest.lg_code == core.lg:
        raise Refusal("EAPP-DESTINATION", "an online 転出届 is for a move to another municipality in Japan")
    people = [child(app, "Applicant"), *app.iterfind(q("Member"))]
    here = address_from(need(app, "CurrentAddress"))
    persons: list[Person] = []
    for a in people:
        p = core.find_subject(a, at=here)
        if p is None or p.status != RESIDENT:
            n_el = child(a, "Name")
            who = name_text(name_from(n_el)) if n_el is not None else "?"
            raise Refusal("EAPP-UNKNOWN", f"{who}: no such resident here")
        persons.append(p)
    # the online 転出届 is signed with the applicant's card (署名用電子証明書, 住基法24条の2・公的個人認証法):
    # an applicant without a card cannot have signed it
    if not persons[0].r.card_no and not defects.on(core.cfg, "eapp-no-card-check"):
        raise Refusal("EAPP-NO-CARD", f"{persons[0].code}: the applicant holds no card to sign an online 転出届")
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


