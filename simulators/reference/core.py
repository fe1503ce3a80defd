"""The heart of the reference SUT: records, the consequences of a change, message and document builders.

Why one place for the consequences: section 3 of the SUT contract says what every 記載・修正・消除 causes
and in which order (IdentityNotice 8, ResidentTransfer 21, AddresseeRecord 18, MunicipalNotice 29,
FuhyoNotice 8→1, CardManagementInfo 10). Counter operations and inbound handlers only decide *what*
changed; :meth:`Core.apply_change` saves it and enqueues what follows, in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import yaml
from lxml import etree

from conformance import codec
from conformance.codec import (
    address_el,
    foreign_el,
    foreign_person_el,
    honseki_el,
    household_el,
    jdate_el,
    jdate_from,
    koseki_person_el,
    name_el,
    name_from,
    person_identity_el,
    resident_el,
)
from conformance.envelope import Header, J, header, new_id
from conformance.errors import Finding, HarnessError
from conformance.identifiers import make_juminhyo_code
from conformance.model import Address, JDate, Name, Resident
from conformance.residents import municipality_for
from conformance.wareki import to_wareki
from conformance.xmlsafe import NS, q
from simulators.clock import JST
from simulators.reference import defects
from simulators.reference.config import RefConfig
from simulators.reference.outbox import Outbox
from simulators.reference.store import DELETED, MOVING_OUT, RESIDENT, Change, Person, Store, address_key

log = logging.getLogger("simulators.reference")
_NSMAP: dict[Any, str] = {None: NS}

#: Receiver actor per outgoing type. Types bound for another municipality cross arrow 8 to the SUT's CS (the
#: catalogue has no arrow from ``juki`` to ``peer``) with the Receiver lgCode of the destination; the CS
#: relays them on arrow 1 to that municipality.
RECEIVER: dict[str, str] = {
    "IdentityNotice": "cs",
    "NumberGenerationRequest": "cs",
    "ResidentCodeChange": "cs",
    "NoticeDestination": "cs",
    "IdentityQuery": "cs",
    "CardIssuanceRequest": "cs",
    "CardVerificationRequest": "cs",
    "CardStatusChange": "cs",
    "ResidentTransfer": "others",
    "AddresseeRecord": "addressee",
    "MunicipalNotice": "immlink",
    "CardManagementInfo": "card",
    "MoveInNotice": "cs",
    "MoveOutCertInfo": "cs",
    "FuhyoNotice": "cs",
    "FuhyoMismatchNotice": "cs",
    "KosekiEntryNotice": "cs",
    "WideAreaCopyInfo": "cs",
}
#: Types the CS terminal sends (sender actor ``counter``, arrow 13); all sync.
TERMINAL_TYPES = frozenset(
    {"IdentityQuery", "CardIssuanceRequest", "CardVerificationRequest", "CardStatusChange"}
)
SYNC_TYPES = TERMINAL_TYPES | {"MunicipalNotice"}

#: 個別記載事項 kind → the business system that takes it (ResidentTransfer/Target)
ENTRY_TARGET: dict[str, str] = {
    "国民健康保険": "国民健康保険",
    "後期高齢者医療": "国民健康保険",
    "介護保険": "介護保険",
    "国民年金": "国民年金",
    "児童手当": "福祉",
    "選挙人名簿": "選挙",
}
#: targets that are 個人番号利用事務 (番号法9条1項 別表): they get the 個人番号
MY_NUMBER_TARGETS = frozenset({"税務", "国民健康保険", "国民年金", "介護保険", "福祉"})

#: 番号法施行令: after a 転出届 the card lapses unless the 転入届 is made within 30 days of the planned move-out
#: (and within 14 days of moving in, which only the moving-in municipality can know)
CARD_MOVEOUT_LAPSE_DAYS = 30


@cache
def reason_names() -> dict[str, str]:
    """異動事由 code → name, from the project's code list (conformance/data/reasons.yaml)."""
    raw = yaml.safe_load(
        (resources.files("conformance") / "data" / "reasons.yaml").read_text(encoding="utf-8")
    )
    return {str(r["code"]): str(r["ja"]) for r in raw["reasons"]}


class Refusal(Exception):
    """A counter operation refused for a business reason (Result/Status refused with Code and Detail)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Ctx:
    """When an operation happens: 処理日 (BusinessDate, 届出年月日) and the virtual time to stamp on sends."""

    op_date: date
    now: datetime
    #: the MessageId of the CounterRequest that started the operation: CS-terminal requests carry it as their
    #: CorrelationId (contract §2), which ties a 4情報 query that names no identifier to its operation
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class CardEvent:
    """A カード管理情報 event: what happened, when, the new address, the continued-use deadline."""

    event: str
    day: date
    address: Address | None = None
    deadline: date | None = None


# --- small helpers ----------------------------------------------------------------------------------------


def fill(d: JDate) -> JDate:
    """A register date with its 和暦 filled where the model can (calendar dates from 明治 on)."""
    if d.western is not None and d.wareki is None:
        try:
            return JDate(western=d.western, wareki=to_wareki(d.western))
        except HarnessError:
            return d
    return d


def jd(d: date) -> JDate:
    return fill(JDate(western=d))


def western(d: JDate | None) -> date | None:
    return None if d is None else d.western


def date_text(d: JDate | None) -> str:
    """A date as printed: 和暦 (西暦), or the 不詳 text."""
    if d is None:
        return ""
    if d.uncertain is not None:
        return d.uncertain
    assert d.western is not None
    return f"{d.wareki}（{d.western.isoformat()}）" if d.wareki else d.western.isoformat()


def name_text(n: Name) -> str:
    return n.display or n.kana or ""


def same_name(a: Name, b: Name) -> bool:
    """Names agree when every part both sides state agrees (kanji, kana, Latin)."""
    pairs = [(a.kanji, b.kanji), (a.kana, b.kana), (a.latin, b.latin)]
    stated = [(x, y) for x, y in pairs if x and y]
    return bool(stated) and all(x == y for x, y in stated)


def same_date(a: JDate, b: JDate) -> bool:
    if a.western is not None and b.western is not None:
        return a.western == b.western
    return a.uncertain == b.uncertain


def address_text(a: Address | None) -> str:
    return "" if a is None else a.one_line()


def el_text(el: etree._Element | None, path: str) -> str | None:
    """Text at a '/'-separated path of local names below ``el``."""
    cur = el
    for part in path.split("/"):
        if cur is None:
            return None
        cur = cur.find(q(part))
    return None if cur is None else (cur.text or "")


def need(el: etree._Element | None, path: str) -> etree._Element:
    """The element at ``path`` that the schema requires (HarnessError XSD-CODEC if it is missing)."""
    found = child(el, path)
    if found is None:
        raise HarnessError([Finding("XSD-CODEC", f"required element {path} is missing")])
    return found


def child(el: etree._Element | None, path: str) -> etree._Element | None:
    cur = el
    for part in path.split("/"):
        if cur is None:
            return None
        cur = cur.find(q(part))
    return cur


def change_el(tag: str, c: Change) -> etree._Element:
    """ChangeType of a stored change (the 異動事由's name from the reason table, Seq at least 1)."""
    return codec.change_el(tag, c.code, reason_names().get(c.code, c.code), c.event_date, max(c.seq, 1),
                           c.notified)


def doc_member(
    p: Person,
    *,
    my_number: bool = False,
    jcode: bool = False,
    household: bool = True,
    address: bool = True,
    honseki: bool = False,
    state: bool = False,
    card: bool = False,
    since: bool = True,
    previous: bool = True,
    foreign: bool = True,
) -> etree._Element:
    """DocMemberType in its exact order; optional items only when the caller asks."""
    r = p.r
    m: etree._Element = J.Member()
    if jcode:
        m.append(J.JuminhyoCode(r.juminhyo_code))
    if my_number and r.my_number:
        m.append(J.MyNumber(r.my_number))
    name_el("Name", r.name, m)
    jdate_el("BirthDate", r.birth_date, m)
    m.append(J.Sex(r.sex))
    if household:
        household_el("Household", r.household, r.relationship, m)
    if address:
        address_el("Address", r.address, m)
    if since and r.resident_since is not None:
        jdate_el("ResidentSince", r.resident_since, m)
    if since and r.address_since is not None:
        jdate_el("AddressSince", r.address_since, m)
    if since and previous and r.previous_address is not None:
        address_el("PreviousAddress", r.previous_address, m)
    if honseki and r.honseki is not None:
        honseki_el("Honseki", r.honseki, m)
    if foreign and r.foreign is not None:
        foreign_el("Foreign", r.foreign, m)
    if state:
        m.append(J.Status(p.status))
        if p.last_change is not None:
            m.append(change_el("LastChange", p.last_change))
    if card and r.card_no:
        m.append(J.CardNo(r.card_no))
    return m


def item(
    label: str, value: str | None = None, *, before: str | None = None, after: str | None = None
) -> etree._Element:
    it: etree._Element = J.Item(J.Label(label[:200]))
    if value is not None:
        it.append(J.Value(value[:2000]))
    if before is not None:
        it.append(J.Before(before[:2000]))
    if after is not None:
        it.append(J.After(after[:2000]))
    return it


class Core:
    """State and sending of one reference SUT; shared by the counter operations and the inbound handlers."""

    def __init__(self, cfg: RefConfig, store: Store, outbox: Outbox) -> None:
        self.cfg = cfg
        self.lg = cfg.lg_code
        self.store = store
        self.outbox = outbox
        self._vt: datetime | None = None
        self._vt_mono = 0.0
        #: request number → event set when an asynchronous answer has been applied (F21, F23, F24)
        self.request_done: dict[str, asyncio.Event] = {}
        #: 転出証明書情報 numbers a 特例転入 asked for before they arrived (the defect smi-late-cert-refused)
        self.missed_certs: set[str] = set()

    # --- virtual time -------------------------------------------------------------------------------------
    def observe(self, h: Header) -> None:
        """Follow the harness's virtual clock: the SentAt of the last envelope received."""
        if h.sent_at.tzinfo is not None:
            self._vt, self._vt_mono = h.sent_at, time.monotonic()

    def now(self, anchor: datetime | None = None) -> datetime:
        """The virtual time to stamp on what the SUT sends.

        ``anchor`` is the SentAt of the envelope that caused the work: tenants with different virtual clocks
        share one SUT, so the last envelope seen (any tenant's) must not date another tenant's messages.
        """
        if anchor is not None and anchor.tzinfo is not None:
            return anchor.replace(microsecond=0)
        if self._vt is None:
            return datetime.now(JST).replace(microsecond=0)
        return (self._vt + timedelta(seconds=time.monotonic() - self._vt_mono)).replace(microsecond=0)

    def ctx(self, op_date: date, cause: str | None = None, anchor: datetime | None = None) -> Ctx:
        return Ctx(op_date=op_date, now=self.now(anchor), cause=cause)

    # --- municipality -------------------------------------------------------------------------------------
    def is_here(self, a: Address | None) -> bool:
        return a is not None and a.lg_code == self.lg

    # --- identifiers --------------------------------------------------------------------------------------
    def new_juminhyo_code(self, avoid: Iterable[str] = ()) -> str:
        """A fresh valid 住民票コード (10 random digits + check digit) unused here."""
        skip = set(avoid)
        while True:
            code = make_juminhyo_code("".join(secrets.choice(string.digits) for _ in range(10)))
            if defects.on(self.cfg, "new-code-bad-check-digit"):
                code = code[:10] + str((int(code[10]) + 1) % 10)
            if code not in skip and not self.store.code_in_use(code):
                return code

    def new_identification_no(self) -> str:
        """識別番号: "ID" + 14 upper-case alphanumerics; never derived from a 個人番号 or 住民票コード."""
        alphabet = string.digits + string.ascii_uppercase
        while True:
            idno = "ID" + "".join(secrets.choice(alphabet) for _ in range(14))
            if self.store.by_idno(idno) is None:
                return idno

    # --- sending ------------------------------------------------------------------------------------------
    def emit(
        self,
        ctx: Ctx,
        message_type: str,
        body: etree._Element,
        *,
        to_lg: str | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Enqueue one message (inside the caller's transaction); returns its outbox id."""
        sender = "counter" if message_type in TERMINAL_TYPES else "juki"
        receiver = RECEIVER[message_type]
        if message_type == "CardManagementInfo" and defects.on(self.cfg, "card-info-wrong-arrow"):
            receiver = "cs"
        h = header(
            message_type,
            (sender, self.lg),
            (receiver, to_lg or self.lg),
            sent_at=ctx.now,
            business_date=ctx.op_date,
            correlation_id=correlation_id or self._cause(ctx, message_type),
        )
        sync = message_type in SYNC_TYPES
        oid = self.outbox.enqueue(h, body, sync=sync)
        for _ in range(defects.transform_outgoing(self.cfg, message_type) - 1):
            self.outbox.enqueue(replace(h, message_id=new_id()), body, sync=sync)
        return oid

    def _cause(self, ctx: Ctx, message_type: str) -> str | None:
        """A CS-terminal request's CorrelationId: the counter operation that sent it."""
        if message_type not in TERMINAL_TYPES or defects.on(self.cfg, "terminal-no-correlation"):
            return None
        return ctx.cause

    # --- the consequences of a change (contract section 3) ------------------------------------------------
    def apply_change(
        self,
        ctx: Ctx,
        before: Person | None,
        after: Person,
        code: str,
        event_date: JDate,
        *,
        notified: date | None = None,
        previous_code: str | None = None,
        card: bool = True,
        entry_kinds: Iterable[str] = (),
        agency: bool = True,
    ) -> Person:
        """Save ``after`` and enqueue what the change causes, in the contract's order; returns it saved.

        ``card=False`` leaves the CardManagementInfo to the caller (特例転入 sends it after the 転入通知);
        ``entry_kinds`` are the 個別記載事項 just recorded (their business systems get a ResidentTransfer).
        """
        family = code[0]
        event_date = fill(event_date)
        b = before.r if before is not None else None
        a = after.r
        address_changed = b is None or b.address != a.address
        name_changed = b is not None and b.name != a.name
        identity_changed = (
            b is None
            or address_changed
            or name_changed
            or b.birth_date != a.birth_date
            or b.sex != a.sex
            or b.juminhyo_code != a.juminhyo_code
            or b.my_number != a.my_number
        )
        send_identity = family in ("A", "D") or identity_changed
        if code == "M02" and defects.on(self.cfg, "identity-on-household-change"):
            send_identity = True
        if code == "M10":
            send_identity = False
        if send_identity:
            seq = 1 if defects.on(self.cfg, "identity-seq-restart") else after.seq + 1
            kept = seq
        else:
            seq, kept = max(after.seq, 1), after.seq
            if code == "M02" and defects.on(self.cfg, "household-change-consumes-seq"):  # judge (issue 12)
                kept = after.seq + 1
        change = Change(code=code, event_date=event_date, notified=notified, seq=seq)
        after = replace(after, seq=kept, last_change=change)
        with self.store.tx():
            after = self.store.save(after)
            deferred: etree._Element | None = None
            # 1. 本人確認情報 to CS (→ 5 prefecture)
            if send_identity and not defects.skip(self.cfg, "skip-identity-notice"):
                ident = person_identity_el("Identity", a)
                if defects.on(self.cfg, "wrong-address-in-notice"):
                    town = ident.find(f"{q('Address')}/{q('Town')}")
                    if town is not None:
                        town.text = (town.text or "") + "誤"
                body = J.IdentityNotice(ident, change_el("Change", change))
                if previous_code:
                    body.append(J.PreviousJuminhyoCode(previous_code))
                if defects.on(self.cfg, "transfer-before-identity"):  # judge (issue 12): sent after 2.
                    deferred = body
                else:
                    self.emit(ctx, "IdentityNotice", body)
            # 2. other business systems: 税務 always, plus the systems of entries just recorded
            targets = [] if defects.skip(self.cfg, "skip-resident-transfer") else ["税務"]
            if not defects.skip(self.cfg, "entry-no-transfer"):
                for kind in entry_kinds:
                    t = ENTRY_TARGET.get(kind)
                    if t and t not in targets and t != "税務":
                        targets.append(t)
            for target in targets:
                with_number = target in MY_NUMBER_TARGETS
                if target == "税務" and defects.on(self.cfg, "transfer-tax-no-mynumber"):
                    with_number = False
                self.emit(
                    ctx,
                    "ResidentTransfer",
                    J.ResidentTransfer(
                        J.TransferNo(new_id("T")),
                        J.Target(target),
                        resident_el("Resident", a, include_my_number=with_number),
                        change_el("Change", change),
                    ),
                )
            if deferred is not None:
                self.emit(ctx, "IdentityNotice", deferred)
            # 3. the addressee system (→ 16 intermediate server)
            if not defects.skip(self.cfg, "skip-addressee-record"):
                rec = a
                if defects.on(self.cfg, "addressee-wrong-code"):
                    rec = replace(
                        a,
                        juminhyo_code=make_juminhyo_code(f"{(int(a.juminhyo_code[:10]) + 1) % 10**10:010d}"),
                    )
                self.emit(
                    ctx,
                    "AddresseeRecord",
                    J.AddresseeRecord(
                        J.RecordNo(new_id("R")), resident_el("Resident", rec), change_el("Change", change)
                    ),
                )
            # 4. foreign residents: 市町村通知 to the agency via the immigration link (sync, no 個人番号)
            if a.foreign is not None and agency and not defects.skip(self.cfg, "skip-municipal-notice"):
                kind = {"A": "記載", "D": "消除"}.get(family, "修正")
                self.emit(
                    ctx,
                    "MunicipalNotice",
                    J.MunicipalNotice(
                        J.NoticeNo(new_id("N")),
                        J.LgCode(self.lg),
                        J.Kind(kind),
                        foreign_person_el("Person", a),
                        change_el("Change", change),
                    ),
                )
            # 5. 戸籍の附票: 本籍 elsewhere, on 記載 and on a change of address
            if (
                a.foreign is None
                and a.honseki is not None
                and a.honseki.lg_code != self.lg
                and (family == "A" or (family == "M" and address_changed))
                and not defects.skip(self.cfg, "skip-fuhyo-notice")
            ):
                self.emit(
                    ctx,
                    "FuhyoNotice",
                    J.FuhyoNotice(
                        J.NoticeNo(new_id("F")),
                        J.AddressLgCode(self.lg),
                        koseki_person_el(
                            "Person",
                            juminhyo_code=a.juminhyo_code,
                            name=a.name,
                            birth=a.birth_date,
                            sex=a.sex,
                            honseki=a.honseki,
                        ),
                        address_el("Address", a.address),
                        jdate_el("AddressSince", a.address_since or event_date),
                        change_el("Change", change),
                    ),
                    to_lg=a.honseki.lg_code,
                )
            # 6. card holders: カード管理情報
            if card and a.card_no:
                ev = self._card_event(ctx, after, code, event_date, address_changed, name_changed)
                if ev is not None:
                    self.card_info(ctx, after, ev)
        return after

    def _card_event(
        self, ctx: Ctx, p: Person, code: str, event_date: JDate, address_changed: bool, name_changed: bool
    ) -> CardEvent | None:
        day = western(event_date) or ctx.op_date
        if code == "D03":
            return None if defects.on(self.cfg, "death-no-card-revoke") else CardEvent("失効", day)
        if code == "D01" and p.planned is not None:
            planned = western(p.planned.when) or day
            days = 90 if defects.on(self.cfg, "card-deadline-90days") else CARD_MOVEOUT_LAPSE_DAYS
            return CardEvent(
                "転出",
                day,
                p.planned.address if p.planned.address and not p.planned.address.is_overseas else None,
                planned + timedelta(days=days),
            )
        if code.startswith("M") and (address_changed or name_changed):
            return CardEvent("券面記載事項変更", day, p.r.address)
        return None

    def card_info(self, ctx: Ctx, p: Person, ev: CardEvent) -> None:
        """CardManagementInfo on arrow 10 (F29)."""
        if not p.r.card_no or defects.skip(self.cfg, "skip-card-management-info"):
            return
        body = J.CardManagementInfo(
            J.InfoNo(new_id("K")),
            J.CardNo(p.r.card_no),
            J.JuminhyoCode(p.code),
            J.Event(ev.event),
            J.EventDate(ev.day.isoformat()),
        )
        if ev.address is not None:
            address_el("Address", ev.address, body)
        if ev.deadline is not None:
            body.append(J.ContinuedUseDeadline(ev.deadline.isoformat()))
        self.emit(ctx, "CardManagementInfo", body)

    # --- records ------------------------------------------------------------------------------------------
    def new_person(self, r: Resident) -> Person:
        """A person not yet saved (rid 0) with a 識別番号 and 和暦 filled in its dates."""
        r = replace(
            r,
            birth_date=fill(r.birth_date),
            resident_since=fill(r.resident_since) if r.resident_since else None,
            address_since=fill(r.address_since) if r.address_since else None,
            identification_no=r.identification_no or self.new_identification_no(),
        )
        existing = self.store.by_code(r.juminhyo_code)
        if existing is not None:
            if existing.status != DELETED:
                raise Refusal("ALREADY-RECORDED", f"住民票コード {r.juminhyo_code} is already recorded here")
            # re-recorded after a 消除: same record, its change sequence continues
            return replace(
                existing,
                r=replace(r, identification_no=existing.r.identification_no),
                status=RESIDENT,
                planned=None,
                confirmed=None,
                notes=(),
            )
        return Person(rid=0, r=r)

    def household_for(
        self,
        *,
        head: Person | None,
        relationship: str,
        self_name: Name,
        address: Address,
        join_at_address: bool = False,
    ) -> tuple[str, str, str]:
        """(household no, head name, 続柄) for a person being recorded or moved."""
        if head is not None and relationship != "世帯主":
            return head.r.household_no, head.r.head_name, relationship
        if join_at_address and relationship != "世帯主":
            p = self.store.head_at(address)
            if p is not None:
                return p.r.household_no, p.r.head_name, relationship
        return self.store.new_household_no(), name_text(self_name), "世帯主"

    def person(self, jcode: str | None, *, alive: bool = True, prefix: str = "PERSON") -> Person:
        """The recorded person with this 住民票コード; refused ``{prefix}-NOT-FOUND`` if unknown and, with
        ``alive``, ``{prefix}-DELETED`` if the record is deleted (消除)."""
        p = self.store.by_code(jcode) if jcode else None
        if p is None:
            raise Refusal(f"{prefix}-NOT-FOUND", f"no person with 住民票コード {jcode} is recorded here")
        if alive and p.status == DELETED:
            raise Refusal(f"{prefix}-DELETED", f"住民票コード {jcode}: the record is deleted (消除)")
        return p

    def find_subject(self, subject: etree._Element | None, *, at: Address | None = None) -> Person | None:
        """The person a SubjectType, KosekiPersonType or ApplicantType names.

        By 住民票コード, else 個人番号, else 氏名 and 生年月日 (the latest record that matches; with ``at``,
        the latest living there, where several residents share them).
        """
        if subject is None:
            return None
        jc = el_text(subject, "JuminhyoCode")
        if jc:
            return self.store.by_code(jc)
        mn = el_text(subject, "MyNumber")
        if mn:
            return self.store.by_my_number(mn)
        n_el, b_el = child(subject, "Name"), child(subject, "BirthDate")
        if n_el is None or b_el is None:
            return None
        return self.by_name_birth(name_from(n_el), jdate_from(b_el), at=at)

    def by_name_birth(self, name: Name, birth: JDate, *, alive: bool = False,
                      at: Address | None = None) -> Person | None:
        """The latest record with this 氏名 and 生年月日 (with ``alive``: not deleted; with ``at``: the latest
        one not deleted at that address first — 氏名, 生年月日 and 住所 tell apart two residents whom the
        first two alone do not, common among the 18-year-olds of a moving season)."""
        found = [p for p in self.store.born_on(birth)
                 if same_name(p.r.name, name) and not (alive and p.status == DELETED)]
        if at is not None and len(found) > 1:
            key = address_key(at)
            here = [p for p in found if p.status != DELETED and address_key(p.r.address) == key]
            if here:
                return here[0]
        return found[0] if found else None

    def members_moving(self, p: Person) -> list[Person]:
        """The person and household members who notified the same move-out (one 転出証明書)."""
        if p.planned is None:
            return [p]
        out = [p]
        for m in self.store.household(p.r.household_no):
            if (
                m.rid != p.rid
                and m.status == MOVING_OUT
                and m.planned is not None
                and m.planned.to_lg == p.planned.to_lg
                and m.planned.when == p.planned.when
            ):
                out.append(m)
        return out

    def municipality_address(self, lg_code: str) -> Address:
        """A placeholder address of a municipality (when only its code is known)."""
        m = municipality_for(lg_code)
        return Address(lg_code=m.lg_code, prefecture=m.prefecture, city=m.city, town=m.city)

    # --- documents ----------------------------------------------------------------------------------------
    def document(
        self,
        kind: str,
        title: str,
        ctx: Ctx,
        members: Iterable[etree._Element] = (),
        items: Iterable[etree._Element] = (),
    ) -> etree._Element:
        doc: etree._Element = J.Document(
            J.Title(title), J.IssuedDate(ctx.op_date.isoformat()), J.IssuerLgCode(self.lg), kind=kind
        )
        for m in members:
            doc.append(m)
        for it in items:
            doc.append(it)
        return doc

    def new_record_items(self, persons: Iterable[Person]) -> list[etree._Element]:
        """Items telling staff (and the harness) the 識別番号 of persons just recorded (証明書交付の鍵)."""
        return [item(f"識別番号:{p.code}", p.r.identification_no) for p in persons if p.r.identification_no]

    def planned_items(self, p: Person) -> list[etree._Element]:
        if p.planned is None:
            return []
        dest = address_text(p.planned.address) if p.planned.address else (p.planned.to_lg or "国外")
        return [item("転出先", dest), item("転出予定年月日", date_text(p.planned.when))]


def status_after_moveout(cfg: RefConfig) -> str:
    """転出予定 (the contract); the defect ``moveout-no-planned-status`` deletes at once."""
    return DELETED if defects.on(cfg, "moveout-no-planned-status") else MOVING_OUT
