"""Inbound messages (contract section 5) and the answers to the SUT's own sync requests.

Why synchronous handlers: each runs inside the transaction that also marks the MessageId as seen, so a
message is applied exactly once, or (on any error) not at all and refused with nothing recorded. Handlers
only change records and enqueue messages; nothing here waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from lxml import etree

from conformance.codec import (
    address_el,
    address_from,
    entry_from,
    honseki_from,
    household_el,
    jdate_el,
    jdate_from,
    koseki_person_el,
    name_el,
    name_from,
    person_identity_el,
    resident_el,
    resident_history_el,
    result_el,
)
from conformance.envelope import Header, J, new_id
from conformance.model import Honseki, JDate, Name
from conformance.xmlsafe import q
from simulators.reference import defects
from simulators.reference.core import (
    CardEvent,
    Core,
    Ctx,
    address_text,
    change_el,
    child,
    date_text,
    doc_member,
    el_text,
    fill,
    jd,
    name_text,
    need,
    same_date,
    same_name,
)
from simulators.reference.outbox import OutMessage
from simulators.reference.store import (
    DELETED,
    MOVING_OUT,
    Change,
    ConfirmedMove,
    Person,
    PlannedMove,
    from_json,
    to_json,
)

log = logging.getLogger("simulators.reference.inbound")

Handler = Callable[[Core, Header, etree._Element], etree._Element | None]


def _ctx(core: Core, h: Header) -> Ctx:
    return Ctx(op_date=h.business_date, now=core.now(h.sent_at))


# --- requests the SUT starts and whose answers arrive here (F21, F23, F24) --------------------------------


def start_number_request(
    core: Core, ctx: Ctx, p: Person, purpose: str, extra: dict[str, Any] | None = None
) -> str:
    """NumberGenerationRequest (8→3): 新規指定 for a new 住民票コード, 変更 for a 個人番号 change."""
    req = new_id("G")
    body = J.NumberGenerationRequest(
        J.RequestNo(req), J.Purpose(purpose), person_identity_el("Identity", p.r)
    )
    core.emit(ctx, "NumberGenerationRequest", body)
    core.store.request_put(
        req, "number", p.rid, {"purpose": purpose, "op_date": ctx.op_date.isoformat(), **(extra or {})}
    )
    core.request_done.setdefault(req, asyncio.Event())
    return req


def start_code_change(
    core: Core, ctx: Ctx, p: Person, origin: str | None = None, tried: tuple[str, ...] = ()
) -> str:
    """ResidentCodeChange (8→3) with a new valid 住民票コード; returns the originating request number."""
    new = core.new_juminhyo_code(tried)
    req = new_id("J")
    origin = origin or req
    change = Change(code="M04", event_date=jd(ctx.op_date), notified=ctx.op_date, seq=p.seq + 1)
    body = J.ResidentCodeChange(
        J.RequestNo(req), J.OldJuminhyoCode(p.code), J.NewJuminhyoCode(new), change_el("Change", change)
    )
    core.emit(ctx, "ResidentCodeChange", body)
    core.store.request_put(
        req,
        "code",
        p.rid,
        {
            "origin": origin,
            "old": p.code,
            "new": new,
            "tried": [*tried, new],
            "op_date": ctx.op_date.isoformat(),
        },
    )
    core.request_done.setdefault(origin, asyncio.Event())
    return origin


def _done(core: Core, request_no: str) -> None:
    core.request_done.setdefault(request_no, asyncio.Event()).set()


def on_number(core: Core, h: Header, body: etree._Element) -> None:
    """NumberToDesignate (F23 M11 / F21 M03): designate, consequences, NoticeDestination (F25), card 廃止."""
    req = el_text(body, "RequestNo") or ""
    jcode = el_text(body, "JuminhyoCode") or ""
    number = el_text(body, "MyNumber") or ""
    request = core.store.request_get(req)
    p = core.store.by_code(jcode)
    if p is None and request is not None and request[1]:
        p = core.store.by_rid(request[1])
    if p is None or p.status == DELETED:
        log.warning("NumberToDesignate %s for unknown or deleted 住民票コード %s", req, jcode)
        return
    ctx = _ctx(core, h)
    if request is not None and request[3].get("op_date"):
        ctx = Ctx(op_date=date.fromisoformat(request[3]["op_date"]), now=ctx.now)
    if p.r.my_number != number:
        code = "M11" if p.r.my_number is None else "M03"
        card_no = p.r.card_no if code == "M03" else None
        after = p.with_r(
            my_number=number,
            card_no=None if card_no else p.r.card_no,
            card_serial=None if card_no else p.r.card_serial,
        )
        after = core.apply_change(ctx, p, after, code, jd(ctx.op_date), notified=ctx.op_date)
        if not defects.skip(core.cfg, "skip-notice-destination"):
            nd = J.NoticeDestination(J.RequestNo(new_id("D")), J.JuminhyoCode(after.code), J.MyNumber(number))
            name_el("Name", after.r.name, nd)
            jdate_el("BirthDate", after.r.birth_date, nd)
            address_el("Destination", after.r.address, nd)
            nd.append(J.HeadName(after.r.head_name))
            core.emit(ctx, "NoticeDestination", nd)
        if card_no and not defects.skip(core.cfg, "mynumber-change-no-card-revoke"):
            core.emit(
                ctx,
                "CardStatusChange",
                J.CardStatusChange(
                    J.ChangeNo(new_id("S")),
                    J.CardNo(card_no),
                    J.JuminhyoCode(after.code),
                    J.NewStatus("廃止"),
                    J.ReasonText("個人番号の変更"),
                ),
            )
    if request is not None:
        core.store.request_set(req, "done", {**request[3], "my_number_set": True})
    _done(core, req)


def on_code_result(core: Core, h: Header, body: etree._Element) -> None:
    """ResidentCodeChangeResult (F24): accepted → M04 with PreviousJuminhyoCode; refused → another code."""
    req = el_text(body, "RequestNo") or ""
    request = core.store.request_get(req)
    if request is None or request[0] != "code" or request[2] != "waiting":
        log.warning("ResidentCodeChangeResult %s answers no waiting request", req)
        return
    _, rid, _, data = request
    origin = str(data.get("origin") or req)
    p = core.store.by_rid(rid or 0)
    ctx = Ctx(op_date=date.fromisoformat(data["op_date"]), now=core.now(h.sent_at))
    status = el_text(body, "Result/Status")
    if p is None:
        core.store.request_set(req, "failed", data)
        return
    if status == "accepted":
        new = el_text(body, "NewJuminhyoCode") or data["new"]
        old = p.code
        core.apply_change(
            ctx,
            p,
            p.with_r(juminhyo_code=new),
            "M04",
            jd(ctx.op_date),
            notified=ctx.op_date,
            previous_code=old,
        )
        core.store.request_set(req, "done", data)
        if origin != req:
            o = core.store.request_get(origin)
            core.store.request_set(origin, "done", {**(o[3] if o else {}), "final": req})
        _done(core, origin)
        return
    tried = tuple(data.get("tried", []))
    core.store.request_set(req, "refused", data)
    if len(tried) < core.cfg.code_change_attempts and not defects.on(core.cfg, "code-change-no-retry"):
        start_code_change(core, ctx, p, origin=origin, tried=tried)
        return
    o = core.store.request_get(origin)
    core.store.request_set(origin, "failed", o[3] if o else data)
    _done(core, origin)


# --- F08, F09, F13: moving between municipalities ---------------------------------------------------------


def move_out_cert_info(
    core: Core, persons: list[Person], to_lg: str, request_no: str | None
) -> etree._Element:
    """MoveOutCertInfo (8→1): the 転出証明書情報 of persons who notified a move to ``to_lg``."""
    first = persons[0]
    planned = first.planned
    assert planned is not None
    body: etree._Element = J.MoveOutCertInfo(J.CertificateNo(new_id("C")))
    if request_no:
        body.append(J.RequestNo(request_no))
    body.append(J.MoveOutLgCode(core.lg))
    body.append(J.MoveInLgCode(to_lg))
    jdate_el("PlannedMoveOutDate", planned.when, body)
    body.append(J.NotifiedDate(planned.notified.isoformat()))
    dest = (
        planned.address
        if planned.address is not None and not planned.address.is_overseas
        else core.municipality_address(to_lg)
    )
    address_el("PlannedAddress", dest, body)
    for p in persons:
        m = J.Member(resident_el("Resident", p.r))
        if p.r.card_no:
            m.append(J.CardNo(p.r.card_no))
        body.append(m)
    return body


def on_moveout_request(core: Core, h: Header, body: etree._Element) -> None:
    """MoveOutCertRequest (F08): answer for subjects 転出予定 to the requesting municipality; else nothing."""
    move_in_lg = el_text(body, "MoveInLgCode") or h.sender_lg
    any_dest = defects.on(core.cfg, "moc-info-any-destination")
    persons: list[Person] = []
    for s in body.iterfind(q("Subject")):
        p = core.find_subject(s)
        if p is None or p.status != MOVING_OUT or p.planned is None:
            continue
        if p.planned.to_lg == move_in_lg or (any_dest and p.planned.to_lg):
            persons.append(p)
    if not persons:
        return
    no_corr = defects.on(core.cfg, "moc-info-no-correlation")
    info = move_out_cert_info(core, persons, move_in_lg, None if no_corr else el_text(body, "RequestNo"))
    core.emit(
        _ctx(core, h),
        "MoveOutCertInfo",
        info,
        to_lg=move_in_lg,
        correlation_id=None if no_corr else h.message_id,
    )


def on_moveout_info(core: Core, h: Header, body: etree._Element) -> None:
    """MoveOutCertInfo (F09): kept for 特例転入."""
    core.store.cert_put(
        el_text(body, "CertificateNo") or new_id("C"),
        el_text(body, "MoveOutLgCode") or "",
        etree.tostring(body, encoding="unicode"),
    )


def on_movein_notice(core: Core, h: Header, body: etree._Element) -> None:
    """MoveInNotice (F13 as moving-out municipality): confirmed date/address beside the planned ones; 消除."""
    move_in = fill(jdate_from(need(body, "MoveInDate")))
    addr = address_from(need(body, "NewAddress"))
    lg = el_text(body, "MoveInLgCode") or h.sender_lg
    notice_no = el_text(body, "NoticeNo") or ""
    for pe in body.iterfind(q("Person")):
        p = core.store.by_code(el_text(pe, "JuminhyoCode") or "")
        if p is None or p.planned is None or p.status not in (MOVING_OUT, DELETED):
            continue
        # 転入通知 received twice: the latest wins (the confirmed move is replaced, the planned one kept)
        if p.confirmed is not None and defects.on(core.cfg, "movein-notice-first-wins"):
            continue
        confirmed = ConfirmedMove(when=move_in, address=addr, lg_code=lg, notice_no=notice_no)
        after = replace(p, status=DELETED, confirmed=confirmed)
        if defects.on(core.cfg, "movein-overwrites-planned"):
            after = replace(
                after, planned=PlannedMove(to_lg=lg, when=move_in, address=addr, notified=p.planned.notified)
            )
        change = Change(code="D05", event_date=move_in, notified=h.business_date, seq=max(p.seq, 1))
        core.store.save(replace(after, last_change=change))


# --- F12, F14: 戸籍・附票 ---------------------------------------------------------------------------------


def koseki_find(core: Core, jcode: str | None, name: Name, birth: JDate) -> tuple[int, dict[str, Any]] | None:
    for kid, code, data in reversed(core.store.koseki_all()):
        if jcode and code == jcode:
            return kid, data
        if same_name(from_json(Name, data["name"]), name) and same_date(
            from_json(JDate, data["birth"]), birth
        ):
            return kid, data
    return None


def koseki_record(
    core: Core,
    jcode: str | None,
    name: Name,
    birth: JDate,
    sex: str | None,
    honseki: Honseki | None,
    address_lg: str,
    entry_kind: str,
    *,
    dead: bool,
    old_name: Name | None = None,
) -> None:
    """Keep a family-register entry made here as 本籍地 (used when a FuhyoNotice arrives, F12)."""
    found = koseki_find(core, jcode, old_name or name, birth)
    data = {
        "name": to_json(name),
        "birth": to_json(birth),
        "sex": sex,
        "honseki": to_json(honseki),
        "address_lg": address_lg,
        "entry_kind": entry_kind,
        "dead": dead,
    }
    if found is not None:
        data = {**found[1], **{k: v for k, v in data.items() if v is not None}}
    core.store.koseki_put(
        jcode or (found[1].get("jcode") if found else None),
        {**data, "jcode": jcode},
        found[0] if found else None,
    )


def on_fuhyo(core: Core, h: Header, body: etree._Element) -> None:
    """FuhyoNotice (F12): compare 氏名・生年月日・性別 with the koseki; a difference → FuhyoMismatchNotice."""
    person = child(body, "Person")
    assert person is not None
    if el_text(person, "Honseki/LgCode") != core.lg:
        return
    name = name_from(need(person, "Name"))
    birth = jdate_from(need(person, "BirthDate"))
    sex = el_text(person, "Sex")
    jcode = el_text(person, "JuminhyoCode")
    found = koseki_find(core, jcode, name, birth)
    mismatches: list[tuple[str, str, str]] = []
    if found is None:
        mismatches.append(("戸籍", name_text(name) or "（氏名なし）", "該当する戸籍の記載なし"))
        k_name, k_birth, k_sex = name, birth, sex
        k_honseki = child(person, "Honseki")
    else:
        data = found[1]
        k_name, k_birth = from_json(Name, data["name"]), from_json(JDate, data["birth"])
        k_sex = data.get("sex")
        k_honseki = None
        if not same_name(k_name, name):
            mismatches.append(("氏名", name_text(name) or "（なし）", name_text(k_name) or "（なし）"))
        if not same_date(k_birth, birth):
            mismatches.append(("生年月日", date_text(birth) or "（なし）", date_text(k_birth) or "（なし）"))
        if sex and k_sex and sex != k_sex:
            mismatches.append(("性別", sex, str(k_sex)))
        core.store.koseki_put(
            jcode or data.get("jcode"),
            {
                **data,
                "fuhyo_lg": el_text(body, "AddressLgCode"),
                "fuhyo_address": address_text(address_from(need(body, "Address"))),
            },
            found[0],
        )
    if not mismatches or defects.skip(core.cfg, "fuhyo-no-mismatch-notice"):
        return
    address_lg = el_text(body, "AddressLgCode") or h.sender_lg
    if found is not None and found[1].get("honseki"):
        honseki = from_json(Honseki, found[1]["honseki"])
        kp = koseki_person_el("Person", juminhyo_code=jcode, name=k_name, birth=k_birth, sex=k_sex,
                              honseki=honseki)
    else:
        kp = J.Person()
        for c in person:
            kp.append(etree.fromstring(etree.tostring(c)))
        if k_honseki is None:
            return
    out = J.FuhyoMismatchNotice(J.NoticeNo(new_id("F")), J.RefNoticeNo(el_text(body, "NoticeNo") or "F"), kp)
    for label, notified, koseki in mismatches:
        out.append(J.Mismatch(J.Item(label), J.InFuhyoNotice(notified[:200]), J.InKoseki(koseki[:200])))
    core.emit(_ctx(core, h), "FuhyoMismatchNotice", out, to_lg=address_lg)


def on_koseki_notice(core: Core, h: Header, body: etree._Element) -> None:
    """KosekiEntryNotice (F14 as address municipality): amend (M08) or 死亡 (D03), consequences."""
    p = core.find_subject(child(body, "Person"))
    if p is None or p.status == DELETED:
        return
    ctx = _ctx(core, h)
    event = fill(jdate_from(need(body, "EntryDate")))
    if el_text(body, "EntryKind") == "死亡":
        core.apply_change(ctx, p, replace(p, status=DELETED), "D03", event, notified=h.business_date)
        return
    changes: dict[str, Any] = {}
    nn, nh = child(body, "NewName"), child(body, "NewHonseki")
    if nn is not None and name_from(nn) != p.r.name:
        changes["name"] = name_from(nn)
    if nh is not None and honseki_from(nh) != p.r.honseki:
        changes["honseki"] = honseki_from(nh)
    if changes:
        core.apply_change(ctx, p, p.with_r(**changes), "M08", event, notified=h.business_date)


# --- F16, F18 ---------------------------------------------------------------------------------------------


def on_individual_entry(core: Core, h: Header, body: etree._Element) -> None:
    """IndividualEntryNotice (F16): record the entries (M10); ResidentTransfer to each matching system."""
    p = core.find_subject(child(body, "Subject"))
    if p is None or p.status == DELETED:
        return
    new = [entry_from(e) for e in body.iterfind(q("Entry"))]
    kinds = [e.kind for e in new]
    keep = tuple(e for e in p.r.entries if e.kind not in kinds)
    core.apply_change(
        _ctx(core, h),
        p,
        p.with_r(entries=(*keep, *new)),
        "M10",
        jd(h.business_date),
        notified=h.business_date,
        entry_kinds=kinds,
    )


def on_wide_area(core: Core, h: Header, body: etree._Element) -> None:
    """WideAreaCopyRequest (F18): WideAreaCopyInfo to the issuing municipality; never 本籍・筆頭者."""
    issuing = el_text(body, "IssuingLgCode") or h.sender_lg
    req = el_text(body, "RequestNo") or new_id("W")
    p = core.find_subject(child(body, "Subject"))
    out = J.WideAreaCopyInfo(J.RequestNo(req))
    if p is None:
        out.append(result_el("not-found", "WIDE-NOT-FOUND", "該当者なし"))
    elif p.status == DELETED:
        out.append(result_el("refused", "WIDE-DELETED", "住民票は消除されています"))
    else:
        out.append(result_el("accepted"))
        rel = el_text(body, "Options/Relationship") == "true"
        want_mn = el_text(body, "Options/IncludeMyNumber") == "true"
        want_code = el_text(body, "Options/IncludeJuminhyoCode") == "true"
        members = [p]
        if el_text(body, "Scope") == "世帯全員":
            members = [m for m in core.store.household(p.r.household_no) if m.status != DELETED]
        leak = defects.on(core.cfg, "wide-area-leaks-honseki")
        for m in members:
            # the wide-area set: never 本籍・筆頭者 (the defect leaks it), no 前住所
            out.append(doc_member(m, my_number=want_mn, jcode=want_code, household=rel, honseki=leak,
                                  previous=False))
    core.emit(_ctx(core, h), "WideAreaCopyInfo", out, to_lg=issuing, correlation_id=h.message_id)


# --- F11 法務省通知 ---------------------------------------------------------------------------------------


def on_moj(core: Core, h: Header, body: etree._Element) -> None:
    """MojNotice (F11): 特別永住者 held; others amend (M09) or delete (D06/D03); a before/after slip kept."""
    notice_no = el_text(body, "NoticeNo") or new_id("N")
    kind = el_text(body, "Kind") or ""
    category = el_text(body, "Category") or ""
    person = child(body, "Person")
    changes = child(body, "Changes")
    card = el_text(person, "ResidenceCardNo")
    p = core.store.by_residence_card(card) if card else None
    if p is None:
        p = core.find_subject(person)
    effective = date.fromisoformat(el_text(body, "EffectiveDate") or h.business_date.isoformat())
    data: dict[str, Any] = {"kind": kind, "category": category, "rid": p.rid if p else None, "items": []}
    f = p.r.foreign if p is not None else None
    proposed: list[list[str]] = []
    new_foreign = f
    new_name = p.r.name if p is not None else None
    if changes is not None:
        n = child(changes, "Name")
        if n is not None:
            nn = name_from(n)
            proposed.append(["氏名", name_text(new_name) if new_name else "", name_text(nn)])
            new_name = nn
        for tag, label, attr in (
            ("Nationality", "国籍・地域", "nationality"),
            ("ResidenceStatus", "在留資格", "residence_status"),
            ("PeriodOfStay", "在留期間", "period_of_stay"),
            ("PeriodEnd", "在留期間の満了の日", "period_end"),
            ("NewResidenceCardNo", "在留カード等の番号", "residence_card_no"),
        ):
            v = el_text(changes, tag)
            if v is None:
                continue
            old = getattr(f, attr) if f is not None else None
            proposed.append([label, "" if old is None else str(old), v])
            if new_foreign is not None:
                value: Any = date.fromisoformat(v) if attr == "period_end" else v
                new_foreign = replace(new_foreign, **{attr: value})
    if kind in ("出国", "在留期間満了", "死亡"):
        proposed.append(["状態", p.status if p else "", DELETED])
    data["items"] = proposed
    if category == "特別永住者" and not defects.on(core.cfg, "moj-apply-special-permanent"):
        core.store.slip_put(notice_no, "保留（特別永住者）", data)
        return
    if p is None or p.status == DELETED:
        core.store.slip_put(notice_no, "該当者なし", data)
        return
    ctx = _ctx(core, h)
    event = jd(effective)
    if kind in ("出国", "在留期間満了"):
        core.apply_change(ctx, p, replace(p, status=DELETED), "D06", event, notified=h.business_date)
    elif kind == "死亡":
        core.apply_change(ctx, p, replace(p, status=DELETED), "D03", event, notified=h.business_date)
    else:
        after = p.with_r(foreign=new_foreign, name=new_name or p.r.name)
        if after.r != p.r:
            core.apply_change(ctx, p, after, "M09", event, notified=h.business_date)
    core.store.slip_put(notice_no, "適用", data)


# --- F30, F27/F05 -----------------------------------------------------------------------------------------


def on_eapplication(core: Core, h: Header, body: etree._Element) -> None:
    """EApplication (F30): kept for EApplicationProcessOp."""
    core.store.eapp_put(
        el_text(body, "ApplicationId") or new_id("E"), etree.tostring(body, encoding="unicode")
    )


def on_certificate_data(core: Core, h: Header, body: etree._Element) -> etree._Element:
    """CertificateDataRequest (F27, F05; sync, yellow 19): by 識別番号; never 個人番号 or 住民票コード."""
    req = el_text(body, "RequestNo") or new_id("Q")
    p = core.store.by_idno(el_text(body, "IdentificationNo") or "")
    out: etree._Element = J.CertificateData(J.RequestNo(req))
    if p is None:
        out.append(result_el("not-found", "CERT-NOT-FOUND", "識別番号に該当する住民なし"))
        return out
    if p.status == DELETED and not defects.on(core.cfg, "certdata-serves-deleted"):
        out.append(result_el("refused", "CERT-DELETED", "住民票は消除されています"))
        return out
    out.append(result_el("accepted"))
    out.append(J.IssuerLgCode(core.lg))
    rel = el_text(body, "Request/Options/Relationship") == "true"
    honseki = el_text(body, "Request/Options/Honseki") == "true" or defects.on(
        core.cfg, "kiosk-unasked-honseki"
    )
    members = [p]
    if el_text(body, "Request/Scope") == "世帯全員":
        members = [m for m in core.store.household(p.r.household_no) if m.status != DELETED]
    for m in members:
        r = m.r
        me = J.Member()
        name_el("Name", r.name, me)
        jdate_el("BirthDate", r.birth_date, me)
        me.append(J.Sex(r.sex))
        address_el("Address", r.address, me)
        if rel:
            household_el("Household", r.household, r.relationship, me)
        resident_history_el(r, me, include_honseki=honseki)
        if defects.on(core.cfg, "leak-mynumber-certdata") and r.my_number:
            me.append(J.Remarks(f"個人番号 {r.my_number}"))
        out.append(me)
    return out


#: inbound MessageType → handler (contract section 5); CertificateDataRequest answers in the response
INBOUND: dict[str, Handler] = {
    "MoveOutCertRequest": on_moveout_request,
    "MoveOutCertInfo": on_moveout_info,
    "MoveInNotice": on_movein_notice,
    "FuhyoNotice": on_fuhyo,
    "KosekiEntryNotice": on_koseki_notice,
    "IndividualEntryNotice": on_individual_entry,
    "WideAreaCopyRequest": on_wide_area,
    "NumberToDesignate": on_number,
    "ResidentCodeChangeResult": on_code_result,
    "MojNotice": on_moj,
    "EApplication": on_eapplication,
    "CertificateDataRequest": on_certificate_data,
}
#: inbound types answered synchronously (200 + envelope), and the answer's type
SYNC_ANSWERS: dict[str, str] = {"CertificateDataRequest": "CertificateData"}


# --- answers to the SUT's own sync requests ---------------------------------------------------------------


def on_answer(core: Core, msg: OutMessage, answer: etree._Element) -> None:
    """Apply what a sync answer changes (called by the outbox whether or not the operation still waits)."""
    if msg.message_type == "CardIssuanceRequest" and etree.QName(answer).localname == "CardIssuanceResult":
        if el_text(answer, "Result/Status") != "accepted" or not el_text(answer, "CardNo"):
            return
        p = core.store.by_code(el_text(msg.body, "Identity/JuminhyoCode") or "")
        if p is None:
            return
        ctx = Ctx(op_date=msg.header.business_date, now=core.now(msg.header.sent_at))
        valid = el_text(answer, "ValidUntil")
        with core.store.tx():
            p = core.store.save(
                replace(
                    p.with_r(card_no=el_text(answer, "CardNo"), card_serial=el_text(answer, "CertSerial")),
                    card_valid_until=date.fromisoformat(valid) if valid else None,
                )
            )
            if not defects.skip(core.cfg, "card-issue-no-cardinfo"):
                handover = el_text(msg.body, "HandoverDate")
                core.card_info(
                    ctx,
                    p,
                    CardEvent("交付", date.fromisoformat(handover) if handover else ctx.op_date, p.r.address),
                )
    elif msg.message_type == "MunicipalNotice":
        status = el_text(answer, "Result/Status")
        if status not in ("accepted", None):
            log.warning(
                "MunicipalNotice %s finally answered %s %s",
                msg.message_id,
                status,
                el_text(answer, "Result/Code"),
            )
