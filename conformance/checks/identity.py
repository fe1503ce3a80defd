"""Identity checks: names character for character, the registered address, no 本籍 and no restricted
identifiers where they must not be, and the virtual clock in every header.

Why: a name sent to CS with one character changed to its variant (渡辺→渡邊, 高橋→髙橋) or an IVS selector
dropped is a different name to Juki-Net; the schema cannot see it, only a comparison with what was registered
can. "Registered" means what the harness gave the SUT — the fixtures and every message or counter request the
harness sent — so a legitimate change of name (届出, 法務省通知, 戸籍) is known too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree

from conformance.checks.base import (
    _MATCH,
    _NUM,
    SUT_ACTORS,
    CheckContext,
    Evidence,
    Rec,
    StepResult,
    check,
    describe,
    mask_my_numbers,
    match_records,
)
from conformance.rules import find_my_numbers
from conformance.xmlsafe import q

#: The parts of a name compared character for character (children of a ``Name`` element).
NAME_PARTS: tuple[str, ...] = ("Kanji", "Kana", "Latin", "Tsusho", "TsushoKana", "FormerSurname",
                               "FormerSurnameKana")
_MODEL_PARTS = {"Kanji": "kanji", "Kana": "kana", "Latin": "latin", "Tsusho": "tsusho",
                "TsushoKana": "tsusho_kana", "FormerSurname": "former_surname",
                "FormerSurnameKana": "former_surname_kana"}
#: Words that mean 本籍・筆頭者 in any field of a message that must not carry them.
HONSEKI_WORDS: tuple[str, ...] = ("本籍", "筆頭者")
#: How far (seconds) a SentAt may stray from the tenant's virtual clock.
CLOCK_SLACK = 120.0


def _codepoints(s: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in s)


def _name_elements(body: etree._Element, *, any_name: bool = False) -> Iterable[tuple[str, etree._Element]]:
    """``(part, element)`` of every ``Name`` (with ``any_name``: also NewName, …) child in ``body``."""
    for name in body.iter():
        if not isinstance(name.tag, str):
            continue
        local = etree.QName(name).localname
        if not (local == "Name" or (any_name and local.endswith("Name"))):
            continue
        for part in name:
            if isinstance(part.tag, str):
                local = etree.QName(part).localname
                if local in NAME_PARTS and part.text:
                    yield local, part


def _given_names(ctx: CheckContext) -> dict[str, set[str]]:
    """Every name the harness gave the SUT: fixtures, counter requests, messages and answers sent to it."""
    given: dict[str, set[str]] = {p: set() for p in NAME_PARTS}
    for person in ctx.people.values():
        nm = getattr(person, "name", None)
        for part, attr in _MODEL_PARTS.items():
            v = getattr(nm, attr, None) if nm is not None else None
            if v:
                given[part].add(str(v))
    for rec in ctx.records:
        # only what reached the SUT: a relay of the SUT's own message (CS → prefecture) teaches nothing
        if rec.receiver_actor not in SUT_ACTORS and rec.message_type != "CounterRequest":
            continue
        if rec.body is None:
            continue
        for part, el in _name_elements(rec.body, any_name=True):
            given[part].add(el.text or "")
    return given


@check("IDENT-NAME", "identity.name_exact", "氏名が登録どおり一字一字一致すること",
       "every name the SUT sends or prints is a registered name, character for character (異体字, IVS)",
       {"properties": {}}, auto=True)
def _name_exact(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Each ``Name/*`` the SUT wrote equals, code point for code point, a name the harness gave it."""
    given = _given_names(ctx)
    ev: list[Evidence] = []
    n = 0
    for rec in ctx.records:
        if rec.sender_actor not in SUT_ACTORS or rec.message_type == "CounterRequest" or rec.body is None:
            continue
        for part, el in _name_elements(rec.body):
            n += 1
            text = el.text or ""
            if text in given[part]:
                continue
            near = [g for g in given[part] if len(g) == len(text) or g.replace("\U000e0100", "") == text]
            ev.append(Evidence.of(rec, xpath=f"Name/{part}", expected=near[:3] or "a registered name",
                                  actual=text, note=f"{_codepoints(text)}: not a name the SUT was given"))
    if ev:
        return False, f"{len(ev)} name(s) differ from the registered ones (異体字, IVS, spelling)", ev[:20]
    return True, f"{n} name(s) sent or printed exactly as registered", []


def _ready(ctx: CheckContext, p: Mapping[str, Any]) -> bool:
    return bool(match_records(ctx, p["match"]))


def _texts(el: etree._Element) -> Iterable[tuple[str, str]]:
    for node in el.iter():
        if not isinstance(node.tag, str):
            continue
        local = etree.QName(node).localname
        if node.text and node.text.strip():
            yield local, node.text
        for k, v in node.attrib.items():
            yield f"{local}/@{etree.QName(k).localname}", str(v)


@check("PRIV-HONSEKI", "privacy.no_honseki", "本籍・筆頭者をどこにも含まないこと",
       "no 本籍・筆頭者 anywhere in the message: no element, no word, no value in another field",
       {"properties": {"match": _MATCH, "values": {"type": "array", "items": {"type": "string"}},
                       "within": _NUM},
        "required": ["match"]}, waits=True, ready=_ready)
def _no_honseki(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """No Honseki/HeadOfFamily element, no text containing 本籍 or 筆頭者, none of ``values`` (the person's
    本籍 place, rendered from the fixture) in any field or attribute."""
    recs = match_records(ctx, p["match"])
    what = describe(p["match"], ctx.render)
    if not recs:
        return False, f"no {what} was found", [Evidence(expected=what, actual="nothing")]
    values = [str(ctx.render(v)) for v in p.get("values", [])]
    values = [v for v in values if v.strip()]
    ev: list[Evidence] = []
    for rec in recs:
        if rec.body is None:
            continue
        for local, text in _texts(rec.body):
            hit = local in ("Honseki", "HeadOfFamily") or any(w in text for w in (*HONSEKI_WORDS, *values))
            if hit:
                ev.append(Evidence.of(rec, xpath=local, expected="no 本籍・筆頭者", actual=text[:120]))
    if ev:
        return False, f"{what} carries 本籍・筆頭者 ({len(ev)} place(s))", ev
    return True, f"{len(recs)} × {what} without 本籍・筆頭者", []


_ADDRESS_PARTS = ("LgCode", "PostalCode", "Prefecture", "City", "Town", "Block", "Building", "Overseas")
_ADDR_ATTR = {"LgCode": "lg_code", "PostalCode": "postal_code", "Prefecture": "prefecture", "City": "city",
              "Town": "town", "Block": "block", "Building": "building", "Overseas": "overseas"}


@check("IDENT-ADDRESS", "content.registered_address", "住所が登録どおりであること",
       "the address in the message equals the person's registered address, item for item",
       {"properties": {"match": _MATCH, "person": {"type": "string"}, "xpath": {"type": "string"},
                       "within": _NUM},
        "required": ["match", "person"]}, waits=True, ready=_ready)
def _registered_address(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """The ``Address`` of the member whose 住民票コード is ``person`` (or at ``xpath``) equals the fixture's."""
    code = str(ctx.render(p["person"]))
    person = ctx.people.get(code)
    if person is None:
        return False, f"{code} is not a registered person of the scenario", []
    addr = person.address
    recs = match_records(ctx, p["match"])
    what = describe(p["match"], ctx.render)
    if not recs:
        return False, f"no {what} was found", [Evidence(expected=what, actual="nothing")]
    ev: list[Evidence] = []
    checked = 0
    for rec in recs:
        if rec.body is None:
            continue
        expr = str(ctx.render(p.get("xpath") or f".//j:Address[../j:JuminhyoCode='{code}']"))
        from conformance.checks.base import _xpath

        found = _xpath(expr)(rec.body)
        els = [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []
        for el in els[:1]:
            checked += 1
            for part in _ADDRESS_PARTS:
                want = getattr(addr, _ADDR_ATTR[part], None)
                got = el.findtext(q(part))
                if (want or None) != (got or None):
                    ev.append(Evidence.of(rec, xpath=f"{expr}/j:{part}", expected=want, actual=got,
                                          note="not the registered address"))
    if not checked:
        return False, f"{what}: no address of {code}", [Evidence(expected=f"an Address of {code}",
                                                                 actual="nothing")]
    if ev:
        return False, f"{what}: the address is not the registered one", ev
    return True, f"{checked} address(es) equal the registered one", []


@check("PRIV-RESTRICTED", "privacy.restricted_items", "第三者・代理人に個人番号・住民票コードを出さないこと",
       "an accepted document for a 第三者 or 代理人 prints no 個人番号 and no 住民票コード",
       {"properties": {"step": {"type": "string"}, "persons": {"type": "array", "items": {"type": "string"}}},
        "required": ["step"]})
def _restricted(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """The step's answer: no valid 個人番号, no MyNumber/JuminhyoCode element, no 住民票コード of ``persons``."""
    sid = str(ctx.render(p["step"]))
    step: StepResult | None = ctx.steps.get(sid)
    if step is None:
        return False, f"step {sid} did not run", []
    body = step.body
    if body is None:
        return False, f"step {sid}: the answer is not an XML document", []
    codes = [str(ctx.render(c)) for c in p.get("persons", [])]
    numbers = {str(getattr(ctx.people.get(c), "my_number", "") or "") for c in codes} - {""}
    ev: list[Evidence] = []
    for local, text in _texts(body):
        leaked = find_my_numbers(text)
        if local in ("MyNumber", "JuminhyoCode") or leaked or any(c and c in text for c in codes) or \
                any(n in text for n in numbers):
            ev.append(Evidence(message_id=step.message_id, xpath=local, expected="not printed",
                               actual=mask_my_numbers(text)[:80]))
    if ev:
        return False, f"step {sid}: the document prints 個人番号 or 住民票コード ({len(ev)})", ev
    return True, f"step {sid}: no 個人番号 or 住民票コード printed", []


def _iso(v: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(v) if v else None
    except ValueError:
        return None


@check("CLOCK-VIRTUAL", "clock.virtual_time", "送信日時・処理日が仮想時計によること",
       "SentAt and BusinessDate come from the tenant's virtual clock, not the SUT's wall clock",
       {"properties": {}}, auto=True)
def _virtual_time(ctx: CheckContext, p: Mapping[str, Any]) -> tuple[bool, str, list[Evidence]]:
    """Each SUT message: virtual start − slack ≤ SentAt ≤ the virtual time it was recorded + slack, and
    BusinessDate not after the virtual day it was recorded on unless the harness gave that date itself (an
    OperationDate: 処理日 = 届出年月日, contract §3 Envelopes)."""
    start = _iso(ctx.virtual_start)
    given_dates: set[str] = set()  # dates the harness itself gave (OperationDate, its envelopes' BusinessDate)
    for rec in ctx.records:
        if (rec.sender_actor not in SUT_ACTORS or rec.message_type == "CounterRequest") and rec.root is not None:
            given_dates.update(t for t in (rec.root.findtext(f".//{q('OperationDate')}"),
                                           rec.root.findtext(f"{q('Header')}/{q('BusinessDate')}")) if t)
    ev: list[Evidence] = []
    n = 0
    slack = timedelta(seconds=CLOCK_SLACK)
    for rec in ctx.records:
        if rec.sender_actor not in SUT_ACTORS or rec.message_type == "CounterRequest" or rec.root is None:
            continue
        vt = _iso(rec.virtual_time)
        if vt is None:
            continue
        n += 1
        sent = _iso(rec.root.findtext(f"{q('Header')}/{q('SentAt')}"))
        if sent is not None and sent.tzinfo is not None and (
                sent > vt + slack or (start is not None and sent < start - slack)):
            ev.append(Evidence.of(rec, xpath="/j:Envelope/j:Header/j:SentAt",
                                  expected=f"between {ctx.virtual_start} and {vt.isoformat()}",
                                  actual=sent.isoformat(), note="SentAt is not on the virtual clock"))
        bd_text = rec.root.findtext(f"{q('Header')}/{q('BusinessDate')}")
        try:
            bd = date.fromisoformat(bd_text) if bd_text else None
        except ValueError:
            bd = None
        if bd is not None and bd > (vt + slack).date() and bd.isoformat() not in given_dates:
            ev.append(Evidence.of(rec, xpath="/j:Envelope/j:Header/j:BusinessDate",
                                  expected=f"≤ {vt.date().isoformat()}", actual=bd.isoformat(),
                                  note="BusinessDate after the virtual day"))
    if ev:
        return False, f"{len(ev)} header value(s) not from the virtual clock", ev[:20]
    return True, f"{n} message(s) dated by the virtual clock", []


__all__ = ["HONSEKI_WORDS", "NAME_PARTS", "Rec"]
