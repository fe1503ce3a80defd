"""Rules beyond XSD: each a small named check with a stable code (like the OpenID suite's Condition classes).

The gateway runs every rule on every message, so they run as one compiled pass: a single ``iter()`` over
the elements any rule looks at, a tag -> handler dispatch table, and handlers that return a message only when
an element fails. The character and data-class rules search the document's UTF-8 text with compiled regexes.
Elements are located (XPath, line) only for the findings that are listed, after the pass, and at most
``max_findings`` are listed per document (then one VAL-TRUNCATED finding says how many more there were), so
the work is bounded by the size of the document whatever it holds.
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
    "MAX_FINDINGS",
    "MAX_MESSAGE",
    "RULES",
    "TRUNCATED",
    "Rule",
    "RuleContext",
    "clip",
    "find_my_numbers",
    "run_rules",
    "run_rules_counted",
    "truncated",
    "xpath_of",
]

MAX_FINDINGS = 50  # findings listed per document; the rest are counted in one VAL-TRUNCATED finding
MAX_MESSAGE = 500  # characters of a finding's message (a value quoted in it is cut, never the whole 2 MB)
TRUNCATED = "VAL-TRUNCATED"

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
_CACHED_LEN = 64  # only short values are remembered: a cache must never hold an attacker's megabyte


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut (messages quote values)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _shown(value: str, limit: int = 40) -> str:
    """repr of a value quoted in a message, cut to ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


# --- locating ---

_WIDE = 32  # above this many children, same-name positions are counted by libxml2 (C), not in Python
_BEFORE = etree.XPath("count(preceding-sibling::*[local-name() = $l and namespace-uri() = $n])")
_AFTER = etree.XPath("boolean(following-sibling::*[local-name() = $l and namespace-uri() = $n])")


def _position(node: etree._Element, parent: etree._Element) -> int | None:
    """1-based position of ``node`` among its same-named siblings, or None when its name is unique there."""
    tag = node.tag
    if isinstance(tag, str) and len(parent) > _WIDE:
        qn = etree.QName(tag)
        ns = qn.namespace or ""
        before = int(cast(float, _BEFORE(node, l=qn.localname, n=ns)))
        repeated = before > 0 or bool(_AFTER(node, l=qn.localname, n=ns))
        return before + 1 if repeated else None
    # A comment cannot be an XPath context node: its position is counted here (findings rarely sit on one).
    same = [c for c in parent if c.tag == tag]  # a comment's tag is a function: == is identity there
    return same.index(node) + 1 if len(same) > 1 else None


def xpath_of(el: etree._Element, attr: str | None = None) -> str:
    """A readable XPath (prefix ``j`` for the project namespace) with positions only where names repeat.

    Linear in the number of siblings along the path, counted in C for wide parents (a flood of siblings
    must not make locating a few findings quadratic).
    """
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        tag = node.tag
        if isinstance(tag, str):
            qn = etree.QName(tag)
            name = f"j:{qn.localname}" if qn.namespace == NS else (
                qn.localname if qn.namespace is None else f"*[local-name()='{qn.localname}']")
        else:
            name = "comment()" if tag is etree.Comment else "node()"
        pos = _position(node, parent) if parent is not None else None
        if pos is not None:
            name += f"[{pos}]"
        parts.append(name)
        node = parent
    path = "/" + "/".join(reversed(parts))
    return f"{path}/@{attr}" if attr else path


def _local(el: etree._Element) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else "comment"


# --- context ---

_DECLARED = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


_UTF8_DECLARATIONS = (b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0" encoding="UTF-8"?>')


def _utf8_declared(raw: bytes) -> bool:
    """Whether ``raw`` is UTF-8 by its XML declaration (none, or one that says UTF-8)."""
    if raw.startswith(_UTF8_DECLARATIONS) or b"encoding" not in raw[:200]:
        return True
    m = _DECLARED.match(raw.removeprefix(b"\xef\xbb\xbf"))
    return m is None or m.group(1).lower() in (b"utf-8", b"utf8")

class RuleContext:
    """What a rule sees: the root, the arrow's data class (or None), the file, and shared lazily built views.

    ``raw``, when given, must be the bytes ``root`` was parsed from; the text rules then search it instead
    of serialising the tree (only when it is UTF-8 and holds no character reference that could hide a code
    point).
    """

    __slots__ = ("_index", "_text", "data_class", "file", "lg_parties", "raw", "root")

    def __init__(self, root: etree._Element, data_class: str | None = None, file: str | None = None,
                 raw: bytes | None = None) -> None:
        self.root = root
        self.data_class = data_class
        self.file = file
        self.raw = raw
        self.lg_parties = 0  # Sender/Receiver elements with an @lgCode seen by the pass
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
            # "&" first: a one-byte search is a memchr, far cheaper than looking for "&#".
            if raw is not None and (b"&" not in raw or b"&#" not in raw) and _utf8_declared(raw):
                text = raw
            else:
                text = etree.tostring(self.root, encoding="utf-8")
            self._text = text
        return text

    def finding(self, code: str, message: str, el: etree._Element, attr: str | None = None) -> Finding:
        line: int | None = getattr(el, "sourceline", None)
        return Finding(code, clip(message), file=self.file, line=line, xpath=xpath_of(el, attr))


Check = Callable[[RuleContext], Iterable[Finding]]
# An element handler: the message when ``el`` fails the rule, else None. It must not locate anything.
OnElement = Callable[[RuleContext, etree._Element], str | None]
# A document-level part: None when its cheap prefilter clears the document, else an iterable of
# (element, attribute or None, message) for each failing place, in order.
Places = Iterable[tuple[etree._Element, str | None, str]]
OnDocument = Callable[[RuleContext], Places | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check: ``code`` is stable (reports, scenarios and vendors refer to it).

    ``check`` runs this rule alone; ``run_rules`` runs all of them in one pass over the tree.
    """

    code: str
    title_ja: str
    title_en: str
    check: Check


@dataclass(frozen=True, slots=True)
class _Part:
    """One part of a rule: findings go to its own slot; slots are listed in registration order."""

    code: str
    attr: str | None
    tags: tuple[str, ...]             # element handler: the tags it is dispatched on
    on_element: OnElement | None
    on_document: OnDocument | None    # document-level part: runs after the pass


RULES: dict[str, Rule] = {}
_PARTS: list[_Part] = []


def _register(code: str, title_ja: str, title_en: str) -> None:
    if code in RULES:
        raise ValueError(f"rule {code} is registered twice")
    RULES[code] = Rule(code, title_ja, title_en, lambda ctx: run_rules_counted(ctx, None, only=code)[0])


def element_rule(code: str, title_ja: str, title_en: str, *tags: str,
                 attr: str | None = None) -> Callable[[OnElement], OnElement]:
    """Register an element handler for ``tags`` under ``code`` (a second part of a code adds no new rule)."""
    def register(fn: OnElement) -> OnElement:
        if code not in RULES:
            _register(code, title_ja, title_en)
        _PARTS.append(_Part(code, attr, tags, fn, None))
        _DISPATCH.clear()
        return fn
    return register


def document_rule(code: str, title_ja: str, title_en: str) -> Callable[[OnDocument], OnDocument]:
    """Register a document-level part under ``code`` (runs after the element pass, in registration order)."""
    def register(fn: OnDocument) -> OnDocument:
        if code not in RULES:
            _register(code, title_ja, title_en)
        _PARTS.append(_Part(code, None, (), None, fn))
        _DISPATCH.clear()
        return fn
    return register


# (only) -> (tags to iterate, tag -> ((slot, handler), ...), ((slot, document part), ...))
_Plan = tuple[tuple[str, ...], dict[str, tuple[tuple[int, OnElement], ...]], tuple[tuple[int, OnDocument], ...]]
_DISPATCH: dict[str | None, _Plan] = {}


def _plan(only: str | None) -> _Plan:
    """The compiled dispatch of every part (or of rule ``only``'s parts), built once."""
    plan = _DISPATCH.get(only)
    if plan is None:
        table: dict[str, list[tuple[int, OnElement]]] = {}
        docs: list[tuple[int, OnDocument]] = []
        for slot, part in enumerate(_PARTS):
            if only is not None and part.code != only:
                continue
            if part.on_element is not None:
                for tag in part.tags:
                    table.setdefault(tag, []).append((slot, part.on_element))
            if part.on_document is not None:
                docs.append((slot, part.on_document))
        plan = _DISPATCH[only] = (tuple(table), {t: tuple(h) for t, h in table.items()}, tuple(docs))
    return plan


def truncated(dropped: int, limit: int, file: str | None = None) -> Finding:
    """The summary finding that stands for ``dropped`` findings beyond the ``limit`` listed."""
    return Finding(TRUNCATED, f"{dropped} more finding(s) not listed: at most {limit} are listed per document",
                   file=file)


def run_rules_counted(ctx: RuleContext, limit: int | None = MAX_FINDINGS,
                      only: str | None = None) -> tuple[list[Finding], int]:
    """Every rule (or rule ``only``) in one pass: (the first ``limit`` findings, how many more there were).

    Findings keep the order of registration (rule by rule, document order within a part). Per slot at most
    ``limit`` places are kept, so memory is bounded; only kept places are located.
    """
    tags, table, docs = _plan(only)
    cap = limit if limit is not None else -1
    slots: dict[int, list[tuple[etree._Element, str | None, str]]] = {}
    dropped = 0
    if tags:
        for el in ctx.root.iter(*tags):
            for slot, handler in table[el.tag]:
                msg = handler(ctx, el)
                if msg is not None:
                    kept = slots.setdefault(slot, [])
                    if len(kept) == cap:
                        dropped += 1
                    else:
                        kept.append((el, _PARTS[slot].attr, msg))
    for slot, part in docs:
        places = part(ctx)
        if places is None:
            continue
        for el, attr, msg in places:
            kept = slots.setdefault(slot, [])
            if len(kept) == cap:
                dropped += 1
            else:
                kept.append((el, attr, msg))
    out: list[Finding] = []
    for slot in sorted(slots):
        code = _PARTS[slot].code
        for el, attr, msg in slots[slot]:
            if len(out) == cap:
                dropped += 1
            else:
                out.append(ctx.finding(code, msg, el, attr))
    return out, dropped


def run_rules(root: etree._Element, *, data_class: str | None = None, file: str | None = None,
              raw: bytes | None = None, max_findings: int | None = MAX_FINDINGS) -> list[Finding]:
    """Run every rule of RULES on ``root``; ``data_class`` is the arrow's (green/yellow/blue/none) or None.

    At most ``max_findings`` findings are listed (None: all), then one VAL-TRUNCATED finding counts the rest.
    """
    out, dropped = run_rules_counted(RuleContext(root, data_class, file, raw), max_findings)
    if dropped and max_findings is not None:
        out.append(truncated(dropped, max_findings, file))
    return out


# --- identifiers ---

_ID_MYNUMBER = ("ID-MYNUMBER", "個人番号の検査用数字", "個人番号 check digit")


@element_rule(*_ID_MYNUMBER, _MY_NUMBER)
def _my_number(ctx: RuleContext, el: etree._Element) -> str | None:
    text = el.text or ""
    if is_valid_my_number(text):
        return None
    if len(text) == 12 and text.isascii() and text.isdigit():
        return (f"the check digit is {text[11]}, but the first 11 digits give "
                f"{my_number_check_digit(text[:11])}: not a 個人番号")
    return f"a 個人番号 is 12 ASCII digits; this value has {len(text)} characters"


def _lg_message(value: str) -> str:
    if len(value) == 6 and value.isascii() and value.isdigit():
        return f"{value}: the check digit is {value[5]}, expected {lg_code_check_digit(value[:5])}"
    return f"{_shown(value)} is not a 6-digit 地方公共団体コード"


_LG_SEEN: dict[str, bool] = {}  # 地方公共団体コード repeat in every header: remember the verdicts (bounded)


def _lg_ok(value: str) -> bool:
    ok = _LG_SEEN.get(value)
    if ok is None:
        ok = is_valid_lg_code(value)
        if len(value) <= _CACHED_LEN:
            if len(_LG_SEEN) >= 8192:
                _LG_SEEN.clear()
            _LG_SEEN[value] = ok
    return ok


_ID_LGCODE = ("ID-LGCODE", "地方公共団体コードの検査数字", "地方公共団体コード check digit")


@element_rule(*_ID_LGCODE, _LG_CODE)
def _lg_code(ctx: RuleContext, el: etree._Element) -> str | None:
    text = el.text or ""
    return None if _lg_ok(text) else _lg_message(text)


@element_rule(*_ID_LGCODE, _SENDER, _RECEIVER, attr="lgCode")
def _party_lg_code(ctx: RuleContext, el: etree._Element) -> str | None:
    value = el.get("lgCode")
    if value is None:
        return None
    ctx.lg_parties += 1
    return None if _lg_ok(value) else f"@lgCode {_lg_message(value)}"


@document_rule(*_ID_LGCODE)
def _other_lg_codes(ctx: RuleContext) -> Places | None:
    """@lgCode on elements other than the envelope's parties, found by XPath, which runs only when the
    document mentions lgCode more often than the parties the pass saw account for."""
    if ctx.utf8().count(b"lgCode") <= ctx.lg_parties:
        return None
    return _other_lg_places(ctx)


def _other_lg_places(ctx: RuleContext) -> Places:
    for value in cast(list[Any], _LG_ATTRS(ctx.root)):
        el = value.getparent()
        if el.tag not in _PARTY_TAGS and not _lg_ok(str(value)):
            yield el, "lgCode", f"@lgCode {_lg_message(str(value))}"


_PARTY_TAGS = frozenset({_SENDER, _RECEIVER})


_ID_JUMINHYO = ("ID-JUMINHYO", "住民票コードの検査用数字（算式は未確認）",
                "住民票コード check digit (formula unverified)")


@element_rule(*_ID_JUMINHYO, _JUMINHYO)
def _juminhyo(ctx: RuleContext, el: etree._Element) -> str | None:
    text = el.text or ""
    if is_valid_juminhyo_code(text):
        return None
    algo = current_juminhyo_algorithm()
    if len(text) == 11 and text.isascii() and text.isdigit():
        return (f"the check digit {text[10]} does not fit algorithm {algo!r} "
                f"(an unverified assumption; set JUKI_JUMINHYO_CHECK to change it)")
    return f"a 住民票コード is 11 ASCII digits; this value has {len(text)} characters"


@element_rule("ID-RESCARD", "在留カード番号の形式", "在留カード番号 format", _RESCARD)
def _residence_card(ctx: RuleContext, el: etree._Element) -> str | None:
    text = el.text or ""
    if is_valid_residence_card_no(text):
        return None
    return f"{_shown(text)} is not a 在留カード番号 (英字2・数字8・英字2)"


# --- dates ---

@lru_cache(maxsize=8192)
def _wareki_cached(text: str) -> date | str:
    try:
        return from_wareki(text)
    except HarnessError as e:
        return e.findings[0].message


def _wareki(text: str) -> date | str:
    """from_wareki, cached for short texts (birth dates repeat); an error becomes its message."""
    if len(text) <= _CACHED_LEN:
        return _wareki_cached(text)
    return f"{_shown(text)} is not a 和暦 date like 昭和55年1月2日 (元号・年・月・日)"


@lru_cache(maxsize=4096)
def _uncertain_cached(text: str) -> str | None:
    try:
        parse_uncertain(text)
    except HarnessError as e:
        return e.findings[0].message
    return None


def _uncertain(text: str) -> str | None:
    if len(text) <= _CACHED_LEN:
        return _uncertain_cached(text)
    return f"{_shown(text)} is not a 不詳 date"


@element_rule("DATE-WAREKI", "和暦の日付が実在すること", "和暦 date exists", _WAREKI)
def _wareki_exists(ctx: RuleContext, el: etree._Element) -> str | None:
    d = _wareki(el.text or "")
    return d if isinstance(d, str) else None


def _western(text: str) -> date | None:
    """The day of an xs:date (a time-zone suffix is ignored: the register's dates are Japanese days)."""
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def _disagreement_cached(western: str, wareki: str) -> str | None:
    w = _wareki(wareki)
    d = _western(western)
    if isinstance(w, date) and d is not None and w != d:
        return (f"Western {d.isoformat()} is {to_wareki(d) if d.year >= 1868 else 'before 明治'}, "
                f"but Wareki {wareki} is {w.isoformat()}")
    return None


def _disagreement(western: str, wareki: str) -> str | None:
    """Why a Western/Wareki pair denotes two days, or None (an unparsable side is another rule's finding)."""
    if len(western) > _CACHED_LEN or len(wareki) > _CACHED_LEN:
        return None  # a long side does not parse: DATE-WAREKI or the schema says so
    return _disagreement_cached(western, wareki)


@element_rule("DATE-CONSISTENT", "西暦と和暦が同じ日を表すこと", "西暦 and 和暦 denote the same day", _WAREKI)
def _consistent(ctx: RuleContext, el: etree._Element) -> str | None:
    sib = el.getprevious()
    tag = sib.tag if sib is not None else None
    while sib is not None and not isinstance(tag, str):  # step over comments
        sib = sib.getprevious()
        tag = sib.tag if sib is not None else None
    if sib is None or tag != _WESTERN:
        return None
    return _disagreement(sib.text or "", el.text or "")


@element_rule("DATE-UNCERTAIN", "不詳日付の元号年が実在すること", "不詳 date is well formed and its era year exists",
              _UNCERTAIN)
def _uncertain_exists(ctx: RuleContext, el: etree._Element) -> str | None:
    return _uncertain(el.text or "")


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


@document_rule("CLASS-MYNUMBER", "黄線・青線に個人番号を含まないこと", "no 個人番号 on a yellow or blue arrow")
def _class_my_number(ctx: RuleContext) -> Places | None:
    if ctx.data_class not in _SECRET_CLASSES or not _my_numbers_in(ctx.utf8()):
        return None
    return _my_number_places(ctx)


def _my_number_places(ctx: RuleContext) -> Places:
    found = False
    for el, attr, value in _strings(ctx.root):
        for n in find_my_numbers(value):
            found = True
            yield el, attr, (f"a valid 個人番号 ({_mask(n)}) in {_where(el, attr)}: a {ctx.data_class} arrow "
                             "must not carry 特定個人情報")
    if not found:  # only in text the tree does not keep (a processing instruction): point at the document
        yield ctx.root, None, f"a valid 個人番号 in the document of a {ctx.data_class} arrow"


# --- characters ---

# UTF-8 lead bytes: EE = U+E000–EFFF (all PUA); EF 80–A3 = U+F000–F8FF; F3 B0–BF = plane 15; F4 = plane 16.
_PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")


_STEPS = 16  # lead bytes looked at one by one; beyond that a compiled regex scans the rest at C speed
_PATTERNS: dict[tuple[bytes, int, int], re.Pattern[bytes]] = {}


def _pattern(lead: bytes, low: int, high: int) -> re.Pattern[bytes]:
    key = (lead, low, high)
    pattern = _PATTERNS.get(key)
    if pattern is None:
        pattern = _PATTERNS[key] = re.compile(re.escape(lead) + b"[" + re.escape(bytes([low])) + b"-"
                                              + re.escape(bytes([high])) + b"]")
    return pattern


def _follows(b: bytes, lead: bytes, low: int, high: int) -> bool:
    """Whether some ``lead`` byte in ``b`` is followed by a byte in [low, high]: memchr jumps for the first
    few leads (an ordinary document has none or a handful), a compiled regex for a document full of them."""
    i = b.find(lead)
    last = len(b) - 1
    steps = 0
    while 0 <= i < last:
        if low <= b[i + 1] <= high:
            return True
        steps += 1
        if steps == _STEPS:
            return _pattern(lead, low, high).search(b, i + 1) is not None
        i = b.find(lead, i + 1)
    return False


def _has_pua(b: bytes) -> bool:
    return (b"\xee" in b or b"\xf4" in b or (b"\xef" in b and _follows(b, b"\xef", 0x80, 0xA3))
            or (b"\xf3" in b and _follows(b, b"\xf3", 0xB0, 0xBF)))


@document_rule("CHAR-PUA", "私用領域の文字を含まないこと", "no Private Use Area code point")
def _pua(ctx: RuleContext) -> Places | None:
    return _pua_places(ctx) if _has_pua(ctx.utf8()) else None


def _pua_places(ctx: RuleContext) -> Places:
    found = False
    for el, attr, value in _strings(ctx.root):
        hits = sorted({f"U+{ord(c):04X}" for c in _PUA.findall(value)})
        if hits:
            found = True
            shown = ", ".join(hits[:8]) + (f" and {len(hits) - 8} more" if len(hits) > 8 else "")
            yield el, attr, (f"Private Use Area code point {shown} in {_where(el, attr)}: it means nothing "
                             "outside one vendor's system (use a standard character or an IVS)")
    if not found:
        yield ctx.root, None, "Private Use Area code point in the document"


_VS_ONE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_NOT_BASE = frozenset({"Mn", "Mc", "Me", "Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def _ideograph(c: str) -> bool:
    o = ord(c)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


# Variation selectors in UTF-8: EF B8 80–8F = U+FE00–FE0F; F3 A0 84–87 = U+E0100–E01EF.
_SELECTORS = ((b"\xef", 0xB8, 0x80, 0x8F), (b"\xf3", 0xA0, 0x84, 0x87))
_SELECTOR_PATTERNS = {b"\xef": re.compile(rb"\xef\xb8[\x80-\x8f]"), b"\xf3": re.compile(rb"\xf3\xa0[\x84-\x87]")}


def _suspect_at(b: bytes, i: int) -> bool:
    """Whether the variation selector at ``i`` follows something other than a CJK ideograph."""
    j = i - 1
    while j > 0 and j > i - 4 and 0x80 <= b[j] < 0xC0:  # back over continuation bytes
        j -= 1
    prev = b[max(j, 0):i].decode("utf-8", "replace")
    return len(prev) != 1 or not _ideograph(prev)


def _suspect_selector(b: bytes) -> bool:
    """Whether a variation selector in UTF-8 ``b`` follows something other than a CJK ideograph (IVS case).

    Lead bytes are found with one-byte ``find`` (a memchr; a two-byte needle is many times slower); past a
    few leads that are no selector, a compiled regex finds the selectors at C speed.
    """
    last = len(b) - 2
    for lead, second, low, high in _SELECTORS:
        i = b.find(lead)
        steps = 0
        while 0 <= i < last:
            if b[i + 1] == second and low <= b[i + 2] <= high:
                if _suspect_at(b, i):
                    return True
            else:
                steps += 1
                if steps == _STEPS:
                    if any(_suspect_at(b, m.start()) for m in _SELECTOR_PATTERNS[lead].finditer(b, i)):
                        return True
                    break
            i = b.find(lead, i + 1)
    return False


def _lone_selectors(value: str) -> list[str]:
    out = []
    for m in _VS_ONE.finditer(value):
        i = m.start()
        prev = value[i - 1] if i > 0 else None
        if prev is None or _VS_ONE.match(prev) or unicodedata.category(prev) in _NOT_BASE:
            out.append(f"U+{ord(m.group()):04X}" + ("" if prev is None else f" after U+{ord(prev):04X}"))
    return out


@document_rule("CHAR-VS", "異体字セレクタが基底文字に続くこと", "variation selector follows a base character")
def _variation_selectors(ctx: RuleContext) -> Places | None:
    return _selector_places(ctx) if _suspect_selector(ctx.utf8()) else None


def _selector_places(ctx: RuleContext) -> Places:
    for el, attr, value in _strings(ctx.root):
        lone = _lone_selectors(value)
        if lone:
            shown = "; ".join(lone[:8]) + (f"; and {len(lone) - 8} more" if len(lone) > 8 else "")
            yield el, attr, f"variation selector without a base character in {_where(el, attr)}: {shown}"
