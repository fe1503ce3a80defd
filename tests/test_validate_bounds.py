"""Bounded work per document: attribute floods refused after the parse, findings capped with one summary,
messages clipped, rules linear in the size whatever the document holds, and the cheap pre-check."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conformance import samples, xmlsafe
from conformance.errors import HarnessError
from conformance.rules import (
    _PUA,
    MAX_FINDINGS,
    MAX_MESSAGE,
    RULES,
    TRUNCATED,
    RuleContext,
    _has_pua,
    _lone_selectors,
    _suspect_selector,
    run_rules,
    xpath_of,
)
from conformance.validate import Validator, bench


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def base() -> bytes:
    tree = etree.fromstring(samples.sample("IdentityNotice", 1))
    etree.indent(tree, space="    ")
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def inject(extra: bytes, before: bytes = b"<Sex>") -> bytes:
    data = base()
    assert before in data
    return data.replace(before, extra + before, 1)


def attrs_on_one(n: int = 150_000) -> bytes:
    return base().replace(b"<Sex>", b"<Sex " + b" ".join(b'a%d="1"' % i for i in range(n)) + b">", 1)


# The attack of issue 13 and its variants: each ≈ 0.4–1.8 MB, under the 2 MiB size limit.
ATTACKS: list[tuple[str, bytes, str]] = [
    ("150k-attributes-on-one-element", attrs_on_one(), "XML-ATTRIBUTES"),
    ("150k-attributes-spread", inject(b'<X a="1" b="2" c="3"/>' * 50_000), "XML-ATTRIBUTES"),
    ("100k-empty-elements", inject(b"<E/>" * 100_000), "XSD-INVALID"),
    ("100k-bad-lgcodes", inject(b"<LgCode>1</LgCode>" * 100_000), "XSD-INVALID"),
    ("100k-bad-wareki", inject(b"<Wareki>x</Wareki>" * 100_000), "XSD-INVALID"),
]


@pytest.mark.parametrize(("data", "code"), [(d, c) for _, d, c in ATTACKS], ids=[n for n, _, _ in ATTACKS])
def test_floods_are_refused_fast_with_a_small_answer(validator: Validator, data: bytes, code: str) -> None:
    assert len(data) <= xmlsafe.MAX_BYTES
    start = time.perf_counter()
    checked = validator.check(data, file="flood.xml")
    elapsed = time.perf_counter() - start
    assert not checked.ok and checked.findings[0].code == code
    assert len(checked.findings) <= MAX_FINDINGS + 1
    answer = "\n".join(f.for_people() for f in checked.findings)
    assert len(answer.encode()) < 64 * 1024, len(answer)
    assert elapsed < 3.0, elapsed  # ≈ 0.1 s on a quiet machine; was ≈ 30 s for the first one


def test_attribute_limits_per_element_and_in_total() -> None:
    per = xmlsafe.MAX_ATTRIBUTES_PER_ELEMENT
    ok = b"<d " + b" ".join(b'a%d="1"' % i for i in range(per)) + b"/>"
    assert len(xmlsafe.parse(ok).attrib) == per
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(b"<d>\n<e " + b" ".join(b'a%d="1"' % i for i in range(per + 1)) + b"/></d>")
    [f] = e.value.findings
    assert f.code == "XML-ATTRIBUTES" and f.line == 2 and f"{per + 1} attributes" in f.message
    spread = b"<d>" + b'<e a="1" b="2"/>' * (xmlsafe.MAX_ATTRIBUTES // 2 + 1) + b"</d>"
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(spread)
    assert [f.code for f in e.value.findings] == ["XML-ATTRIBUTES"]
    assert f"limit is {xmlsafe.MAX_ATTRIBUTES}" in e.value.findings[0].message
    # "=" in text is no attribute: many of them cost a count, not a refusal.
    assert xmlsafe.parse(b"<d>" + b"a=b " * 5000 + b"</d>").tag == "d"


def test_findings_are_capped_with_one_summary(validator: Validator) -> None:
    # 300 places the rules refuse: 個人番号 with a wrong check digit.
    root = xmlsafe.parse(base())
    ident = root.find(f".//{xmlsafe.q('Identity')}")
    assert ident is not None
    for _ in range(300):
        extra = etree.SubElement(ident, xmlsafe.q("MyNumber"))
        extra.text = "123456789017"
    found = run_rules(root)
    assert len(found) == MAX_FINDINGS + 1
    assert [f.code for f in found[:-1]] == ["ID-MYNUMBER"] * MAX_FINDINGS
    assert found[-1].code == TRUNCATED and "300 more" not in found[-1].message
    assert f"{300 - MAX_FINDINGS} more finding(s)" in found[-1].message
    assert len(run_rules(root, max_findings=None)) == 300
    small = Validator(max_findings=5)
    checked = small.check(etree.tostring(root), file="m.xml")
    assert not checked.ok and len(checked.findings) == 6 and checked.findings[-1].code == TRUNCATED
    assert checked.findings[-1].file == "m.xml"


def test_under_the_cap_nothing_changes(validator: Validator) -> None:
    data = inject(b"<MyNumber>123456789017</MyNumber>" * 3, b"</Identity>")
    codes = [f.code for f in validator.check(data).findings]
    assert TRUNCATED not in codes and codes.count("ID-MYNUMBER") == 3


def test_a_huge_value_gives_a_short_message(validator: Validator) -> None:
    data = base().replace(b"<Sex>2</Sex>", b"<Sex>" + b"9" * 1_500_000 + b"</Sex>", 1).replace(
        b"<Sex>1</Sex>", b"<Sex>" + b"9" * 1_500_000 + b"</Sex>", 1)
    checked = validator.check(data)
    assert not checked.ok
    assert all(len(f.message) <= MAX_MESSAGE + 40 for f in checked.findings)
    root = xmlsafe.parse(b'<d xmlns="urn:juki-harness:1"><ResidenceCardNo>' + b"A" * 100_000
                         + b"</ResidenceCardNo><LgCode>" + b"1" * 100_000 + b"</LgCode></d>")
    assert all(len(f.message) < 200 for f in run_rules(root))


def test_locating_in_a_wide_parent_is_not_quadratic() -> None:
    root = xmlsafe.parse(b'<d xmlns="urn:juki-harness:1">' + b"<MyNumber>1</MyNumber><x/>" * 50_000 + b"</d>")
    start = time.perf_counter()
    found = run_rules(root)
    assert time.perf_counter() - start < 3.0
    assert found[0].xpath == "/j:d/j:MyNumber[1]" and found[1].xpath == "/j:d/j:MyNumber[2]"
    last = root[-2]
    assert xpath_of(last) == "/j:d/j:MyNumber[50000]"
    assert root.xpath(f"string({xpath_of(last)})", namespaces=xmlsafe.NSMAP) == "1"


def test_many_my_numbers_on_a_yellow_arrow_are_bounded() -> None:
    text = " ".join(["123456789018"] * 100_000)
    root = xmlsafe.parse(f'<d xmlns="urn:juki-harness:1"><Note>{text}</Note></d>'.encode())
    start = time.perf_counter()
    found = run_rules(root, data_class="yellow")
    assert time.perf_counter() - start < 5.0
    assert len(found) == MAX_FINDINGS + 1 and found[-1].code == TRUNCATED


def test_bom_does_not_hide_an_encoding_declaration() -> None:
    decl = b'<?xml version="1.0" encoding="ISO-8859-1"?><d>\xe9</d>'
    for data in (decl, b"\xef\xbb\xbf" + decl):
        with pytest.raises(HarnessError) as e:
            xmlsafe.parse(data)
        assert [f.code for f in e.value.findings] == ["XML-ENCODING"]
        assert "'ISO-8859-1' refused" in e.value.findings[0].message
    assert xmlsafe.parse(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?><d/>').tag == "d"


def test_expensive_is_a_cheap_size_threshold() -> None:
    assert not xmlsafe.expensive(base())
    assert xmlsafe.expensive(attrs_on_one())
    assert not xmlsafe.expensive(b"x" * xmlsafe.EXPENSIVE_BYTES)
    assert xmlsafe.expensive(b"x" * (xmlsafe.EXPENSIVE_BYTES + 1))


def test_below_the_threshold_validation_stays_cheap(validator: Validator) -> None:
    """What ``expensive`` lets run on the event loop: the worst flood that fits in EXPENSIVE_BYTES."""
    n = (xmlsafe.EXPENSIVE_BYTES - len(base())) // len(b"<MyNumber>1</MyNumber>")
    data = inject(b"<MyNumber>1</MyNumber>" * n, b"</Identity>")
    assert not xmlsafe.expensive(data)
    validator.check(data)
    start = time.perf_counter()
    checked = validator.check(data)
    assert time.perf_counter() - start < 0.25  # ≈ 10 ms on a quiet machine
    assert checked.findings[-1].code == TRUNCATED


_CHARS = "葛辻a ＡＢ１\ufe00\ufe0f\U000e0100\U000e0101\ue000\uf8ff\U000f0000山ツ\u3000x"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_CHARS, max_size=80), st.integers(min_value=0, max_value=40))
def test_character_prefilters_never_miss(text: str, fullwidth: int) -> None:
    """The byte-level prefilters of CHAR-PUA and CHAR-VS agree with the exact searches, also past the
    point where they switch from memchr jumps to a regex (many lead bytes that start no selector)."""
    text = "Ａ" * fullwidth + text
    b = text.encode("utf-8")
    assert _has_pua(b) == bool(_PUA.search(text))
    if _lone_selectors(text):
        assert _suspect_selector(b)


def test_one_rule_runs_alone_and_order_is_by_rule() -> None:
    data = (b'<Envelope xmlns="urn:juki-harness:1"><Header><Sender actor="juki" lgCode="131015"/></Header>'
            b"<Body><MyNumber>123456789017</MyNumber><Wareki>\xe4\xbb\xa4\xe5\x92\x8c2\xe5\xb9\xb42\xe6\x9c\x88"
            b"30\xe6\x97\xa5</Wareki></Body></Envelope>")
    root = xmlsafe.parse(data)
    assert [f.code for f in run_rules(root)] == ["ID-MYNUMBER", "ID-LGCODE", "DATE-WAREKI"]
    [f] = RULES["ID-LGCODE"].check(RuleContext(root))
    assert f.xpath == "/j:Envelope/j:Header/j:Sender/@lgCode"


def test_bench_reports_each_stage() -> None:
    figures = bench(docs=2, runs=1)
    assert set(figures) == {"bytes", "parse_us", "xsd_us", "rules_us", "total_us"}
    assert 1000 < figures["bytes"] < 4000 and all(v > 0 for v in figures.values())


def test_rules_alone_stay_bounded_on_a_tree_built_in_process() -> None:
    """check_element skips the parser's limits: the rules still list at most MAX_FINDINGS, in linear time."""
    parts = [b'<d xmlns="urn:juki-harness:1">']
    parts += [b'<x lgCode="131015"/><!--c--><Western>2020-01-01</Western><!--c--><Wareki>x</Wareki>'] * 20_000
    root = etree.fromstring(b"".join(parts) + b"</d>")
    start = time.perf_counter()
    checked = Validator().check_element(root, allow_bare_body=True)
    assert time.perf_counter() - start < 3.0
    codes = [f.code for f in checked.findings]
    assert len(codes) == MAX_FINDINGS + 1 and codes[-1] == TRUNCATED and not checked.ok
    # XSD-INVALID and ENV-ROOT on the root, then 20,000 ID-LGCODE and 20,000 DATE-WAREKI.
    assert codes[:2] == ["XSD-INVALID", "ENV-ROOT"] and "ID-LGCODE" in codes
    assert f"{2 + 2 * 20_000 - MAX_FINDINGS} more" in checked.findings[-1].message


def test_xpath_in_a_wide_mixed_parent_matches_the_element() -> None:
    kids = ['<a/>', '<b/>', '<!--c-->', '<o:a/>', '<n xmlns=""/>'] * 20 + ['<only/>']
    root = etree.fromstring(f'<r xmlns="urn:juki-harness:1" xmlns:o="urn:other">{"".join(kids)}</r>')
    ns = {"j": xmlsafe.NS}
    for el in root:
        xp = xpath_of(el)
        if isinstance(el.tag, str) and etree.QName(el).namespace == xmlsafe.NS:
            assert root.xpath(xp, namespaces=ns) == [el], xp
    assert xpath_of(root[2]) == "/j:r/comment()[1]" and xpath_of(root[-2]) == "/j:r/n[20]"
    assert xpath_of(root[3]) == "/j:r/*[local-name()='a'][1]" and xpath_of(root[-1]) == "/j:r/j:only"
