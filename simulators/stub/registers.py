"""The stub SUT's 戸籍・附票 (F12, F14), 法務省通知 (F11), 個別記載事項 (F16) and 住民票コード変更 (F24): the
counter operations and the inbound messages behind them, in the stub's style (fragments, templates, caps).

Why apart from :mod:`simulators.stub.ops`: they keep state of their own (the 戸籍 entries made here as 本籍地,
the 法務省通知 slips, the 住民票コード requests) and the load test does not drive them; the certification
of the stub does. Each sends what the reference SUT sends (simulators/reference/counter.py, inbound.py).
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import replace

from simulators.reference.core import ENTRY_TARGET
from simulators.stub.core import INBOUND, OPERATIONS, StubSut
from simulators.stub.inbound import jdate_of
from simulators.stub.ops import _name_plain, _need
from simulators.stub.record import (
    DELETED,
    REASONS,
    Answer,
    Ctx,
    Head,
    Person,
    Refusal,
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

#: 住民票コード tried before a change is given up (the reference SUT's ``code_change_attempts``)
CODE_ATTEMPTS = 5

Koseki = tuple[str | None, str, str, str | None, str | None]  # 住民票コード, Name, BirthDate, Sex, Honseki


def _plain(raw: str | None) -> str:
    return html.unescape(raw or "")


def _ictx(h: Head) -> Ctx:
    return Ctx(h.sent_at, h.day, h.mid)


# --- 戸籍 (F12 as 本籍地, F14 both ways) -----------------------------------------------------------------------


def _name_key(name: str, birth: str) -> str:
    born = western(birth)
    return f"n:{squash(name)}|{born.isoformat() if born else squash(birth)}"


def same_name(a: str, b: str) -> bool:
    """Names agree when every part both state agrees (漢字, カナ, ローマ字), as the reference SUT compares."""
    stated = [(x, y) for x, y in ((text(a, t), text(b, t)) for t in ("Kanji", "Kana", "Latin")) if x and y]
    return bool(stated) and all(x == y for x, y in stated)


def koseki_find(s: StubSut, code: str | None, name: str, birth: str) -> Koseki | None:
    return (s.koseki.get(f"c:{code}") if code else None) or s.koseki.get(_name_key(name, birth))


def koseki_record(s: StubSut, code: str | None, name: str, birth: str, sex: str | None, honseki: str | None,
                  old_name: str) -> None:
    """Keep an entry made here as 本籍地 (compared when a FuhyoNotice arrives); a known entry is updated."""
    found = koseki_find(s, code, old_name, birth)
    if found is not None:
        code, sex, honseki = code or found[0], sex or found[3], honseki or found[4]
    entry: Koseki = (code, name, birth, sex, honseki)
    if code:
        s.koseki.put(f"c:{code}", entry)
    s.koseki.put(_name_key(name, birth), entry)


def _koseki_person(code: str | None, name: str, birth: str, sex: str | None, honseki: str) -> str:
    """KosekiPersonType content."""
    return (f"{el('JuminhyoCode', code)}<Name>{name}</Name><BirthDate>{birth}</BirthDate>{el('Sex', sex)}"
            f"<Honseki>{honseki}</Honseki>")


async def koseki_entry(s: StubSut, ctx: Ctx, op: str) -> Answer:
    """KosekiEntry (F14): here as 住所地 the record is amended (M08) or deleted (D03); else the 住所地 is told."""
    raw = _need(op, "Person", "KOSEKI-PERSON")
    address_lg = text(op, "AddressLgCode") or ""
    kind = text(op, "EntryKind") or ""
    entry_date = fill_jdate(_need(op, "EntryDate", "KOSEKI-DATE"))
    name, birth, new_name = inner(raw, "Name"), inner(raw, "BirthDate"), inner(op, "NewName")
    if name is None or birth is None:
        raise Refusal("KOSEKI-PERSON", "氏名 and 生年月日 of the person are required")
    birth = fill_jdate(birth)
    code, sex, honseki = text(raw, "JuminhyoCode"), text(raw, "Sex"), inner(raw, "Honseki")
    items = [item("戸籍の記載", _plain(kind)), item("届出・記載の年月日", date_text(entry_date))]
    if new_name is not None:
        items.append(item("氏名", before=_name_plain(name), after=_name_plain(new_name)))
    if address_lg == s.lg:
        p = s.persons.get(code) if code else s.find(raw)
        if p is None or p.status == DELETED:
            raise Refusal("KOSEKI-NOT-FOUND", "the person does not live here (AddressLgCode is this municipality)")
        koseki_record(s, code or p.code, new_name or name, birth, sex, honseki or p.honseki, name)
        after = p
        if kind == "死亡":
            after = replace(p, status=DELETED)
            await s.change(ctx, p, after, "D03", entry_date, ctx.day)
        elif new_name is not None and squash(new_name) != squash(p.name):
            after = replace(p, name=new_name.strip())
            await s.change(ctx, p, after, "M08", entry_date, ctx.day)
        else:
            items.append(item("住民票", "修正すべき事項なし"))
        return Answer(documents=document("処理票", "戸籍の記載に伴う処理票", ctx.day, s.lg,
                                         [after.member(code=True, state=True)], items))
    if honseki is None:
        raise Refusal("KOSEKI-HONSEKI", "本籍・筆頭者 are required to notify the address municipality")
    if not address_lg:
        raise Refusal("KOSEKI-ADDRESS", "AddressLgCode is required")
    koseki_record(s, code, new_name or name, birth, sex, honseki, name)
    await s.emit(ctx, "KosekiEntryNotice",
                 f"<KosekiEntryNotice><NoticeNo>{s.new_id('N')}</NoticeNo><HonsekiLgCode>{s.lg}</HonsekiLgCode>"
                 f"<Person>{_koseki_person(code, name, birth, sex, honseki)}</Person><EntryKind>{kind}</EntryKind>"
                 f"<EntryDate>{entry_date}</EntryDate>{el('NewName', new_name)}</KosekiEntryNotice>",
                 code or address_lg, to_lg=address_lg)
    items.append(item("通知先", address_lg))
    return Answer(documents=document("処理票", "戸籍の記載に伴う住所地への通知", ctx.day, s.lg, [], items))


async def on_fuhyo(s: StubSut, h: Head, body: str) -> bytes | None:
    """FuhyoNotice (F12 as 本籍地): 氏名・生年月日・性別 compared with the 戸籍; a difference, or no entry at all,
    → FuhyoMismatchNotice to the 住所地."""
    person = inner(body, "Person") or ""
    honseki = inner(person, "Honseki")
    if honseki is None or text(honseki, "LgCode") != s.lg:
        return None  # 本籍 elsewhere: not ours to compare
    name, birth, sex = inner(person, "Name") or "", fill_jdate(inner(person, "BirthDate") or ""), text(person, "Sex")
    code = text(person, "JuminhyoCode")
    found = koseki_find(s, code, name, birth)
    mismatches: list[tuple[str, str, str]] = []
    if found is None:
        mismatches.append(("戸籍", _name_plain(name) or "（氏名なし）", "該当する戸籍の記載なし"))
        kp = person
    else:
        k_code, k_name, k_birth, k_sex, k_honseki = found
        if not same_name(k_name, name):
            mismatches.append(("氏名", _name_plain(name) or "（なし）", _name_plain(k_name) or "（なし）"))
        if western(k_birth) != western(birth):
            mismatches.append(("生年月日", date_text(birth) or "（なし）", date_text(k_birth) or "（なし）"))
        if sex and k_sex and sex != k_sex:
            mismatches.append(("性別", sex, k_sex))
        if k_honseki is None:
            return None
        kp = _koseki_person(code or k_code, k_name, k_birth, k_sex, k_honseki)
    if not mismatches:
        return None
    items = "".join(f"<Mismatch><Item>{esc(label)}</Item><InFuhyoNotice>{esc(notified[:200])}</InFuhyoNotice>"
                    f"<InKoseki>{esc(koseki[:200])}</InKoseki></Mismatch>" for label, notified, koseki in mismatches)
    ref = text(body, "NoticeNo") or "F"
    await s.emit(_ictx(h), "FuhyoMismatchNotice",
                 f"<FuhyoMismatchNotice><NoticeNo>{s.new_id('F')}</NoticeNo><RefNoticeNo>{ref}</RefNoticeNo>"
                 f"<Person>{kp}</Person>{items}</FuhyoMismatchNotice>", code or ref,
                 to_lg=text(body, "AddressLgCode") or h.sender[1])
    return None


async def on_koseki_notice(s: StubSut, h: Head, body: str) -> bytes | None:
    """KosekiEntryNotice (F14 as 住所地): 死亡 → D03; a new 氏名 or 本籍 → M08, with their consequences."""
    p = s.find(inner(body, "Person") or "")
    if p is None or p.status == DELETED:
        return None
    ctx, event = _ictx(h), fill_jdate(inner(body, "EntryDate") or "")
    if text(body, "EntryKind") == "死亡":
        await s.change(ctx, p, replace(p, status=DELETED), "D03", event, h.day)
        return None
    after = replace(p)
    new_name, new_honseki = inner(body, "NewName"), inner(body, "NewHonseki")
    if new_name is not None and squash(new_name) != squash(p.name):
        after.name = new_name.strip()
    if new_honseki is not None and squash(new_honseki) != squash(p.honseki or ""):
        after.honseki = new_honseki.strip()
    if after != p:
        await s.change(ctx, p, after, "M08", event, h.day)
    return None


# --- F16 個別記載事項 ----------------------------------------------------------------------------------------


async def on_individual_entry(s: StubSut, h: Head, body: str) -> bytes | None:
    """IndividualEntryNotice (F16): the entries recorded (M10, replacing those of the same kind); each entry's
    business system gets a ResidentTransfer beside 税務; no IdentityNotice."""
    p = s.find(inner(body, "Subject") or "")
    if p is None or p.status == DELETED:
        return None
    new = [e.strip() for e in all_inner(body, "Entry")]
    kinds = [text(e, "Kind") or "" for e in new]
    keep = [e for e in all_inner(p.entries, "IndividualEntry") if text(e, "Kind") not in kinds]
    entries = "".join(f"<IndividualEntry>{e}</IndividualEntry>" for e in (*keep, *new))
    targets = tuple(t for t in (ENTRY_TARGET.get(html.unescape(k)) for k in kinds) if t)
    await s.change(_ictx(h), p, replace(p, entries=entries), "M10", jdate_of(h.day), h.day, targets=targets)
    return None


# --- F11 法務省通知 --------------------------------------------------------------------------------------------

_MOJ_ITEMS = (("Nationality", "国籍・地域"), ("ResidenceStatus", "在留資格"), ("PeriodOfStay", "在留期間"),
              ("PeriodEnd", "在留期間の満了の日"), ("NewResidenceCardNo", "在留カード等の番号"))
#: ForeignInfoType's order (Category is never changed by a notice)
_FOREIGN = ("Nationality", "Category", "ResidenceStatus", "PeriodOfStay", "PeriodEnd", "ResidenceCardNo")


def _foreign_with(foreign: str, changes: dict[str, str]) -> str:
    """A ForeignInfoType content with the changed items replaced, in the schema's order."""
    out = []
    for tag in _FOREIGN:
        v = changes.get(tag, inner(foreign, tag))
        if v is not None:
            out.append(f"<{tag}>{v}</{tag}>")
    return "".join(out)


async def on_moj(s: StubSut, h: Head, body: str) -> bytes | None:
    """MojNotice (F11): 特別永住者 held; others amend (M09) or delete (出国・在留期間満了 D06, 死亡 D03); the
    before/after slip kept for ImmigrationSlipsOp."""
    no = text(body, "NoticeNo") or s.new_id("N")
    kind, category = text(body, "Kind") or "", text(body, "Category") or ""
    changes, person = inner(body, "Changes") or "", inner(body, "Person") or ""
    p = s.persons.get(s.by_rescard.get(text(person, "ResidenceCardNo") or "") or "") or s.find(person)
    f = p.foreign if p is not None else None
    items: list[str] = []
    new_name = inner(changes, "Name")
    if new_name is not None:
        items.append(item("氏名", before=_name_plain(p.name) if p else None, after=_name_plain(new_name)))
    updated: dict[str, str] = {}
    for tag, label in _MOJ_ITEMS:
        v = text(changes, tag)
        if v is None:
            continue
        old = text(f, "ResidenceCardNo" if tag == "NewResidenceCardNo" else tag) if f is not None else None
        items.append(item(label, before=_plain(old) or None, after=_plain(v)))
        updated["ResidenceCardNo" if tag == "NewResidenceCardNo" else tag] = v
    if kind in ("出国", "在留期間満了", "死亡"):
        items.append(item("状態", before=p.status if p else None, after=DELETED))
    code = p.code if p is not None else None
    if category == "特別永住者":
        s.slips.put(no, ("保留（特別永住者）", kind, category, items, code, False))
        return None
    if p is None or p.status == DELETED:
        s.slips.put(no, ("該当者なし", kind, category, items, code, False))
        return None
    ctx, event = _ictx(h), jdate_of(text(body, "EffectiveDate") or h.day)
    if kind in ("出国", "在留期間満了"):
        await s.change(ctx, p, replace(p, status=DELETED), "D06", event, h.day)
    elif kind == "死亡":
        await s.change(ctx, p, replace(p, status=DELETED), "D03", event, h.day)
    else:
        after = replace(p, name=new_name.strip() if new_name is not None else p.name,
                        foreign=_foreign_with(f, updated) if f is not None else None)
        if after != p:
            await s.change(ctx, p, after, "M09", event, h.day)
    s.slips.put(no, ("適用", kind, category, items, code, False))
    return None


async def immigration_slips_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    """ImmigrationSlipsOp (F11): the 処理票 of one 法務省通知, or of every one not yet printed."""
    wanted = text(op, "NoticeNo")
    if wanted:
        if wanted not in s.slips:
            raise Refusal("SLIP-NOT-FOUND", f"no 法務省通知 {wanted} has been received")
        nos = [wanted]
    else:
        nos = [no for no, slip in s.slips.items() if not slip[5]]
    docs = []
    for no in nos:
        state, kind, category, items, code, _ = s.slips[no]
        p = s.persons.get(code or "")
        members = [p.member(code=True, state=True)] if p is not None else []
        head = [item("通知番号", _plain(no)), item("通知の種別", _plain(kind)), item("区分", _plain(category)),
                item("処理", state)]
        docs.append(document("処理票", f"法務省通知処理票（{_plain(no)}）", ctx.day, s.lg, members, head + items))
        s.slips[no] = (state, kind, category, items, code, True)
    return Answer(documents="".join(docs))


# --- F24 住民票コードの変更 -------------------------------------------------------------------------------------


async def _code_change(s: StubSut, ctx: Ctx, p: Person, origin: str | None = None, tried: int = 0) -> str:
    """ResidentCodeChange (8→3) with a new valid 住民票コード; returns the originating request number."""
    req, new = s.new_id("J"), s.new_code()
    if origin is None:  # staff wait on the first request's event; a retry after they gave up adds none
        origin = req
        s.number_done[origin] = asyncio.Event()
    s.code_requests.put(req, (p.code, new, ctx.day, ctx.cause, origin, tried + 1))
    day = ctx.day
    ch = (f'<Reason code="M04">{esc(REASONS.get("M04", "M04"))}</Reason><EventDate>{jdate_of(day)}</EventDate>'
          f"<NotifiedDate>{day}</NotifiedDate><Seq>{p.seq + 1}</Seq>")
    await s.emit(ctx, "ResidentCodeChange",
                 f"<ResidentCodeChange><RequestNo>{req}</RequestNo><OldJuminhyoCode>{p.code}</OldJuminhyoCode>"
                 f"<NewJuminhyoCode>{new}</NewJuminhyoCode><Change>{ch}</Change></ResidentCodeChange>", p.code)
    return origin


async def resident_code_change_op(s: StubSut, ctx: Ctx, op: str) -> Answer:
    """ResidentCodeChangeOp (F24): staff wait until CS accepts a new 住民票コード (M04 sent on its answer)."""
    p = s.alive(text(op, "JuminhyoCode"), "RCC")
    origin = await _code_change(s, ctx, p)
    if not await s.wait_numbers([origin]):
        return Answer("held", "CODE-PENDING", "住民票コード変更の結果を待っています")
    new = s.code_results.get(origin)
    fresh = s.persons.get(new or "")
    if not new or fresh is None:
        return Answer("refused", "RCC-FAILED", "CS refused every new 住民票コード tried")
    items = [item("変更前の住民票コード", p.code), item("変更後の住民票コード", new)]
    return Answer(documents=document("変更通知", "住民票コード変更通知", ctx.day, s.lg,
                                     [fresh.member(code=True)], items))


async def on_code_result(s: StubSut, h: Head, body: str) -> bytes | None:
    """ResidentCodeChangeResult (F24): accepted → M04 with PreviousJuminhyoCode; refused → another code."""
    asked = s.code_requests.pop(text(body, "RequestNo") or "", None)
    if asked is None:
        return None
    old, new, day, cause, origin, tried = asked
    p = s.persons.get(old)
    ctx = Ctx(h.sent_at, day, cause)
    done = s.number_done.get(origin)
    if p is None:
        s.code_results.put(origin, "")
    elif text(inner(body, "Result") or "", "Status") == "accepted":
        new = text(body, "NewJuminhyoCode") or new
        s.rekey(old, new)
        await s.change(ctx, p, replace(p, code=new), "M04", jdate_of(day), day, previous=old)
        s.code_results.put(origin, new)
    elif tried < CODE_ATTEMPTS:
        await _code_change(s, ctx, p, origin, tried)
        return None
    else:
        s.code_results.put(origin, "")
    if done is not None:
        done.set()
    return None


OPERATIONS.update({
    "KosekiEntry": koseki_entry,
    "ImmigrationSlipsOp": immigration_slips_op,
    "ResidentCodeChangeOp": resident_code_change_op,
})
INBOUND.update({
    "FuhyoNotice": on_fuhyo,
    "KosekiEntryNotice": on_koseki_notice,
    "IndividualEntryNotice": on_individual_entry,
    "MojNotice": on_moj,
    "ResidentCodeChangeResult": on_code_result,
})
