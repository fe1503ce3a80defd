"""Rules beyond XSD: each rule has passing and failing documents; findings carry code, line and XPath."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conformance import xmlsafe
from conformance.errors import Finding
from conformance.rules import RULES, _my_numbers_in, find_my_numbers, run_rules

HEADER = """<Header><MessageId>M-0a1b2c3d-00000001</MessageId><MessageType>T</MessageType>
<Sender actor="juki" lgCode="{sender}"/><Receiver actor="cs" lgCode="131016"/>
<SentAt>2024-04-01T10:00:00+09:00</SentAt><BusinessDate>2024-04-01</BusinessDate></Header>"""


def envelope(body: str, sender: str = "131016") -> bytes:
    """A small envelope whose body the rules (not the schema) judge."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="urn:juki-harness:1" version="1">\n'
            f"{HEADER.format(sender=sender)}\n<Body>\n<Doc>\n{body}\n</Doc>\n</Body>\n</Envelope>\n").encode()


def codes(data: bytes, data_class: str | None = None, *, raw: bool = True) -> list[str]:
    root = xmlsafe.parse(data)
    return [f.code for f in run_rules(root, data_class=data_class, raw=data if raw else None)]


def findings(data: bytes, data_class: str | None = None) -> list[Finding]:
    return run_rules(xmlsafe.parse(data), data_class=data_class, file="m.xml", raw=data)


# (rule code, body, data class) for documents that pass every rule.
PASSING: list[tuple[str, str, str | None]] = [
    ("ID-MYNUMBER", "<MyNumber>123456789018</MyNumber>", None),
    ("ID-LGCODE", "<LgCode>131016</LgCode><Office lgCode='473821'/>", None),
    ("ID-JUMINHYO", "<JuminhyoCode>12345678903</JuminhyoCode>", None),
    ("ID-RESCARD", "<ResidenceCardNo>AB12345678CD</ResidenceCardNo>", None),
    ("DATE-WAREKI", "<D><Wareki>昭和55年1月2日</Wareki></D>", None),
    ("DATE-CONSISTENT", "<D><Western>1980-01-02</Western><Wareki>昭和55年1月2日</Wareki></D>", None),
    ("DATE-CONSISTENT", "<D><Western>1912-07-30</Western><Wareki>明治45年7月30日</Wareki></D>", None),
    ("DATE-CONSISTENT", "<D><Western>1912-07-30</Western><!--c--><Wareki>大正元年7月30日</Wareki></D>", None),
    ("DATE-UNCERTAIN", "<D><Uncertain>平成3年5月上旬</Uncertain></D>", None),
    ("DATE-UNCERTAIN", "<D><Uncertain>年月日不詳</Uncertain></D>", None),
    ("CLASS-MYNUMBER", "<MyNumber>123456789018</MyNumber>", "green"),
    ("CLASS-MYNUMBER", "<MyNumber>123456789018</MyNumber>", None),
    ("CLASS-MYNUMBER", "<Note>番号 123456789017 は検査用数字が違う</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Serial>ID123456789018</Serial>", "yellow"),
    ("CLASS-MYNUMBER", "<Ref>M-123456789018</Ref>", "yellow"),
    ("CLASS-MYNUMBER", "<Card>1234 5678 9018 1234</Card>", "blue"),
    ("CLASS-MYNUMBER", "<Uuid>0a1b2c3d-1234-5678-9abc-123456789018</Uuid>", "yellow"),
    ("CLASS-MYNUMBER", "<Tel>03-1234-5678</Tel><When>2024-04-01T10:00:00</When>", "yellow"),
    ("CHAR-PUA", "<Kanji>葛󠄀飾 𠮷野 山﨑 髙橋</Kanji>", None),
    ("CHAR-VS", "<Kanji>葛󠄀城 辻󠄀</Kanji><Mark>☺️</Mark>", None),
]

# (rule code, body, data class) for documents that fail exactly that rule.
FAILING: list[tuple[str, str, str | None]] = [
    ("ID-MYNUMBER", "<MyNumber>123456789017</MyNumber>", None),
    ("ID-MYNUMBER", "<MyNumber>12345</MyNumber>", None),
    ("ID-LGCODE", "<LgCode>131015</LgCode>", None),
    ("ID-LGCODE", "<Office lgCode='131015'/>", None),
    ("ID-JUMINHYO", "<JuminhyoCode>12345678904</JuminhyoCode>", None),
    ("ID-RESCARD", "<ResidenceCardNo>ab12345678CD</ResidenceCardNo>", None),
    ("DATE-WAREKI", "<D><Wareki>平成31年5月1日</Wareki></D>", None),
    ("DATE-WAREKI", "<D><Wareki>令和2年2月30日</Wareki></D>", None),
    ("DATE-CONSISTENT", "<D><Western>1980-01-03</Western><Wareki>昭和55年1月2日</Wareki></D>", None),
    ("DATE-UNCERTAIN", "<D><Uncertain>平成32年頃</Uncertain></D>", None),
    ("DATE-UNCERTAIN", "<D><Uncertain>令和元年4月上旬</Uncertain></D>", None),
    ("CLASS-MYNUMBER", "<MyNumber>123456789018</MyNumber>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>個人番号は123456789018です</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>番号: 1234 5678 9018</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>1234-5678-9018</Note>", "blue"),
    ("CLASS-MYNUMBER", "<Note>１２３４５６７８９０１８</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>１２３４－５６７８－９０１８</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>1234　5678　9018</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>1234ー5678ー9018</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>電話 03-1234-5678 123456789018</Note>", "yellow"),
    ("CLASS-MYNUMBER", "<Ref no='983205673214'/>", "yellow"),
    ("CLASS-MYNUMBER", "<Note>&#49;23456789018</Note>", "yellow"),
    ("CHAR-PUA", "<Kanji>\ue000</Kanji>", None),
    ("CHAR-PUA", "<Kanji>山\uf8ff</Kanji>", None),
    ("CHAR-PUA", "<Kanji>\U000f0000</Kanji>", None),
    ("CHAR-PUA", "<Kanji>\U0010fffd</Kanji>", None),
    ("CHAR-PUA", "<Kanji name='\ue123'/>", None),
    ("CHAR-PUA", "<Kanji>&#xE000;</Kanji>", None),
    ("CHAR-VS", "<Kanji>\U000e0100葛</Kanji>", None),
    ("CHAR-VS", "<Kanji>葛\U000e0100\U000e0100</Kanji>", None),
    ("CHAR-VS", "<Kanji>a \ufe00</Kanji>", None),
    ("CHAR-VS", "<Kanji>葛<b/>\U000e0100</Kanji>", None),
    ("CHAR-VS", "<Kanji v='\ufe0f'/>", None),
]


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "serialised"])
@pytest.mark.parametrize(("code", "body", "data_class"), PASSING, ids=[f"{c}-{i}" for i, (c, _, _) in
                                                                       enumerate(PASSING)])
def test_rule_passes(code: str, body: str, data_class: str | None, raw: bool) -> None:
    assert codes(envelope(body), data_class, raw=raw) == []


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "serialised"])
@pytest.mark.parametrize(("code", "body", "data_class"), FAILING, ids=[f"{c}-{i}" for i, (c, _, _) in
                                                                       enumerate(FAILING)])
def test_rule_fails(code: str, body: str, data_class: str | None, raw: bool) -> None:
    found = codes(envelope(body), data_class, raw=raw)
    assert found and set(found) == {code}, found


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    assert {c for c, _, _ in PASSING} == set(RULES) == {c for c, _, _ in FAILING}


def test_rules_have_titles_in_both_languages() -> None:
    for code, r in RULES.items():
        assert r.code == code and r.title_ja and r.title_en


def test_header_lgcode_attribute_is_checked() -> None:
    [f] = findings(envelope("<X/>", sender="131015"))
    assert (f.code, f.xpath, f.line) == ("ID-LGCODE", "/j:Envelope/j:Header/j:Sender/@lgCode", 4)
    assert "expected 6" in f.message


def test_finding_has_file_line_and_xpath() -> None:
    data = envelope("<P><MyNumber>123456789018</MyNumber></P><P><MyNumber>123456789017</MyNumber></P>")
    [f] = findings(data)
    assert f.code == "ID-MYNUMBER" and f.file == "m.xml" and f.line == 8
    assert f.xpath == "/j:Envelope/j:Body/j:Doc/j:P[2]/j:MyNumber"
    root = xmlsafe.parse(data)
    assert f.xpath is not None
    assert root.xpath(f"string({f.xpath})", namespaces=xmlsafe.NSMAP) == "123456789017"
    assert "expected" not in f.message and "first 11 digits give 8" in f.message


def test_class_my_number_names_the_element_and_masks_the_number() -> None:
    [f] = findings(envelope("<Note>連絡 1234 5678 9018</Note>"), "yellow")
    assert f.xpath == "/j:Envelope/j:Body/j:Doc/j:Note"
    assert "********9018" in f.message and "123456789018" not in f.message and "Note" in f.message


def test_class_my_number_in_an_attribute_points_at_it() -> None:
    [f] = findings(envelope("<Ref no='983205673214'/>"), "blue")
    assert f.xpath == "/j:Envelope/j:Body/j:Doc/j:Ref/@no"


def test_class_my_number_in_a_tail_points_at_the_parent() -> None:
    [f] = findings(envelope("<Note>前<b/>後 123456789018</Note>"), "yellow")
    assert f.xpath == "/j:Envelope/j:Body/j:Doc/j:Note"


def test_pua_finding_names_the_code_point() -> None:
    [f] = findings(envelope("<Kanji>山\ue000田</Kanji>"))
    assert (f.code, f.xpath) == ("CHAR-PUA", "/j:Envelope/j:Body/j:Doc/j:Kanji") and "U+E000" in f.message


def test_variation_selector_finding_names_the_code_points() -> None:
    [f] = findings(envelope("<Kanji>葛\U000e0100 \U000e0101</Kanji>"))
    assert f.code == "CHAR-VS" and "U+E0101 after U+0020" in f.message and "U+E0100" not in f.message


def test_date_consistent_says_both_days() -> None:
    [f] = findings(envelope("<D><Western>1989-01-08</Western><Wareki>昭和64年1月7日</Wareki></D>"))
    assert f.code == "DATE-CONSISTENT"
    assert "1989-01-08 is 平成元年1月8日" in f.message and "1989-01-07" in f.message


def test_wareki_that_does_not_exist_is_not_also_inconsistent() -> None:
    assert codes(envelope("<D><Western>2019-05-01</Western><Wareki>平成31年5月1日</Wareki></D>")) == [
        "DATE-WAREKI"]


def test_check_element_without_envelope() -> None:
    root = etree.fromstring(b'<MyNumber xmlns="urn:juki-harness:1">123456789017</MyNumber>')
    assert [f.xpath for f in run_rules(root)] == ["/j:MyNumber"]


@pytest.mark.parametrize(("text", "found"), [
    ("123456789018", ["123456789018"]),
    ("a 1234 5678 9018 b", ["123456789018"]),
    ("１２３４　５６７８　９０１８", ["123456789018"]),
    ("1234 - 5678 - 9018", ["123456789018"]),
    ("123456789018 と 983205673214", ["123456789018", "983205673214"]),
    ("1234567890180", []),
    ("X123456789018", []),
    ("123456789018X", []),
    ("AB 123456789018", ["123456789018"]),
    ("123456789018 is it", ["123456789018"]),
    ("AB-123456789018", []),
    ("123456789018-X", []),
    ("1234-5678-9018-", ["123456789018"]),
    ("No. 123456789018", ["123456789018"]),
    ("123456789017", []),
])
def test_find_my_numbers(text: str, found: list[str]) -> None:
    assert find_my_numbers(text) == found


_ALPHABET = "0123456789" * 4 + "０１２ -－ー　\tAbX号山()" + "\u2010\u2212\u00a0"
_PLANTED = ["123456789018", "1234 5678 9018", "１２３４５６７８９０１８", "1234-5678-9018",
            "1234ー5678ー9018", ""]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60), st.sampled_from(_PLANTED))
def test_fast_path_agrees_with_the_exact_search(noise: str, planted: str) -> None:
    """The byte-level prefilters of CLASS-MYNUMBER never miss what find_my_numbers finds."""
    text = noise[: len(noise) // 2] + planted + noise[len(noise) // 2:]
    assert _my_numbers_in(text.encode("utf-8")) == bool(find_my_numbers(text))
