"""Named mutations of valid messages: each breaks exactly one rule, so a test or a negative scenario can say
which finding it expects (ID-*, CLASS-MYNUMBER, DATE-*, XSD-INVALID, XML-ENTITY, XML-DTD).

Every mutation takes the bytes of a valid envelope (usually from ``conformance.samples.sample``) and returns
new bytes; the input is never changed. A mutation that finds nothing to break raises ValueError: a silent
no-op would make a negative test pass for the wrong reason. The XML attacks need no input.

**Traffic mutations** (``TRAFFIC``) are the other half: defects injected into what an SUT sends (or answers at
the counter), as a buggy SUT would, so the suite's power can be measured against ANY SUT, not only the
reference one. Each takes an envelope and returns the envelopes to deliver instead (``[]`` = dropped, two =
sent twice), or the input unchanged when it does not apply. The reference SUT's defects of the same names
call them from its outbox; ``juki-harness selftest --mutate`` installs them as a gateway hook
(:func:`install_traffic_mutation`) in front of a vendor's SUT.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from lxml import etree

from conformance.errors import HarnessError
from conformance.identifiers import is_valid_juminhyo_code, is_valid_lg_code, is_valid_my_number
from conformance.wareki import eras, from_wareki, to_wareki
from conformance.xmlsafe import NS, parse, q

__all__ = [
    "ATTACKS",
    "KINDS",
    "LEAK_NUMBER",
    "MUTATIONS",
    "TRAFFIC",
    "TrafficMutation",
    "apply_traffic",
    "bad_wareki",
    "billion_laughs",
    "break_check_digit",
    "by_kind",
    "external_dtd",
    "external_entity",
    "extra_element",
    "inconsistent_wareki",
    "install_traffic_mutation",
    "leak_my_number",
    "mutate",
]

#: The classes of defect a mutation (or a reference-SUT defect) belongs to, and what each means.
KINDS: dict[str, str] = {
    "missing-message": "a message the rule requires is not sent",
    "extra-message": "a message no rule asks for is sent",
    "wrong-order": "messages in an order the outbox rule forbids",
    "wrong-value": "a wrong value in a message or document",
    "data-class-leak": "特定個人情報 or 本籍 where the data class forbids it",
    "duplicate": "a duplicate without a RetryReason, or processed twice",
    "no-retry": "a message lost or resent wrongly after downtime",
    "accept-malformed": "a malformed or invalid message accepted",
    "document-missing-item": "a printed document lacks an item",
    "missing-check": "a check the law requires is not made",
    "wrong-arrow": "a message on the wrong arrow",
    "name-variant": "a name not character for character as registered (異体字, IVS, JIS X 0213, Latin)",
    "honseki-text": "本籍・筆頭者 as text in another field of a message that must not carry them",
    "restricted-print": "an accepted 第三者/代理人 document prints 個人番号 or 住民票コード",
    "seq-semantics": "Change/Seq not 1, 2, 3 … per person (start, gaps)",
    "wall-clock": "SentAt or BusinessDate from the SUT's clock, not the virtual clock",
    "generic-refusal": "a refusal with a generic code instead of the one the contract names",
    "person-order": "a person's consequences out of the contract's order",
    "missing-auth": "a surface accepts a wrong credential",
}


def by_kind(rows: Sequence[tuple[str, bool]]) -> dict[str, dict[str, Any]]:
    """Detection per class of defect: {kind: {defects, detected, rate, what}}, every known class listed."""
    out: dict[str, dict[str, Any]] = {}
    for kind in [*KINDS, *sorted({k for k, _ in rows} - set(KINDS))]:
        hits = [d for k, d in rows if k == kind]
        out[kind] = {"defects": len(hits), "detected": sum(hits),
                     "rate": round(sum(hits) / len(hits), 4) if hits else None, "what": KINDS.get(kind, "")}
    return out


#: A valid 個人番号 (the worked example of DOMAIN.md: 98320567321 → check digit 4).
LEAK_NUMBER = "983205673214"

_VALID: dict[str, Callable[[str], bool]] = {
    "MyNumber": is_valid_my_number,
    "LgCode": is_valid_lg_code,
    "JuminhyoCode": is_valid_juminhyo_code,
}
#: Where a leaked number reads as text someone typed: free text first, then names and places.
_TEXT_TARGETS = ("Remarks", "Detail", "Place", "Kanji", "Latin", "Kana", "NameKana", "Tsusho", "Town",
                 "Building", "KioskId", "Purpose", "HeadName", "Nationality")
#: IdType elements (any 12 digits are schema-valid there): a request key that *is* a 個人番号.
_ID_SUFFIXES = ("RequestNo", "NoticeNo", "OperationNo", "ApplicationNo", "ApplicationId", "CertificateNo",
                "QueryNo", "VerificationNo", "ChangeNo", "InfoNo", "RecordNo", "TransferNo", "ProvisionNo")


def _root(xml: bytes) -> etree._Element:
    return parse(xml)


def _out(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _body(root: etree._Element) -> etree._Element:
    body = root.find(q("Body"))
    if body is None or len(body) == 0:
        raise ValueError("not an envelope: no Body element")
    return body[0]


def break_check_digit(xml: bytes, local_name: str = "MyNumber") -> bytes:
    """Change the check digit of the first valid ``local_name`` (MyNumber, LgCode, JuminhyoCode) so it is
    wrong but the value keeps its length and digits: only ID-MYNUMBER / ID-LGCODE / ID-JUMINHYO can fire."""
    valid = _VALID.get(local_name)
    if valid is None:
        raise ValueError(f"no check digit to break in {local_name!r}; known: {', '.join(_VALID)}")
    root = _root(xml)
    for el in root.iter(q(local_name)):
        text = el.text or ""
        if not valid(text):
            continue
        for bump in range(1, 10):
            wrong = text[:-1] + str((int(text[-1]) + bump) % 10)
            if not valid(wrong):
                el.text = wrong
                return _out(root)
        raise ValueError(f"{local_name}: every check digit is accepted (a format-only algorithm?)")
    raise ValueError(f"no valid {local_name} element to break")


def leak_my_number(xml: bytes, number: str = LEAK_NUMBER) -> bytes:
    """Put a valid 個人番号 where a yellow or blue message must not have one: appended to free text or a
    name (Remarks, Detail, Place, Kanji ...) as "（個人番号 983205673214）", else as the value of a request
    number. Schema validity is kept, so CLASS-MYNUMBER is the finding the result must raise."""
    if not is_valid_my_number(number):
        raise ValueError(f"{number!r} is not a valid 個人番号: the leak would not be one")
    root = _root(xml)
    body = _body(root)
    for local in _TEXT_TARGETS:
        el = body.find(f".//{q(local)}")
        if el is not None and el.text:
            el.text = f"{el.text}（個人番号 {number}）"
            return _out(root)
    for el in body.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname.endswith(_ID_SUFFIXES) and len(el) == 0:
            el.text = number
            return _out(root)
    raise ValueError("no free-text, name or request-number element to leak a 個人番号 into")


def _wareki_pairs(root: etree._Element) -> list[tuple[etree._Element, etree._Element, date]]:
    """(Western, Wareki, day) of every JDate with both parts."""
    out = []
    for wareki in root.iter(q("Wareki")):
        western = wareki.getprevious()
        if western is None or western.tag != q("Western") or not western.text:
            continue
        try:
            d = date.fromisoformat(western.text[:10])
        except ValueError:
            continue
        out.append((western, wareki, d))
    return out


def _exists(text: str) -> bool:
    try:
        from_wareki(text)
    except HarnessError:
        return False
    return True


def _nonexistent(d: date) -> str | None:
    """A 和暦 text with the day and month of ``d`` that names no real day: the year counted in the era before
    (2019-05-01 → 平成31年5月1日, 1980-01-02 → 大正69年1月2日); None when no such text exists."""
    table = eras()
    for i, era in enumerate(table):
        if era.contains(d) and i > 0:
            prev = table[i - 1]
            y = d.year - prev.start.year + 1
            text = f"{prev.name}{'元' if y == 1 else y}年{d.month}月{d.day}日"
            if y <= 99 and not _exists(text):
                return text
    return None


def bad_wareki(xml: bytes) -> bytes:
    """Set a Wareki to a day that does not exist (e.g. 平成31年5月1日) while it still reads like its Western
    date (same month and day, the era the date was in just before): DATE-WAREKI must fire."""
    root = _root(xml)
    for _western, wareki, d in _wareki_pairs(root):
        text = _nonexistent(d)
        if text is not None:
            wareki.text = text
            return _out(root)
    for wareki in root.iter(q("Wareki")):  # no usable Western: a day no month has
        era = (wareki.text or "令和")[:2]
        wareki.text = f"{era}2年2月30日"
        return _out(root)
    raise ValueError("no Wareki element to break")


def inconsistent_wareki(xml: bytes) -> bytes:
    """Set a Wareki to a real day other than its Western date (the day after): DATE-CONSISTENT must fire."""
    root = _root(xml)
    for _western, wareki, d in _wareki_pairs(root):
        wareki.text = to_wareki(d + timedelta(days=1))
        return _out(root)
    raise ValueError("no JDate with both Western and Wareki")


def extra_element(xml: bytes, local_name: str = "Unexpected") -> bytes:
    """Append an element the schema does not declare to the body root: XSD-INVALID must fire."""
    root = _root(xml)
    body = _body(root)
    etree.SubElement(body, f"{{{NS}}}{local_name}").text = "スキーマにない要素"
    return _out(root)


_ENVELOPE_TAIL = (
    b'<Envelope xmlns="urn:juki-harness:1" version="1"><Header><MessageId>M-ATTACK</MessageId>'
    b'<MessageType>ErrorReport</MessageType><Sender actor="cs" lgCode="131016"/>'
    b'<Receiver actor="juki" lgCode="131016"/><SentAt>2026-03-30T10:00:00+09:00</SentAt>'
    b"<BusinessDate>2026-03-30</BusinessDate></Header><Body><ErrorReport><Finding><Code>%s</Code>"
    b"<Message>attack</Message></Finding></ErrorReport></Body></Envelope>"
)


def billion_laughs(levels: int = 10) -> bytes:
    """The billion-laughs document (nested entities, 10^levels expansions): XML-ENTITY, never expanded."""
    decl = [b'<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        refs = b"".join(b"&lol%d;" % (i - 1) for _ in range(10))
        decl.append(b'<!ENTITY lol%d "%s">' % (i, refs))
    dtd = b"<!DOCTYPE Envelope [" + b"".join(decl) + b"]>"
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + dtd + _ENVELOPE_TAIL % (b"&lol%d;" % (levels - 1))


def external_entity(target: str = "file:///etc/passwd") -> bytes:
    """An external entity (XXE) reading ``target`` into the message: XML-ENTITY, never resolved."""
    dtd = b'<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "' + target.encode() + b'">]>'
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + dtd + _ENVELOPE_TAIL % b"&xxe;"


def external_dtd(target: str = "http://127.0.0.1:9/evil.dtd") -> bytes:
    """A document type declaration pointing at an external DTD: XML-DTD, never fetched."""
    dtd = b'<!DOCTYPE Envelope SYSTEM "' + target.encode() + b'">'
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + dtd + _ENVELOPE_TAIL % b"DTD"


#: Mutations of a message by name, for scenarios ("mutate: break_check_digit", with keyword arguments).
MUTATIONS: dict[str, Callable[..., bytes]] = {
    "break_check_digit": break_check_digit,
    "leak_my_number": leak_my_number,
    "bad_wareki": bad_wareki,
    "inconsistent_wareki": inconsistent_wareki,
    "extra_element": extra_element,
}
#: Documents that replace the message outright (no input).
ATTACKS: dict[str, Callable[..., bytes]] = {
    "billion_laughs": billion_laughs,
    "external_entity": external_entity,
    "external_dtd": external_dtd,
}


def mutate(name: str, xml: bytes, **kwargs: Any) -> bytes:
    """Apply the mutation called ``name`` (a key of MUTATIONS or ATTACKS) to ``xml``."""
    if name in ATTACKS:
        return ATTACKS[name](**kwargs)
    if name not in MUTATIONS:
        raise ValueError(f"unknown mutation {name!r}; known: {', '.join([*MUTATIONS, *ATTACKS])}")
    return MUTATIONS[name](xml, **kwargs)


# ------------------------------------------------------------------------------------------- traffic mutations

JST = timezone(timedelta(hours=9))
_IVS = range(0xE0100, 0xE01F0)
#: 異体字 an SUT may wrongly "normalise" (beyond JIS X 0208 → JIS X 0208): the name is then not the person's.
NORMALISE: tuple[tuple[str, str], ...] = (
    ("髙", "高"), ("\U00020bb7", "吉"), ("\ufa11", "崎"), ("\ufa10", "塚"), ("邊", "辺"), ("邉", "辺"),
    ("齊", "斉"), ("齋", "斎"), ("濵", "浜"), ("栁", "柳"), ("德", "徳"), ("瀨", "瀬"), ("桒", "桑"),
    ("\U0002123d", "土"),
)
#: The other way round: an ordinary character replaced by its variant (渡辺→渡邊, 高橋→髙橋, 斉藤→齊藤).
VARIANTS: tuple[tuple[str, str], ...] = (
    ("辺", "邊"), ("高", "髙"), ("斉", "齊"), ("崎", "\ufa11"), ("浜", "濵"), ("吉", "\U00020bb7"),
    ("柳", "栁"), ("徳", "德"), ("瀬", "瀨"), ("桑", "桒"), ("塚", "\ufa10"), ("沢", "澤"), ("島", "嶋"),
)


def _env(data: bytes) -> tuple[etree._Element, etree._Element] | None:
    try:
        root = parse(data)
    except HarnessError:
        return None
    if root.tag != q("Envelope"):
        return None
    body = root.find(q("Body"))
    if body is None or len(body) == 0:
        return None
    return root, body[0]


def _names(body: etree._Element, local: str = "Kanji") -> list[etree._Element]:
    return [el for el in body.iter(q(local)) if el.getparent() is not None
            and el.getparent().tag == q("Name") and el.text]  # type: ignore[union-attr]


def _rewrite_name(data: bytes, change: Callable[[str], str], local: str = "Kanji") -> bytes:
    """Apply ``change`` to the first name (``Name/{local}``) it alters; unchanged input when none."""
    env = _env(data)
    if env is None:
        return data
    root, body = env
    for el in _names(body, local):
        new = change(el.text or "")
        if new != el.text:
            el.text = new
            return _out(root)
    return data


def _first_pair(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for a, b in pairs:
        if a in text:
            return text.replace(a, b, 1)
    return text


def ivs_dropped(data: bytes) -> bytes:
    """An IVS selector dropped from a name (葛󠄀西 → 葛西): the character is no longer the registered glyph."""
    return _rewrite_name(data, lambda t: "".join(c for c in t if ord(c) not in _IVS))


def itaiji_normalised(data: bytes) -> bytes:
    """A character beyond JIS X 0208 replaced by its ordinary form (髙橋 → 高橋, 山﨑 → 山崎, 𠮷田 → 吉田)."""
    return _rewrite_name(data, lambda t: _first_pair(t, NORMALISE))


def _variant(text: str) -> str:
    new = _first_pair(text, VARIANTS)
    if new != text:
        return new
    for i, c in enumerate(text):  # no listed pair: the first ideograph gets a glyph variant (an IVS) instead
        if "\u4e00" <= c <= "\u9fff" and (i + 1 >= len(text) or ord(text[i + 1]) not in _IVS):
            return text[:i + 1] + "\U000e0101" + text[i + 1:]
    return text


def itaiji_variant(data: bytes) -> bytes:
    """An ordinary character replaced by its variant (渡辺 → 渡邊, 高橋 → 髙橋, 斉藤 → 齊藤, else an IVS)."""
    return _rewrite_name(data, _variant)


def latin_recased(data: bytes) -> bytes:
    """A foreign resident's Latin name re-cased (WANG VAN ANH → Wang Van Anh): not as on the residence card."""
    return _rewrite_name(data, lambda t: t.title(), "Latin")


def honseki_in_text(data: bytes) -> bytes:
    """本籍・筆頭者 written as text into the address's building (the schema cannot see it)."""
    env = _env(data)
    if env is None:
        return data
    root, body = env
    for addr in body.iter(q("Address")):
        where = "".join(addr.findtext(q(x)) or "" for x in ("Prefecture", "City"))
        b = addr.find(q("Building"))
        if b is None:
            b = etree.SubElement(addr, q("Building"))
        head = next((el.text for el in _names(body)), "")
        b.text = f"{b.text or ''}（本籍 {where}1番地 筆頭者 {head}）"
        return _out(root)
    return data


def address_shifted(data: bytes) -> bytes:
    """The 番地 of the first address one off (5丁目12番 → 5丁目13番): not the registered address."""
    env = _env(data)
    if env is None:
        return data
    root, body = env
    for blk in body.iter(q("Block")):
        t = blk.text or ""
        for i in range(len(t) - 1, -1, -1):
            if t[i].isdigit():
                blk.text = t[:i] + str((int(t[i]) + 1) % 10) + t[i + 1:]
                return _out(root)
    return data


def seq_offset(data: bytes, by: int = 6) -> bytes:
    """``Change/Seq`` shifted by ``by`` (a first record that starts at Seq 7)."""
    env = _env(data)
    if env is None:
        return data
    root, body = env
    el = body.find(f"{q('Change')}/{q('Seq')}")
    if el is None or not (el.text or "").isdigit():
        return data
    el.text = str(int(el.text or "0") + by)
    return _out(root)


def _header_text(data: bytes, local: str, value: str) -> bytes:
    env = _env(data)
    if env is None:
        return data
    root, _ = env
    el = root.find(f"{q('Header')}/{q(local)}")
    if el is None:
        return data
    el.text = value
    return _out(root)


def sent_at_wall_clock(data: bytes) -> bytes:
    """``SentAt`` from the machine's clock instead of the tenant's virtual clock."""
    return _header_text(data, "SentAt", datetime.now(UTC).astimezone(JST).isoformat(timespec="seconds"))


def business_date_wall_clock(data: bytes) -> bytes:
    """``BusinessDate`` (処理日) from the machine's clock instead of the virtual business day."""
    return _header_text(data, "BusinessDate", datetime.now(UTC).astimezone(JST).date().isoformat())


_counter = itertools.count(1)


def duplicated_no_reason(data: bytes) -> list[bytes]:
    """Sent twice, the copy with a new MessageId and no RetryReason."""
    env = _env(data)
    if env is None:
        return [data]
    root, _ = env
    mid = root.find(f"{q('Header')}/{q('MessageId')}")
    if mid is None:
        return [data]
    mid.text = f"M-DUP{next(_counter):09d}"
    return [data, _out(root)]


def refusal_generic(data: bytes) -> bytes:
    """Every refusal (or not-found) with one generic code instead of the one the contract names."""
    env = _env(data)
    if env is None:
        return data
    root, body = env
    st = body.find(f"{q('Result')}/{q('Status')}")
    code = body.find(f"{q('Result')}/{q('Code')}")
    if st is None or st.text not in ("refused", "not-found") or code is None:
        return data
    code.text = "REFUSED"
    return _out(root)


def dropped(data: bytes) -> list[bytes]:
    """Acknowledged (202) but never delivered: the message is lost."""
    return []


def held_for_swap(data: bytes) -> list[bytes]:
    """Held back and sent after the SUT's next message: two messages swapped."""
    return [data]


@dataclass(frozen=True, slots=True)
class TrafficMutation:
    """A defect of an SUT, as a rewrite of what it sends: which types, which class of defect, the rewrite."""

    name: str
    kind: str
    types: frozenset[str] | None  # message types it rewrites (None = every type)
    fn: Callable[[bytes], bytes | list[bytes]]
    where: str = "send"  # send = SUT → gateway; answer = the SUT's counter answers
    description: str = ""
    swap: bool = False  # hold the message back until the SUT's next one has gone


def _t(name: str, kind: str, types: str | None, fn: Callable[[bytes], bytes | list[bytes]],
       where: str = "send", swap: bool = False) -> tuple[str, TrafficMutation]:
    ts = frozenset(types.split()) if types else None
    return name, TrafficMutation(name, kind, ts, fn, where, (fn.__doc__ or "").strip().splitlines()[0], swap)


_IDENTITY_TYPES = ("IdentityNotice ResidentTransfer WideAreaCopyInfo MoveOutCertInfo CardIssuanceRequest "
                   "NumberGenerationRequest AddresseeRecord KosekiEntryNotice")
TRAFFIC: dict[str, TrafficMutation] = dict([
    _t("ivs-dropped", "name-variant", _IDENTITY_TYPES, ivs_dropped),
    _t("itaiji-normalised", "name-variant", _IDENTITY_TYPES, itaiji_normalised),
    _t("itaiji-variant", "name-variant", _IDENTITY_TYPES, itaiji_variant),
    _t("latin-recased", "name-variant", _IDENTITY_TYPES, latin_recased),
    _t("honseki-in-text", "honseki-text", "WideAreaCopyInfo", honseki_in_text),
    _t("address-shifted", "wrong-value", "WideAreaCopyInfo IdentityNotice", address_shifted),
    _t("seq-offset", "seq-semantics", "IdentityNotice", seq_offset),
    _t("sent-at-wall-clock", "wall-clock", None, sent_at_wall_clock),
    _t("business-date-wall-clock", "wall-clock", None, business_date_wall_clock),
    _t("duplicated-no-reason", "duplicate", "IdentityNotice", duplicated_no_reason),
    _t("refusal-generic", "generic-refusal", "CounterResult", refusal_generic, "answer"),
    _t("document-name-variant", "name-variant", "CounterResult", itaiji_variant, "answer"),
    _t("drop-identity-notice", "missing-message", "IdentityNotice", dropped),
    _t("drop-resident-transfer", "missing-message", "ResidentTransfer", dropped),
    _t("swap-identity-notice", "wrong-order", "IdentityNotice", held_for_swap, swap=True),
])


def apply_traffic(name: str, message_type: str | None, data: bytes) -> list[bytes]:
    """The envelopes to deliver instead of ``data`` under traffic mutation ``name``."""
    m = TRAFFIC[name]
    if m.types is not None and message_type not in m.types:
        return [data]
    out = m.fn(data)
    return out if isinstance(out, list) else [out]


def _message_type(data: bytes) -> str | None:
    env = _env(data)
    if env is None:
        return None
    return env[0].findtext(f"{q('Header')}/{q('MessageType')}")


def install_traffic_mutation(gateway: Any, name: str,
                             outcome: Callable[[int, str | None], Any]) -> Callable[[], None]:
    """Hook mutation ``name`` into a running gateway: what the SUT sends (``Gateway.submit`` with the SUT's
    credential) or answers at the counter (``Gateway.counter``) is rewritten before the gateway sees it.
    Returns a function that removes the hook. The gateway itself, its validation and trace are unchanged.
    ``outcome(status, message_id)`` builds the gateway's answer (the caller passes the gateway's ``Outcome``:
    this module is part of the contract and does not import the gateway)."""
    m = TRAFFIC[name]
    sut_actors = frozenset({"juki", "counter"})
    if m.where == "answer":
        original_counter: Callable[..., Awaitable[Any]] = gateway.counter

        async def counter(data: bytes, tenant: str | None) -> Any:
            out = await original_counter(data, tenant)
            body = getattr(out, "body", None)
            if isinstance(body, bytes | bytearray) and body:
                new = apply_traffic(name, _message_type(bytes(body)), bytes(body))
                if new and new[0] != body:
                    import dataclasses

                    out = dataclasses.replace(out, body=new[0])
            return out

        gateway.counter = counter
        return lambda: delattr(gateway, "counter")
    original: Callable[..., Awaitable[Any]] = gateway.submit
    held: list[tuple[bytes, frozenset[str], dict[str, Any]]] = []

    def acknowledged(data: bytes) -> Any:
        """The 202 a gateway gives an async message it took (and, here, will not deliver now)."""
        env = _env(data)
        mid = env[0].findtext(f"{q('Header')}/{q('MessageId')}") if env is not None else None
        return outcome(202, mid)

    async def submit(data: bytes, *, actors: frozenset[str] | None, **kw: Any) -> Any:
        if actors is None or not (actors & sut_actors):
            return await original(data, actors=actors, **kw)
        mtype = _message_type(data)
        applies = m.types is None or mtype in m.types
        if m.swap and applies and not held:
            held.append((data, actors, kw))
            return acknowledged(data)
        outs = apply_traffic(name, mtype, data)
        if not outs:
            return acknowledged(data)
        first = await original(outs[0], actors=actors, **kw)
        for extra in outs[1:]:
            await original(extra, actors=actors, **kw)
        while held:  # the message held back goes after this one: the two are swapped
            h_data, h_actors, h_kw = held.pop()
            await original(h_data, actors=h_actors, **h_kw)
        return first

    gateway.submit = submit
    return lambda: delattr(gateway, "submit")
