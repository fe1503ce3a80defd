"""XML attacks and broken documents are refused fast, with their code, never expanded or fetched."""

from __future__ import annotations

import time

import pytest

from conformance import xmlsafe
from conformance.errors import HarnessError


def billion_laughs() -> bytes:
    """lol9 expands to 10**9 "lol": the classic entity bomb."""
    names = ["lol"] + [f"lol{i}" for i in range(1, 10)]
    ents = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY {names[i]} "{(chr(38) + names[i - 1] + ";") * 10}">' for i in range(1, 10)
    ]
    return ('<?xml version="1.0"?><!DOCTYPE lolz [' + "".join(ents) + "]><lolz>&lol9;</lolz>").encode()


ATTACKS: list[tuple[str, bytes, set[str]]] = [
    ("billion-laughs", billion_laughs(), {"XML-ENTITY"}),
    ("xxe-system-entity",
     b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
     {"XML-ENTITY"}),
    ("xxe-network-entity",
     b'<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><d>&x;</d>', {"XML-ENTITY"}),
    ("parameter-entity",
     b'<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><d/>', {"XML-ENTITY"}),
    ("external-dtd", b'<!DOCTYPE d SYSTEM "http://127.0.0.1:9/d.dtd"><d/>', {"XML-DTD"}),
    ("lower-case-doctype", b'<!doctype d [<!ENTITY x "y">]><d>&x;</d>', {"XML-ENTITY"}),
    ("utf16-doctype", '<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>'.encode("utf-16"),
     {"XML-ENCODING"}),
    ("oversize", b"<d>" + b"x" * (xmlsafe.MAX_BYTES + 1) + b"</d>", {"XML-SIZE"}),
    ("too-deep", b"<d>" * (xmlsafe.MAX_DEPTH + 1) + b"</d>" * (xmlsafe.MAX_DEPTH + 1), {"XML-DEPTH"}),
    # libxml2 stops at 256 levels on its own and says so as a syntax error.
    ("far-too-deep", b"<d>" * 100_000 + b"</d>" * 100_000, {"XML-DEPTH", "XML-SYNTAX"}),
    ("malformed", b"<d><e></d>", {"XML-SYNTAX"}),
    ("not-xml", b"hello", {"XML-SYNTAX"}),
    ("empty", b"  \n", {"XML-EMPTY"}),
]


@pytest.mark.parametrize(("data", "expected"), [(d, c) for _, d, c in ATTACKS],
                         ids=[n for n, _, _ in ATTACKS])
def test_refused_fast_with_its_code(data: bytes, expected: set[str]) -> None:
    start = time.perf_counter()
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(data)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    [finding] = e.value.findings
    assert finding.code in expected, finding


def test_refusal_says_where() -> None:
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(b'<?xml version="1.0"?>\n\n<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>')
    assert e.value.findings[0].line == 3


def test_depth_finding_points_at_the_line() -> None:
    data = b"<d>\n" * (xmlsafe.MAX_DEPTH + 1) + b"</d>" * (xmlsafe.MAX_DEPTH + 1)
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(data)
    assert e.value.findings[0].line == xmlsafe.MAX_DEPTH + 1


def test_at_the_limits_is_accepted() -> None:
    depth = xmlsafe.MAX_DEPTH
    root = xmlsafe.parse(b"<d>" * depth + b"</d>" * depth)
    assert root.tag == "d"


def test_processing_instructions_are_dropped_and_comments_kept() -> None:
    root = xmlsafe.parse(b"<d><?pi x?><!--c--><e/></d>")
    assert [type(c).__name__ for c in root] == ["_Comment", "_Element"]


def test_string_input_is_utf8() -> None:
    assert xmlsafe.parse("<d>葛\U000e0100</d>").text == "葛\U000e0100"


def test_attribute_flood_is_refused_fast() -> None:
    data = b"<d " + b" ".join(b'a%d="1"' % i for i in range(150_000)) + b"/>"
    start = time.perf_counter()
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(data)
    assert time.perf_counter() - start < 1.0
    assert [f.code for f in e.value.findings] == ["XML-ATTRIBUTES"]
    assert "150000 attributes" in e.value.findings[0].message


def test_utf8_bom_with_a_latin1_declaration_is_refused_like_without() -> None:
    decl = b'<?xml version="1.0" encoding="latin-1"?><d>\xe9</d>'
    found = []
    for data in (decl, b"\xef\xbb\xbf" + decl):
        with pytest.raises(HarnessError) as e:
            xmlsafe.parse(data)
        found.append([(f.code, f.message) for f in e.value.findings])
    assert found[0] == found[1] and found[0][0][0] == "XML-ENCODING"


@pytest.mark.parametrize("hide", [
    b"<![CDATA[" + b"</x>" * 200 + b"]]>",
    b"<!--" + b"</x>" * 200 + b"-->",
    b"<?pi " + b"</x>" * 200 + b"?>",
])
def test_closing_tags_hidden_in_text_do_not_spare_a_deep_document_the_depth_check(hide: bytes) -> None:
    """The depth check is skipped only when counting "<" proves the document shallow; closing tags written
    inside CDATA, a comment or a processing instruction must not make a deep document look shallow."""
    n = xmlsafe.MAX_DEPTH + 5
    data = b"<d>" * n + hide + b"</d>" * n
    with pytest.raises(HarnessError) as e:
        xmlsafe.parse(data)
    assert e.value.findings[0].code == "XML-DEPTH"
