"""Rules beyond XSD: each a small named check with a stable code (like the OpenID suite's Condition classes).

The gateway runs every rule on every message, so the hot path is C-level: one ``iter()`` pass collects the
elements rules look at, attributes come from one precompiled XPath, and the character and data-class rules
search the document's UTF-8 text with compiled regexes. Elements are located (XPath, line) only once a
regex has hit, which in a conforming message never happens.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, cast

from lxml import etree

from conformance.errors import Finding, HarnessError
from conformance.identifiers import (
    current_juminhyo_algorithm,
    is_valid_juminhyo_code,
    is_valid_lg_code,
    is_valid_my_number,
    is_valid_residence_card_no,
    lg_code_check_digit,
    my_number_check_digit,
)
from conformance.wareki import from_wareki, parse_uncertain, to_wareki
from conformance.xmlsafe import NS

__all__ = [
    "RULES",
    "Rule",
    "RuleContext",
    "find_my_numbers",
    "run_rules",
    "xpath_of",
]

_MY_NUMBER = f"{{{NS}}}MyNumber"
_LG_CODE = f"{{{NS}}}LgCode"
_JUMINHYO = f"{{{NS}}}JuminhyoCode"
_RESCARD = f"{{{NS}}}ResidenceCardNo"
_WAREKI = f"{{{NS}}}Wareki"
_WESTERN = f"{{{NS}}}Western"
_UNCERTAIN = f"{{{NS}}}Uncertain"
_SENDER = f"{{{NS}}}Sender"
_RECEIVER = f"{{{NS}}}Receiver"
# Elements the rules look at, collected in one pass. Sender and Receiver share a key: the rules only want
# the envelope's parties (their @lgCode), in document order.
_INDEXED = (_MY_NUMBER, _LG_CODE, _JUMINHYO, _RESCARD, _WAREKI, _UNCERTAIN, _SENDER, _RECEIVER)
_PARTY = "party"
_KEY = {t: t for t in _INDEXED} | {_SENDER: _PARTY, _RECEIVER: _PARTY}
_LG_ATTRS = etree.XPath("//@lgCode")
_NONE: list[etree._Element] = []  # shared empty result: never appended to
_SECRET_CLASSES = frozenset({"yellow", "blue"})


# --- locating ---

def xpath_of(el: etree._Element, attr: str | None = None) -> str:
    """A readable XPath (prefix ``j`` for the project namespace) with positions only where names repeat."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        tag = node.tag
        if isinstance(tag, str):
            qn = etree.QName(tag)
            name = f"j:{qn.localname}" if qn.namespace == NS else (
                qn.localname if qn.namespace is None else f"*[local-name()='{qn.localname}']")
            same = [c for c in parent if c.tag == tag] if parent is not None else [node]
        else:
            name = "comment()" if tag is etree.Comment else "node()"
            same = [c for c in parent if c.tag is tag] if parent is not None else [node]
        if len(same) > 1:
            name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    path = "/" + "/".join(reversed(parts))
    return f"{path}/@{attr}" if attr else path


def _local(el: etree._Element) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else "comment"


# --- context ---

class RuleContext:
    """What a rule sees: the root, the arrow's data class (or None), the file, and shared lazily built views.

    ``raw``, when given, must be the bytes ``root`` was parsed from; the text rules then search it instead
    of serialising the tree (only when it is UTF-8 and holds no character reference that could hide a code
    point).
    """

    __slots__ = ("_index", "_text", "data_class", "file", "raw", "root")

    def __init__(self, root: etree._Element, data_class: str | None = None, file: str | None = None,
                 raw: bytes | None = None) -> None:
        self.root = root
        self.data_class = data_class
        self.file = file
        self.raw = raw
        self._index: dict[str, list[etree._Element]] | None = None
        self._text: bytes | None = None

    def elements(self, tag: str) -> list[etree._Element]:
        """Elements with Clark name ``tag`` among those rules index (one tree pass for all of them)."""
        idx = self._index
        if idx is None:
            idx = self._index = {}
            key = _KEY
            for el in self.root.iter(*_INDEXED):
                k = key[el.tag]
                found = idx.get(k)
                if found is None:
                    idx[k] = [el]
                else:
                    found.append(el)
        return idx.get(tag, _NONE)

    def utf8(self) -> bytes:
        """The document as UTF-8 with every character literal: the raw bytes where safe, else serialised."""
        text = self._text
        if text is None:
            raw = self.raw
            if (raw is not None and (b"&" not in raw or b"&#" not in raw)
                    and (self.root.getroottree().docinfo.encoding or "UTF-8").upper() in ("UTF-8", "UTF8")):
                text = raw
            else:
                text = etree.tostring(self.root, encoding="utf-8")
            self._text = text
        return text

    def finding(self, code: str, message: str, el: etree._Element, attr: str | None = None) -> Finding:
        line: int | None = getattr(el, "sourceline", None)
        return Finding(code, message, file=self.file, line=line, xpath=xpath_of(el, attr))


Check = Callable[[RuleContext], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check: ``code`` is stable (reports, scenarios and vendors refer to it)."""

    code: str
    title_ja: str
    title_en: str
    check: Check


RULES: dict[str, Rule] = {}


def rule(code: str, title_ja: str, title_en: str) -> Callable[[Check], Check]:
    """Register ``check`` under ``code`` in RULES (order of registration is the order of running)."""
    def register(fn: Check) -> Check:
        if code in RULES:
            raise ValueError(f"rule {code} is registered twice")
        RULES[code] = Rule(code, title_ja, title_en, fn)
        return fn
    return register


def run_rules(root: etree._Element, *, data_class: str | None = None, file: str | None = None,
              raw: bytes | None = None) -> list[Finding]:
    """Run every rule of RULES on ``root``; ``data_class`` is the arrow's (green/yellow/blue/none) or None."""
    ctx = RuleContext(root, data_class, file, raw)
    out: list[Finding] = []
    for r in RULES.values():
        found = r.check(ctx)
        if found:
            out.extend(found)
    return out


# --- identifiers ---

@rule("ID-MYNUMBER", "個人番号の検査用数字", "個人番号 check digit")
def _my_number(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_MY_NUMBER):
        text = el.text or ""
        if not is_valid_my_number(text):
            if len(text) == 12 and text.isascii() and text.isdigit():
                msg = (f"the check digit is {text[11]}, but the first 11 digits give "
                       f"{my_number_check_digit(text[:11])}: not a 個人番号")
            else:
                msg = f"a 個人番号 is 12 ASCII digits; this value has {len(text)} characters"
            out.append(ctx.finding("ID-MYNUMBER", msg, el))
    return out


def _lg_message(value: str) -> str:
    if len(value) == 6 and value.isascii() and value.isdigit():
        return f"{value}: the check digit is {value[5]}, expected {lg_code_check_digit(value[:5])}"
    return f"{value!r} is not a 6-digit 地方公共団体コード"


_LG_SEEN: dict[str, bool] = {}  # 地方公共団体コード repeat in every header: remember the verdicts (bounded)


def _lg_ok(value: str) -> bool:
    ok = _LG_SEEN.get(value)
    if ok is None:
        if len(_LG_SEEN) >= 8192:
            _LG_SEEN.clear()
        ok = _LG_SEEN[value] = is_valid_lg_code(value)
    return ok


@rule("ID-LGCODE", "地方公共団体コードの検査数字", "地方公共団体コード check digit")
def _lg_code(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_LG_CODE):
        text = el.text or ""
        if not _lg_ok(text):
            out.append(ctx.finding("ID-LGCODE", _lg_message(text), el))
    # The envelope's Sender/Receiver carry @lgCode; any other element with one is found by XPath, which
    # runs only when the document mentions lgCode more often than those two account for.
    carriers = ctx.elements(_PARTY)
    seen = 0
    for el in carriers:
        if el.get("lgCode") is not None:
            seen += 1
    if ctx.utf8().count(b"lgCode") > seen:
        carriers = [v.getparent() for v in cast(list[Any], _LG_ATTRS(ctx.root))]
    for el in carriers:
        value = el.get("lgCode")
        if value is not None and not _lg_ok(value):
            out.append(ctx.finding("ID-LGCODE", f"@lgCode {_lg_message(value)}", el, "lgCode"))
    return out


@rule("ID-JUMINHYO", "住民票コードの検査用数字（算式は未確認）",
      "住民票コード check digit (formula unverified)")
def _juminhyo(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_JUMINHYO):
        text = el.text or ""
        if not is_valid_juminhyo_code(text):
            algo = current_juminhyo_algorithm()
            if len(text) == 11 and text.isascii() and text.isdigit():
                msg = (f"the check digit {text[10]} does not fit algorithm {algo!r} "
                       f"(an unverified assumption; set JUKI_JUMINHYO_CHECK to change it)")
            else:
                msg = f"a 住民票コード is 11 ASCII digits; this value has {len(text)} characters"
            out.append(ctx.finding("ID-JUMINHYO", msg, el))
    return out


@rule("ID-RESCARD", "在留カード番号の形式", "在留カード番号 format")
def _residence_card(ctx: RuleContext) -> list[Finding]:
    return [
        ctx.finding("ID-RESCARD", f"{el.text or ''!r} is not a 在留カード番号 (英字2・数字8・英字2)", el)
        for el in ctx.elements(_RESCARD) if not is_valid_residence_card_no(el.text or "")
    ]


# --- dates ---

@lru_cache(maxsize=8192)
def _wareki(text: str) -> date | str:
    """from_wareki, cached (birth dates repeat); an error becomes its message."""
    try:
        return from_wareki(text)
    except HarnessError as e:
        return e.findings[0].message


@lru_cache(maxsize=4096)
def _uncertain(text: str) -> str | None:
    try:
        parse_uncertain(text)
    except HarnessError as e:
        return e.findings[0].message
    return None


@rule("DATE-WAREKI", "和暦の日付が実在すること", "和暦 date exists")
def _wareki_exists(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_WAREKI):
        d = _wareki(el.text or "")
        if isinstance(d, str):
            out.append(ctx.finding("DATE-WAREKI", d, el))
    return out


def _western(text: str) -> date | None:
    """The day of an xs:date (a time-zone suffix is ignored: the register's dates are Japanese days)."""
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def _disagreement(western: str, wareki: str) -> str | None:
    """Why a Western/Wareki pair denotes two days, or None (an unparsable side is another rule's finding)."""
    w = _wareki(wareki)
    d = _western(western)
    if isinstance(w, date) and d is not None and w != d:
        return (f"Western {d.isoformat()} is {to_wareki(d) if d.year >= 1868 else 'before 明治'}, "
                f"but Wareki {wareki} is {w.isoformat()}")
    return None


@rule("DATE-CONSISTENT", "西暦と和暦が同じ日を表すこと", "西暦 and 和暦 denote the same day")
def _consistent(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_WAREKI):
        sib = el.getprevious()
        tag = sib.tag if sib is not None else None
        while sib is not None and not isinstance(tag, str):  # step over comments
            sib = sib.getprevious()
            tag = sib.tag if sib is not None else None
        if sib is None or tag != _WESTERN:
            continue
        msg = _disagreement(sib.text or "", el.text or "")
        if msg is not None:
            out.append(ctx.finding("DATE-CONSISTENT", msg, el))
    return out


@rule("DATE-UNCERTAIN", "不詳日付の元号年が実在すること", "不詳 date is well formed and its era year exists")
def _uncertain_exists(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    for el in ctx.elements(_UNCERTAIN):
        msg = _uncertain(el.text or "")
        if msg is not None:
            out.append(ctx.finding("DATE-UNCERTAIN", msg, el))
    return out


# --- text scanning helpers ---

def _strings(root: etree._Element) -> Iterable[tuple[etree._Element, str | None, str]]:
    """Every string of the tree with where it sits: (element, attribute name or None, text).

    A tail is reported on its parent element (that is where the text is); comments are included.
    """
    for el in root.iter():
        if isinstance(el.tag, str):
            for name, value in el.attrib.items():
                yield el, etree.QName(name).localname, str(value)
        if el.text:
            yield el, None, el.text
        if el.tail and el is not root:
            parent = el.getparent()
            if parent is not None:
                yield parent, None, el.tail


def _where(el: etree._Element, attr: str | None) -> str:
    return f"@{attr} of {_local(el)}" if attr else _local(el)


# --- data class ---

_DIGIT = "0-9０-９"
_ALNUM = "0-9A-Za-z０-９Ａ-Ｚａ-ｚ"
_HYPHEN = "\\-\u2010-\u2015\u2212\uff0d\uff70\u30fc"
_SEP = " \t\u00a0\u3000" + _HYPHEN
# Prefilter: a run of 12 or more digits (ASCII or full-width), up to 3 separators apart. It starts with a
# character class, so the regex engine skips ahead at C speed; look-arounds and check digits run on hits only.
_TWELVE = re.compile(rf"[{_DIGIT}](?:[{_SEP}]{{0,3}}[{_DIGIT}]){{11,}}")
# A chain: digit groups joined by 1-3 separators, not glued to a letter or digit, directly or through one
# hyphen, so parts of identifiers such as "M-000000000010", hex serials or UUIDs are not chains (while
# "No 123456789018" and "123456789018 is" are).
_CHAIN = re.compile(
    rf"(?<![{_ALNUM}])(?<![{_ALNUM}][{_HYPHEN}])[{_DIGIT}]+(?:[{_SEP}]{{1,3}}[{_DIGIT}]+)*"
    rf"(?![{_ALNUM}])(?![{_HYPHEN}][{_ALNUM}])"
)
_GROUPS = re.compile(rf"[{_DIGIT}]+")
_TO_ASCII = str.maketrans("０１２３４５６７８９", "0123456789")


def find_my_numbers(text: str) -> list[str]:
    """Valid 個人番号 written in ``text``: 12 digits, ASCII or full-width, bare or split by separators.

    A chain of digit groups counts when all its digits together are 12, and any single group of exactly 12
    digits counts on its own ("03-1234-5678 123456789018"). A number with a wrong check digit is not a
    個人番号 and is not returned.
    """
    found: list[str] = []
    for m in _CHAIN.finditer(text):
        groups = [g.translate(_TO_ASCII) for g in _GROUPS.findall(m.group())]
        joined = "".join(groups)
        candidates = [joined] if len(joined) == 12 else [g for g in groups if len(g) == 12]
        found.extend(c for c in candidates if is_valid_my_number(c))
    return found


# Fast path on UTF-8 bytes. Stage 1: delete ASCII separators and every non-ASCII byte, map ASCII digits to
# "0" and anything else to "x"; without twelve "0" in a row no chain of ASCII digits can hold 12 digits.
# Stage 2 (translate keeps offsets): digit -> "0", ASCII separator -> "s", non-ASCII byte -> "m"; twelve "0"
# with at most 9 "s"/"m" bytes (3 separators of up to 3 bytes) between neighbours bounds every chain, and
# find_my_numbers runs on a window around each such run. Full-width digits take the exact path on the text.
_STAGE1 = bytes(0x30 if 0x30 <= i <= 0x39 else 0x78 for i in range(256))
_STAGE1_DELETE = b" \t-" + bytes(range(0x80, 0x100))
_STAGE2 = bytes(
    0x30 if 0x30 <= i <= 0x39 else 0x73 if i in b" \t-" else 0x6D if i >= 0x80 else 0x78 for i in range(256)
)
_RUN12 = re.compile(rb"0(?:[sm]{0,9}+0){11,}+")
_B_FULLWIDTH_DIGIT = re.compile(rb"\xef\xbc[\x90-\x99]")


def _my_numbers_in(b: bytes) -> bool:
    """Whether UTF-8 text holds a valid 個人番号: C-speed prefilters, then find_my_numbers near each hit."""
    if _B_FULLWIDTH_DIGIT.search(b) is not None:
        text = b.decode("utf-8", "replace")
        return any(find_my_numbers(text[max(0, m.start() - 2):m.end() + 2]) for m in _TWELVE.finditer(text))
    if b"000000000000" not in b.translate(_STAGE1, _STAGE1_DELETE):
        return False
    for m in _RUN12.finditer(b.translate(_STAGE2)):
        # The run starts and ends on an ASCII digit; 12 bytes each side hold the two characters the chain's
        # look-arounds need ("ignore" drops only a character the cut splits at the far ends).
        if find_my_numbers(b[max(0, m.start() - 12):m.end() + 12].decode("utf-8", "ignore")):
            return True
    return False


def _mask(n: str) -> str:
    return "********" + n[8:]


@rule("CLASS-MYNUMBER", "黄線・青線に個人番号を含まないこと", "no 個人番号 on a yellow or blue arrow")
def _class_my_number(ctx: RuleContext) -> list[Finding]:
    if ctx.data_class not in _SECRET_CLASSES or not _my_numbers_in(ctx.utf8()):
        return []
    out: list[Finding] = []
    for el, attr, value in _strings(ctx.root):
        for n in find_my_numbers(value):
            out.append(ctx.finding(
                "CLASS-MYNUMBER",
                f"a valid 個人番号 ({_mask(n)}) in {_where(el, attr)}: a {ctx.data_class} arrow "
                "must not carry 特定個人情報", el, attr))
    if not out:  # only in text the tree does not keep (a processing instruction): point at the document
        msg = f"a valid 個人番号 in the document of a {ctx.data_class} arrow"
        out.append(ctx.finding("CLASS-MYNUMBER", msg, ctx.root))
    return out


# --- characters ---

# UTF-8 lead bytes: EE = U+E000–EFFF (all PUA); EF 80–A3 = U+F000–F8FF; F3 B0–BF = plane 15; F4 = plane 16.
_B_PUA_EF = re.compile(rb"\xef[\x80-\xa3]")
_B_PUA_F3 = re.compile(rb"\xf3[\xb0-\xbf]")
_PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")


def _has_pua(b: bytes) -> bool:
    return (b"\xee" in b or b"\xf4" in b or (b"\xef" in b and _B_PUA_EF.search(b) is not None)
            or (b"\xf3" in b and _B_PUA_F3.search(b) is not None))


@rule("CHAR-PUA", "私用領域の文字を含まないこと", "no Private Use Area code point")
def _pua(ctx: RuleContext) -> list[Finding]:
    if not _has_pua(ctx.utf8()):
        return []
    out: list[Finding] = []
    for el, attr, value in _strings(ctx.root):
        hits = sorted({f"U+{ord(c):04X}" for c in _PUA.findall(value)})
        if hits:
            out.append(ctx.finding(
                "CHAR-PUA", f"Private Use Area code point {', '.join(hits)} in {_where(el, attr)}: it "
                "means nothing outside one vendor's system (use a standard character or an IVS)", el, attr))
    if not out:
        out.append(ctx.finding("CHAR-PUA", "Private Use Area code point in the document", ctx.root))
    return out


_B_VS_BMP = re.compile(rb"\xef\xb8[\x80-\x8f]")        # U+FE00–FE0F
_B_VS_SUP = re.compile(rb"\xf3\xa0[\x84-\x87]")        # U+E0100–E01EF
_VS_ONE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_NOT_BASE = frozenset({"Mn", "Mc", "Me", "Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def _ideograph(c: str) -> bool:
    o = ord(c)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


def _suspect_selector(b: bytes) -> bool:
    """Whether a variation selector in UTF-8 ``b`` follows something other than a CJK ideograph (IVS case)."""
    for lead, pattern in ((b"\xef", _B_VS_BMP), (b"\xf3", _B_VS_SUP)):
        if lead not in b:  # a one-byte membership test is a memchr: far cheaper than the regex scan
            continue
        for m in pattern.finditer(b):
            i = m.start()
            j = i - 1
            while j > 0 and j > i - 4 and 0x80 <= b[j] < 0xC0:  # back over continuation bytes
                j -= 1
            prev = b[max(j, 0):i].decode("utf-8", "replace")
            if len(prev) != 1 or not _ideograph(prev):
                return True
    return False


def _lone_selectors(value: str) -> list[str]:
    out = []
    for m in _VS_ONE.finditer(value):
        i = m.start()
        prev = value[i - 1] if i > 0 else None
        if prev is None or _VS_ONE.match(prev) or unicodedata.category(prev) in _NOT_BASE:
            out.append(f"U+{ord(m.group()):04X}" + ("" if prev is None else f" after U+{ord(prev):04X}"))
    return out


@rule("CHAR-VS", "異体字セレクタが基底文字に続くこと", "variation selector follows a base character")
def _variation_selectors(ctx: RuleContext) -> list[Finding]:
    if not _suspect_selector(ctx.utf8()):
        return []
    out: list[Finding] = []
    for el, attr, value in _strings(ctx.root):
        lone = _lone_selectors(value)
        if lone:
            out.append(ctx.finding(
                "CHAR-VS", f"variation selector without a base character in {_where(el, attr)}: "
                f"{'; '.join(lone)}", el, attr))
    return out
