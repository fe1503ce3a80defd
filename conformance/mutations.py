"""Named mutations of valid messages: each breaks exactly one rule, so a test or a negative scenario can say
which finding it expects (ID-*, CLASS-MYNUMBER, DATE-*, XSD-INVALID, XML-ENTITY, XML-DTD).

Every mutation takes the bytes of a valid envelope (usually from ``conformance.samples.sample``) and returns
new bytes; the input is never changed. A mutation that finds nothing to break raises ValueError: a silent
no-op would make a negative test pass for the wrong reason. The XML attacks need no input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from lxml import etree

from conformance.errors import HarnessError
from conformance.identifiers import is_valid_juminhyo_code, is_valid_lg_code, is_valid_my_number
from conformance.wareki import eras, from_wareki, to_wareki
from conformance.xmlsafe import NS, parse, q

__all__ = [
    "ATTACKS",
    "LEAK_NUMBER",
    "MUTATIONS",
    "bad_wareki",
    "billion_laughs",
    "break_check_digit",
    "external_dtd",
    "external_entity",
    "extra_element",
    "inconsistent_wareki",
    "leak_my_number",
    "mutate",
]

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
