"""The stub SUT's counter operations and inbound handlers (contract §6–§7), string in, string out.

Why here: they are what ``juki-harness load`` drives (load/plan.py ``REQUIRED``) and what its sampled
conformance scenarios need (fixtures by 職権記載, F01, F03, F07, F08, F20); each sends exactly the messages the
contract requires, in its order, and prints the documents the scenarios read. The operations the load test
does not drive (KosekiEntry, ResidentCodeChangeOp, ImmigrationSlipsOp) are in :mod:`simulators.stub.registers`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from conformance.residents import municipality_for
from simulators.clock import JST
from simulators.stub.core import OPERATIONS, StubSut
from simulators.stub.record import (
    DELETED,
    MOVING_OUT,
    REASONS,
    RESIDENT,
    Answer,
    Ctx,
    Person,
    Refusal,
    address_text,
    all_inner,
    date_text,
    document,
    el,
    esc,
    fill_jdate,
    inner,
    item,
    squash,
    text,
    western,
)

LATE_DAYS = 14
_PERSON = re.compile(r"<Person(?:\s[^>]*)?>(.*?)</Person>", re.S)
_MEMBER = re.compile(r"<Member(?:\s[^>]*)?>(.*?)</Member>", re.S)


def _need(body: str, tag: str, code: str) -> str:
    v = inner(body, tag)
    if v is None:
        raise Refusal(code, f"{tag} is required")
    return v


def _late(ctx: Ctx, event: str) -> list[str]:
    d = western(event)
    if d is None or (date.fromisoformat(ctx.day) - d).days <= LATE_DAYS:
        return []
    return [item("届出期間経過", f"異動日から{LATE_DAYS}日を経過した届出")]


def _planned_items(p: Person) -> list[str]:
    if p.planned is None:
        return []
    to_lg, when, addr, _ = p.planned
    return [item("転出先", address_text(addr) if addr else (to_lg or "国外")), item("転出予定年月日", date_text(when))]


# --- F01 住民異動届 / F02 職権記載 ---------------------------------------------------------------------------


async def moving_notification(s: StubSut, ctx: Ctx, op: str) -> Answer:
    kind = text(op, "Kind") or ""
    event = fill_jdate(_need(op, "EventDate", "MOVE-EVENT"))
    persons = _PERSON.findall(op)
    if not persons:
        raise Refusal("MOVE-PERSON", "no Person")
    if kind == "国内転入":
        return await _move_in(s, ctx, op, event, persons)
    if kind in ("国外転入", "出生"):
        return await _new_persons(s, ctx, op, kind, event, persons)
    if kind in ("国内転出", "国外転出"):
        return await _move_out(s, ctx, op, kind, event, persons)
    if kind == "転居":
        return await _tenkyo(s, ctx, op, event, persons)
    if kind == "世帯変更":
        return await _household_change(s, ctx, op, event, persons)
    if kind == "死亡":
        done = []
        for raw in persons:
            p = s.alive(text(raw, "JuminhyoCode"), "MOVE")
            after = replace(p, status=DELETED)
            await s.change(ctx, p, after, "D03", event, ctx.day)
            done.append(after)
        return Answer(documents=s.receipt(ctx, "住民異動届受付票（死亡）", done, []))
    raise Refusal("COUNTER-UNKNOWN-OP", f"the stub SUT does not take a {kind} notification")


async def _move_in(s: StubSut, ctx: Ctx, op: str, event: str, persons: list[str]) -> Answer:
    from_lg = text(op, "FromLgCode")
    if not from_lg or from_lg == s.lg:
        raise Refusal("MOVE-FROM", "国内転入 needs FromLgCode of another municipality (転出証明書)")
    addr = s.here(inner(op, "NewAddress"), "MOVE-ADDRESS", "NewAddress")
    for raw in persons:
        if not text(raw, "JuminhyoCode") or not text(raw, "MyNumber"):
            raise Refusal("MOVE-IDS", "国内転入: each person carries the 住民票コード and 個人番号 of the 転出証明書")
        s.recordable(text(raw, "JuminhyoCode"))
    head_code = text(op, "HeadJuminhyoCode")
    head = s.persons.get(head_code or "")
    if head is not None and head.status != DELETED:
        hh, head_name = head.hh, head.head
    else:
        head = None
        named = next((r for r in persons if text(r, "Relationship") == "世帯主"), persons[0])
        hh, head_name = s.new_household(), _name_text(inner(named, "Name") or "")
    recorded = []
    for i, raw in enumerate(persons):
        rel = inner(raw, "Relationship") or ("世帯主" if head is None and i == 0 else "同居人")
        p = s.from_counter(raw, addr=addr, event=event, hh=(hh, head_name, rel))
        await s.change(ctx, None, p, "A01", event, ctx.day)
        recorded.append(p)
    cert = text(op, "MoveOutCertificateNo")
    await s.emit(ctx, "MoveInNotice", _move_in_notice(s, ctx, recorded, from_lg, event, addr, cert),
                 recorded[0].code, to_lg=from_lg)
    items = _late(ctx, event) + s.idno_items(recorded)
    return Answer(documents=s.receipt(ctx, "住民異動届受付票（国内転入）", recorded, items))


async def _new_persons(s: StubSut, ctx: Ctx, op: str, kind: str, event: str, persons: list[str]) -> Answer:
    """国外転入 and 出生: a new 住民票コード chosen here, then the 個人番号 from J-LIS (F23)."""
    head_code = text(op, "HeadJuminhyoCode")
    head = s.persons.get(head_code or "")
    if head is not None and head.status == DELETED:
        head = None
    if kind == "出生":
        if head is None:
            raise Refusal("MOVE-HEAD", "出生: HeadJuminhyoCode must name the household the child joins")
        addr = s.here(inner(op, "NewAddress") or head.addr, "MOVE-ADDRESS", "the child's address")
    else:
        addr = s.here(inner(op, "NewAddress"), "MOVE-ADDRESS", "NewAddress")
    for raw in persons:
        s.recordable(text(raw, "JuminhyoCode"))
    if head is not None:
        hh, head_name = head.hh, head.head
    else:
        named = next((r for r in persons if text(r, "Relationship") == "世帯主"), persons[0])
        hh, head_name = s.new_household(), _name_text(inner(named, "Name") or "")
    recorded, requests = [], []
    for i, raw in enumerate(persons):
        default = "子" if kind == "出生" else ("世帯主" if head is None and i == 0 else "同居人")
        returning = bool(text(raw, "JuminhyoCode") and text(raw, "MyNumber"))
        if kind == "出生" and inner(raw, "BirthDate") is None:
            raw = raw.replace("</Name>", f"</Name><BirthDate>{event}</BirthDate>", 1)
        p = s.from_counter(raw, addr=addr, event=event, hh=(hh, head_name, inner(raw, "Relationship") or default),
                           code=text(raw, "JuminhyoCode") if returning else s.new_code())
        if not returning:
            p.mn = None
        reason = "A03" if kind == "出生" else ("A06" if p.foreign is not None else "A02")
        await s.change(ctx, None, p, reason, event, ctx.day)
        recorded.append(p)
        if p.mn is None:
            requests.append(await s.request_number(ctx, p))
    late = _late(ctx, event) if kind == "国外転入" else []
    answered = await s.wait_numbers(requests) if requests else True
    fresh = [s.persons.get(p.code, p) for p in recorded]
    doc = s.receipt(ctx, f"住民異動届受付票（{kind}）", fresh, late + s.idno_items(fresh))
    if not answered:
        return Answer("held", "NUMBER-PENDING", "個人番号とすべき番号を待っています（記載は完了）", doc)
    return Answer(documents=doc)


def _name_text(name: str) -> str:
    """世帯主の氏名 (escaped text) from a Name fragment: the 漢字 name, else the カナ or ローマ字 one."""
    return text(name, "Kanji") or text(name, "Kana") or text(name, "Latin") or "不詳"


def _move_in_notice(s: StubSut, ctx: Ctx, persons: list[Person], from_lg: str, event: str, addr: str,
                    cert: str | None) -> str:
    cert_el = el("CertificateNo", cert if cert and re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._:\-]{0,79}", cert)
                 else None)
    people = "".join(f"<Person><JuminhyoCode>{p.code}</JuminhyoCode>{el('MyNumber', p.mn)}<Name>{p.name}</Name>"
                     f"<BirthDate>{p.birth}</BirthDate></Person>" for p in persons)
    return (f"<MoveInNotice><NoticeNo>{s.new_id('N')}</NoticeNo>{cert_el}<MoveOutLgCode>{from_lg}</MoveOutLgCode>"
            f"<MoveInLgCode>{s.lg}</MoveInLgCode><MoveInDate>{event}</MoveInDate><NotifiedDate>{ctx.day}"
            f"</NotifiedDate><NewAddress>{addr}</NewAddress>{people}</MoveInNotice>")


async def _move_out(s: StubSut, ctx: Ctx, op: str, kind: str, event: str, persons: list[str]) -> Answer:
    to_lg = text(op, "ToLgCode")
    if kind == "国内転出" and (not to_lg or to_lg == s.lg):
        raise Refusal("MOVE-TO", "国内転出 needs ToLgCode of another municipality")
    targets = [s.alive(text(raw, "JuminhyoCode"), "MOVE") for raw in persons]
    for p in targets:
        if p.status != RESIDENT:
            raise Refusal("MOVE-STATUS", f"{p.code} is {p.status}, not 住民")
    planned = (to_lg or "", event, inner(op, "NewAddress"), ctx.day)
    code = "D01" if kind == "国内転出" else "D02"
    done = []
    for p in targets:
        after = replace(p, status=MOVING_OUT, planned=planned)
        await s.change(ctx, p, after, code, event, ctx.day)
        done.append(after)
    return Answer(documents=s.receipt(ctx, f"住民異動届受付票（{kind}）", done,
                                      _planned_items(done[0]) + _late(ctx, event)))


async def _tenkyo(s: StubSut, ctx: Ctx, op: str, event: str, persons: list[str]) -> Answer:
    addr = s.here(inner(op, "NewAddress"), "MOVE-ADDRESS", "NewAddress")
    movers = [s.alive(text(raw, "JuminhyoCode"), "MOVE") for raw in persons]
    for p in movers:
        if p.status != RESIDENT:
            raise Refusal("MOVE-STATUS", f"{p.code} is {p.status}, not 住民")
    head = s.alive(text(op, "HeadJuminhyoCode"), "MOVE") if text(op, "HeadJuminhyoCode") else None
    done = []
    for p, raw in zip(movers, persons, strict=True):
        after = replace(p, addr=addr, prev=p.addr, addr_since=event, rel=inner(raw, "Relationship") or p.rel)
        if head is not None and head.code != p.code:
            after.hh, after.head = head.hh, head.head
        await s.change(ctx, p, after, "M01", event, ctx.day)
        done.append(after)
    return Answer(documents=s.receipt(ctx, "住民異動届受付票（転居）", done, _late(ctx, event)))


async def _household_change(s: StubSut, ctx: Ctx, op: str, event: str, persons: list[str]) -> Answer:
    """世帯変更 (M02): the persons join the household of HeadJuminhyoCode, or the head named among them forms
    a new one; the 本人確認情報 do not change, so no IdentityNotice and no Change/Seq consumed (contract §6)."""
    head_code = text(op, "HeadJuminhyoCode")
    if not head_code:
        raise Refusal("MOVE-HEAD", "世帯変更 needs HeadJuminhyoCode (the head after the change)")
    head = s.alive(head_code, "MOVE")
    movers = [s.alive(text(raw, "JuminhyoCode"), "MOVE") for raw in persons]
    codes = {p.code for p in movers}
    if head.code in codes:
        hh = head.hh if {m.code for m in s.household(head)} <= codes else s.new_household()
        head_name = _name_text(head.name)
    else:
        hh, head_name = head.hh, head.head
    done = []
    for p, raw in zip(movers, persons, strict=True):
        rel = "世帯主" if p.code == head.code else (inner(raw, "Relationship") or "同居人")
        after = replace(p, hh=hh, head=head_name, rel=rel)
        await s.change(ctx, p, after, "M02", event, ctx.day)
        done.append(after)
    return Answer(documents=s.receipt(ctx, "住民異動届受付票（世帯変更）", done, _late(ctx, event)))


async def official_correction(s: StubSut, ctx: Ctx, op: str) -> Answer:
    action = text(op, "Action") or ""
    event = fill_jdate(_need(op, "EventDate", "CORR-EVENT"))
    raw = _need(op, "Person", "CORR-PERSON")
    basis = item("根拠", text(op, "Basis") or "")
    if action == "記載":
        addr = s.here(inner(op, "NewAddress"), "CORR-ADDRESS", "NewAddress")
        code = text(raw, "JuminhyoCode")
        s.recordable(code)
        rel = inner(raw, "Relationship") or "世帯主"
        at = s.head_at.get(addr) if rel != "世帯主" else None
        if at is None:
            hh, head, rel = s.new_household(), _name_text(inner(raw, "Name") or ""), "世帯主"
        else:
            hh, head = at
        p = s.from_counter(raw, addr=addr, event=event, hh=(hh, head, rel), code=code)
        if not code:
            p.mn = None  # a new 住民票コード: its 個人番号 comes through F23
        await s.change(ctx, None, p, "A04", event, ctx.day)
        answered = await s.wait_numbers([await s.request_number(ctx, p)]) if p.mn is None else True
        p = s.persons.get(p.code, p)
        doc = s.receipt(ctx, "職権記載処理票", [p], [basis, *s.idno_items([p])], kind="処理票")
        if not answered:
            return Answer("held", "NUMBER-PENDING", "個人番号とすべき番号を待っています（記載は完了）", doc)
        return Answer(documents=doc)
    p = s.alive(text(raw, "JuminhyoCode"), "CORR")
    if action == "消除":
        after = replace(p, status=DELETED)
        await s.change(ctx, p, after, "D04", event, ctx.day)
        return Answer(documents=document("処理票", "職権消除処理票", ctx.day, s.lg,
                                         [after.member(code=True, state=True)],
                                         [basis, item("状態", before=p.status, after=DELETED)]))
    # 修正: the name, birth date, sex, 続柄 and address the request states replace the record's
    changes: dict[str, str] = {}
    for tag, attr in (("Name", "name"), ("BirthDate", "birth"), ("Sex", "sex"), ("Relationship", "rel")):
        v = inner(raw, tag)
        if v is not None and squash(v) != squash(getattr(p, attr)):
            changes[attr] = fill_jdate(v) if tag == "BirthDate" else v
    new_addr = inner(op, "NewAddress")
    if new_addr is not None and squash(new_addr) != squash(p.addr):
        changes.update(addr=s.here(new_addr, "CORR-ADDRESS", "NewAddress"), prev=p.addr, addr_since=event)
    if not changes:
        raise Refusal("CORR-NO-CHANGE", "the correction states nothing that differs from the record")
    after = replace(p)
    for k, v in changes.items():
        setattr(after, k, v)
    await s.change(ctx, p, after, "M07", event, ctx.day)
    labels = {"name": "氏名", "birth": "生年月日", "sex": "性別", "rel": "世帯主・続柄", "addr": "住所"}
    shown: dict[str, Callable[[str], str]] = {"name": _name_plain, "birth": date_text, "sex": str,
                                               "rel": html.unescape, "addr": address_text}
    items = [item(labels[k], before=shown[k](getattr(p, k)), after=shown[k](v))
             for k, v in changes.items() if k in labels]
    return Answer(documents=document("処理票", "職権修正処理票", ctx.day, s.lg,
                                     [after.member(mn=True, code=True, honseki=True, state=True, card=True)],
                                     [basis, *items]))


def _name_plain(name: str) -> str:
    return html.unescape(" ".join(v for v in (text(name, t) for t in ("Kanji", "Kana", "Latin", "Tsusho")) if v))


# --- F03 写し, F04 転出証明書 ---------------------------------------------------------------------------------


def _flag(op: str, tag: str) -> bool:
    return (text(op, tag) or "") in ("true", "1")


async def copy_request(s: StubSut, ctx: Ctx, op: str) -> Answer:
    requester = text(op, "Requester") or ""
    rel, honseki, mn, code = (_flag(op, t) for t in ("Relationship", "Honseki", "IncludeMyNumber",
                                                       "IncludeJuminhyoCode"))
    if requester in ("第三者", "代理人") and (honseki or mn or code):
        raise Refusal("COPY-RESTRICTED", f"a {requester} cannot be given 本籍, 個人番号 or 住民票コード")
    p = s.alive(text(op, "JuminhyoCode"), "COPY", deleted_ok=True)
    if p.status == DELETED:
        reason = re.search(r'code="([A-Z0-9]+)"', p.last)
        items = [item("消除事由", REASONS.get(reason.group(1), "") if reason else ""), *_planned_items(p)]
        if p.confirmed is not None:
            items += [item("転出確定年月日", date_text(p.confirmed[0])),
                      item("転出確定住所", address_text(p.confirmed[1]))]
        items.append(item("認証文", "この写しは、住民票の除票の原本と相違ないことを証明する。"))
        return Answer(documents=document("住民票の除票の写し", "住民票の除票の写し", ctx.day, s.lg,
                                         [p.member(mn=mn, code=code, honseki=honseki)], items))
    members = s.household(p) if text(op, "Scope") == "世帯全員" else [p]
    els = [m.member(mn=mn, code=code, household=rel, honseki=honseki) for m in members]
    items = [item("認証文", "この写しは、住民票の原本と相違ないことを証明する。")]
    return Answer(documents=document("住民票の写し", "住民票の写し", ctx.day, s.lg, els, items))


async def moveout_certificate_issue(s: StubSut, ctx: Ctx, op: str) -> Answer:
    p = s.alive(text(op, "JuminhyoCode"), "MOC", deleted_ok=True)
    if p.status != MOVING_OUT or p.planned is None or not p.planned[0]:
        raise Refusal("MOC-NOT-MOVING", f"{p.code} has not notified a move to another municipality (転出予定)")
    return Answer(documents=document("転出証明書", "転出証明書", ctx.day, s.lg,
                                     [p.member(mn=True, code=True, honseki=True)], _planned_items(p)))


# --- CS terminal (arrow 13, sync): F07, F20 ------------------------------------------------------------------


async def identity_query_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    purpose = inner(op, "Purpose") or "窓口照会"
    jc, mn, kana = inner(op, "JuminhyoCode"), inner(op, "MyNumber"), inner(op, "NameKana")
    if jc:
        what = f"<JuminhyoCode>{jc}</JuminhyoCode>"
    elif mn:
        what = f"<MyNumber>{mn}</MyNumber>"
    else:
        birth = inner(op, "BirthDate")
        if not kana or birth is None:
            raise Refusal("QUERY-ATTRIBUTES", "a 4情報 query needs NameKana and BirthDate")
        what = f"<Attributes><NameKana>{kana}</NameKana><BirthDate>{fill_jdate(birth)}</BirthDate></Attributes>"
    got = await s.ask(ctx, "IdentityQuery",
                      f"<IdentityQuery><QueryNo>{s.new_id('Q')}</QueryNo><Purpose>{purpose}</Purpose>{what}"
                      "</IdentityQuery>")
    if isinstance(got, Answer):
        return got
    status, code, detail, answer = got
    members = [f"<Member>{i}</Member>" for i in all_inner(answer, "Identity")]
    doc = document("照会結果", "本人確認情報照会結果", ctx.day, s.lg, members,
                   [item("照会結果", status if not code else f"{status} {code}")])
    if status not in ("accepted", "refused", "not-found", "held"):
        status = "refused"
    return Answer(status, code, detail, doc)


async def card_issue_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    p = s.alive(text(op, "JuminhyoCode"), "CARD")
    if not p.mn:
        raise Refusal("CARD-NO-NUMBER", f"{p.code} has no 個人番号 yet")
    app = inner(op, "ApplicationNo") or s.new_id("A")
    docs = "".join(f"<CheckedDocument>{d}</CheckedDocument>" for d in all_inner(op, "CheckedDocument"))
    got = await s.ask(ctx, "CardIssuanceRequest",
                      f"<CardIssuanceRequest><ApplicationNo>{app}</ApplicationNo><Identity>{p.identity()}</Identity>"
                      f"<HandoverDate>{ctx.day}</HandoverDate>{docs}</CardIssuanceRequest>")
    if isinstance(got, Answer):
        return got
    status, code, detail, answer = got
    card = text(answer, "CardNo")
    if status != "accepted" or not card:
        return Answer("held" if status == "held" else "refused", code or "CARD-REFUSED", detail)
    p.card = card
    await s.card_info(ctx, p, "交付", ctx.day, p.addr)
    items = [item("カード管理番号", card), item("交付年月日", ctx.day)]
    valid = text(answer, "ValidUntil")
    if valid:
        items.append(item("有効期限", valid))
    items.append(item("識別番号", p.idno))
    return Answer(documents=document("交付通知", "個人番号カード交付通知", ctx.day, s.lg,
                                     [p.member(code=True, card=True)], items))


async def card_verify_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    jc, pin = text(op, "JuminhyoCode"), _flag(op, "PinVerified")
    got = await s.ask(ctx, "CardVerificationRequest",
                      f"<CardVerificationRequest><VerificationNo>{s.new_id('V')}</VerificationNo><CardNo>"
                      f"{text(op, 'CardNo')}</CardNo><CertSerial>{text(op, 'CertSerial')}</CertSerial><PinVerified>"
                      f"{'true' if pin else 'false'}</PinVerified>{el('JuminhyoCode', jc)}</CardVerificationRequest>")
    if isinstance(got, Answer):
        return got
    status, code, detail, answer = got
    if status == "held":
        return Answer("held", code, detail)
    identity = inner(answer, "Identity")
    matches = text(answer, "Matches")
    match = (matches == "true") if matches is not None else (
        text(identity, "JuminhyoCode") == jc if jc and identity is not None else None)
    items = [item("カードの有効性", "有効" if text(answer, "Valid") == "true" else "無効"),
             item("暗証番号の照合", "一致" if pin else "不一致")]
    if match is not None:
        items.append(item("本人との一致", "一致" if match else "不一致"))
    if code:
        items.append(item("結果コード", html.unescape(code)))
    members = [f"<Member>{identity}</Member>"] if identity is not None else []
    return Answer(documents=document("本人確認結果", "マイナンバーカードによる本人確認結果", ctx.day, s.lg, members,
                                     items))


async def my_number_change_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    p = s.alive(text(op, "JuminhyoCode"), "MNC")
    if not p.mn:
        raise Refusal("MNC-NO-NUMBER", f"{p.code} has no 個人番号 to change")
    old = p.mn
    if not await s.wait_numbers([await s.request_number(ctx, p, "変更")]):
        return Answer("held", "NUMBER-PENDING", "個人番号とすべき番号を待っています")
    fresh = s.persons.get(p.code, p)
    items = [item("変更前の個人番号", old), item("変更後の個人番号", fresh.mn or ""),
             item("変更の根拠", html.unescape(text(op, "Basis") or ""))]
    return Answer(documents=document("変更通知", "個人番号変更通知", ctx.day, s.lg,
                                     [fresh.member(mn=True, code=True)], items))


# --- F09 特例転入, F30 電子申請 -----------------------------------------------------------------------------


async def special_movein_confirm(s: StubSut, ctx: Ctx, op: str) -> Answer:
    cert_no, card_no = text(op, "CertificateNo") or "", text(op, "CardNo") or ""
    move_in = fill_jdate(_need(op, "MoveInDate", "SMI-DATE"))
    addr = s.here(inner(op, "NewAddress"), "SMI-ADDRESS", "NewAddress")
    codes = [c.strip() for c in all_inner(op, "JuminhyoCode")]
    found = s.certs.get(cert_no)
    if found is None:
        raise Refusal("SMI-NO-CERT", f"no 転出証明書情報 {cert_no} has been received")
    from_lg, body, used = found
    if used:
        raise Refusal("SMI-USED", f"転出証明書情報 {cert_no} has already been used")
    members = {text(m, "JuminhyoCode") or "": m for m in _MEMBER.findall(body)}
    if card_no not in {text(m, "CardNo") for m in members.values()}:
        raise Refusal("SMI-CARD", f"card {card_no} belongs to nobody on 転出証明書情報 {cert_no}")
    missing = [c for c in codes if c not in members]
    if missing:
        raise Refusal("SMI-PERSON", f"{', '.join(missing)} not on 転出証明書情報 {cert_no}")
    d_in, today = western(move_in), date.fromisoformat(ctx.day)
    if d_in is not None and today > d_in + timedelta(days=14):
        raise Refusal("SMI-14DAYS", f"特例転入 must be notified within 14 days of moving in ({d_in})")
    planned = western(inner(body, "PlannedMoveOutDate"))
    if planned is not None and today > planned + timedelta(days=30):
        raise Refusal("SMI-30DAYS", f"特例転入 must be notified within 30 days of the planned move-out ({planned})")
    for c in codes:
        s.recordable(c)
    chosen = [members[c] for c in codes]
    head_raw = next((m for m in chosen if text(m, "Relationship") == "世帯主"), chosen[0])
    hh, head_name = s.new_household(), _name_text(inner(head_raw, "Name") or "")
    recorded = []
    for m in chosen:
        rel = "世帯主" if m is head_raw else (inner(m, "Relationship") or "同居人")
        res = inner(m, "Resident") or m
        p = s.from_counter(res, addr=addr, event=move_in, hh=(hh, head_name, rel))
        p.prev, p.card = inner(res, "Address"), text(m, "CardNo")
        await s.change(ctx, None, p, "A05", move_in, ctx.day, card=False)
        recorded.append(p)
    await s.emit(ctx, "MoveInNotice", _move_in_notice(s, ctx, recorded, from_lg, move_in, addr, cert_no),
                 recorded[0].code, to_lg=from_lg)
    for p in recorded:
        if p.card:
            deadline = None if p.card == card_no else (today + timedelta(days=90)).isoformat()
            await s.card_info(ctx, p, "転入継続利用", ctx.day, addr, deadline)
    s.certs[cert_no] = (from_lg, body, True)
    return Answer(documents=s.receipt(ctx, "住民異動届受付票（特例転入）", recorded, s.idno_items(recorded)))


async def special_movein_pending(s: StubSut, ctx: Ctx, op: str) -> Answer:
    """The 転出証明書情報 received and not yet used (filtered by 転出地 / 住民票コード)."""
    lg_filter, code_filter = text(op, "MoveOutLgCode"), text(op, "JuminhyoCode")
    members, items = [], []
    for no, (from_lg, body, used) in s.certs.items():
        if used or (lg_filter and from_lg != lg_filter):
            continue
        for m in _MEMBER.findall(body):
            res = inner(m, "Resident") or ""
            code = text(res, "JuminhyoCode") or ""
            if code_filter and code != code_filter:
                continue
            members.append(f"<Member><JuminhyoCode>{code}</JuminhyoCode>{el('MyNumber', text(res, 'MyNumber'))}"
                           f"<Name>{inner(res, 'Name')}</Name><BirthDate>{inner(res, 'BirthDate')}</BirthDate>"
                           f"<Sex>{text(res, 'Sex')}</Sex><Address>{inner(res, 'Address')}</Address></Member>")
            items.append(item("証明書番号", no))
    return Answer(documents=document("特例転入候補", "受信した転出証明書情報", ctx.day, s.lg, members, items))


async def card_handover_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    p = s.alive(text(op, "JuminhyoCode"), "HANDOVER")
    items = [item("予約番号", html.unescape(text(op, "BookingId") or "")), item("予約日時", text(op, "Slot") or ""),
             item("交付場所", html.unescape(text(op, "Place") or ""))]
    if p.card:
        items.append(item("カード管理番号", p.card))
    return Answer(documents=document("交付通知", "個人番号カード交付（予約）", ctx.day, s.lg,
                                     [p.member(code=True, card=True)], items))


async def eapplication_process_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    app_id = text(op, "ApplicationId") or ""
    found = s.eapps.get(app_id)
    if found is None:
        raise Refusal("EAPP-NOT-FOUND", f"no e-application {app_id} has been received")
    app, processed = found
    if processed:
        raise Refusal("EAPP-DONE", f"e-application {app_id} is already processed")
    submitted = datetime.fromisoformat(text(app, "SubmittedAt") or "")
    sub_day = (submitted.astimezone(JST) if submitted.tzinfo else submitted).date()
    planned_day = date.fromisoformat(text(app, "PlannedMoveOutDate") or "")
    if not planned_day - timedelta(days=30) <= sub_day <= planned_day + timedelta(days=10):
        raise Refusal("EAPP-WINDOW", f"submitted {sub_day}: outside 30 days before to 10 days after the "
                      f"planned move-out ({planned_day})")
    dest = inner(app, "Destination") or ""
    dest_lg = text(dest, "LgCode")
    if not dest_lg or dest_lg == s.lg:
        raise Refusal("EAPP-DESTINATION", "an online 転出届 is for a move to another municipality in Japan")
    people = [inner(app, "Applicant") or "", *_MEMBER.findall(app)]
    here = inner(app, "CurrentAddress")
    persons = []
    for a in people:
        p = s.find(a, at=here)
        if p is None or p.status != RESIDENT:
            raise Refusal("EAPP-UNKNOWN", f"{_name_text(inner(a, 'Name') or '')}: no such resident here")
        persons.append(p)
    if not persons[0].card:
        raise Refusal("EAPP-NO-CARD", f"{persons[0].code}: the applicant holds no card to sign an online 転出届")
    when = f"<Western>{planned_day.isoformat()}</Western>"
    when = fill_jdate(when)
    planned = (dest_lg, when, dest, sub_day.isoformat())
    done = []
    for p in persons:
        after = replace(p, status=MOVING_OUT, planned=planned)
        await s.change(ctx, p, after, "D01", when, sub_day.isoformat())
        done.append(after)
    if text(app, "Kind") == "転出届・転入予約":
        await s.emit(ctx, "MoveOutCertInfo", _cert_info(s, done, dest_lg, None), done[0].code, to_lg=dest_lg)
    s.eapps[app_id] = (app, True)
    return Answer(documents=s.receipt(ctx, "住民異動届受付票（電子申請・国内転出）", done, _planned_items(done[0])))


def _cert_info(s: StubSut, persons: list[Person], to_lg: str, request_no: str | None) -> str:
    """MoveOutCertInfo (8→1): the 転出証明書情報 of persons who notified a move to ``to_lg``."""
    assert persons[0].planned is not None
    _, when, addr, notified = persons[0].planned
    if not addr or "<Overseas>" in addr:
        m = municipality_for(to_lg)
        addr = (f"<LgCode>{m.lg_code}</LgCode><Prefecture>{esc(m.prefecture)}</Prefecture><City>{esc(m.city)}"
                f"</City><Town>{esc(m.city)}</Town>")
    members = "".join(f"<Member><Resident>{p.resident()}</Resident>{el('CardNo', p.card)}</Member>" for p in persons)
    return (f"<MoveOutCertInfo><CertificateNo>{s.new_id('C')}</CertificateNo>{el('RequestNo', request_no)}"
            f"<MoveOutLgCode>{s.lg}</MoveOutLgCode><MoveInLgCode>{to_lg}</MoveInLgCode><PlannedMoveOutDate>{when}"
            f"</PlannedMoveOutDate><NotifiedDate>{notified}</NotifiedDate><PlannedAddress>{addr}</PlannedAddress>"
            f"{members}</MoveOutCertInfo>")


OPERATIONS.update({
    "MovingNotification": moving_notification,
    "OfficialCorrection": official_correction,
    "CopyRequest": copy_request,
    "MoveOutCertificateIssue": moveout_certificate_issue,
    "SpecialMoveInPending": special_movein_pending,
    "SpecialMoveInConfirm": special_movein_confirm,
    "CardHandoverOp": card_handover_op,
    "CardVerifyOp": card_verify_op,
    "MyNumberChangeOp": my_number_change_op,
    "IdentityQueryOp": identity_query_op,
    "CardIssueOp": card_issue_op,
    "EApplicationProcessOp": eapplication_process_op,
})
