"""The validation facade: parse, XSD, envelope/catalogue fit (ENV-*), rules with the arrow's class."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from conformance import samples, xmlsafe
from conformance.catalogue import Catalogue
from conformance.validate import HEADER_KEYS, Validator, compiled_schema


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@pytest.fixture(scope="module")
def cat(validator: Validator) -> Catalogue:
    return validator.catalogue


def sample(type_id: str, seed: int = 1) -> bytes:
    return samples.sample(type_id, seed)


def retag(data: bytes, pattern: str, repl: str) -> bytes:
    """Edit a sample's text (the edits below each keep the document well formed)."""
    out, n = re.subn(pattern, repl, data.decode("utf-8"), count=1)
    assert n == 1, pattern
    return out.encode("utf-8")


def test_schema_is_compiled_once(validator: Validator) -> None:
    assert Validator(validator.catalogue).schema is validator.schema is compiled_schema()


@pytest.mark.parametrize("type_id", samples.sample_types())
def test_every_sample_fits_its_arrow(validator: Validator, cat: Catalogue, type_id: str) -> None:
    checked = validator.check(sample(type_id), file=f"{type_id}.xml")
    mt = cat.message_types[type_id]
    assert checked.root is not None and checked.message_type is mt
    assert checked.header["message_type"] == type_id
    assert [f.for_people() for f in checked.findings] == [] and checked.ok
    if mt.arrows:
        assert checked.arrow is not None
        assert checked.data_class == cat.arrows[checked.arrow].data_class
        assert checked.arrow in mt.arrows or any(
            rt.response == type_id and checked.arrow in rt.response_arrows.values()
            for rt in cat.message_types.values())


def test_header_is_read(validator: Validator) -> None:
    checked = validator.check(sample("IdentityQueryResult"))
    h = checked.header
    assert set(h) == set(HEADER_KEYS)
    assert (h["message_type"], h["sender_actor"], h["receiver_actor"]) == (
        "IdentityQueryResult", "cs", "counter")
    assert h["sender_lg"] == "131016" and h["correlation_id"] and h["retry_reason"] is None
    assert checked.ok and checked.arrow == 14


def test_check_element_agrees_with_check(validator: Validator) -> None:
    data = sample("MoveInNotice")
    a = validator.check(data)
    b = validator.check_element(xmlsafe.parse(data))
    assert (a.ok, a.arrow, a.header, a.findings) == (b.ok, b.arrow, b.header, b.findings)


@pytest.mark.parametrize(("data", "code"), [
    (b"<Envelope", "XML-SYNTAX"),
    (b'<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>', "XML-ENTITY"),
    (b"", "XML-EMPTY"),
])
def test_parse_failures_become_findings(validator: Validator, data: bytes, code: str) -> None:
    checked = validator.check(data, file="in.xml")
    assert not checked.ok and checked.root is None and checked.arrow is None
    assert [(f.code, f.file) for f in checked.findings] == [(code, "in.xml")]


def test_xsd_invalid_has_line_and_xpath(validator: Validator) -> None:
    data = retag(sample("IdentityNotice"), r"<Sex>[12]</Sex>", "\n<Sex>3</Sex>")
    checked = validator.check(data, file="x.xml")
    xsd = [f for f in checked.findings if f.code == "XSD-INVALID"]
    assert not checked.ok and xsd
    assert xsd[0].line == 3 and xsd[0].xpath is not None and xsd[0].xpath.endswith("/j:Sex")
    assert "Sex" in xsd[0].message


def test_explain_gives_richer_xsd_messages(validator: Validator) -> None:
    root = xmlsafe.parse(retag(sample("IdentityNotice"), r"<Sex>[12]</Sex>", "<Sex>3</Sex>"))
    [f] = validator.explain(root)
    assert f.code == "XSD-INVALID" and f.xpath is not None and f.xpath.endswith("j:Sex")


def test_unknown_message_type(validator: Validator) -> None:
    data = retag(sample("IdentityNotice"), r"<MessageType>IdentityNotice<", "<MessageType>NoSuchType<")
    assert [f.code for f in validator.check(data).findings] == ["ENV-TYPE"]


def test_body_root_must_be_the_types_root(validator: Validator) -> None:
    # MoveInNotice also travels juki -> cs (arrow 8), so only the body root is wrong.
    data = retag(sample("IdentityNotice"), r"<MessageType>IdentityNotice<", "<MessageType>MoveInNotice<")
    [f] = validator.check(data).findings
    assert f.code == "ENV-ROOT" and "j:MoveInNotice" in f.message and "j:IdentityNotice" in f.message


def test_no_arrow_from_sender_to_receiver(validator: Validator) -> None:
    data = retag(sample("IdentityNotice"), r'<Receiver actor="cs"', '<Receiver actor="kiosk"')
    checked = validator.check(data)
    assert [f.code for f in checked.findings] == ["ENV-ARROW"] and checked.arrow is None
    assert "from juki to kiosk" in checked.findings[0].message


@pytest.mark.parametrize(("type_id", "given", "ok", "resolved"), [
    ("IdentityNotice", 8, True, 8),
    ("IdentityNotice", 9, False, 8),
    ("IdentityQueryResult", 14, True, 14),
    ("IdentityQueryResult", 13, True, 14),          # the request's arrow: its response crosses 14
    ("SymbolAcquisitionResult", 7, True, 7),        # back along the request's arrow, cs -> addressee
    ("IssuedCertificate", 20, True, 20),            # certserver -> centre, the answer on arrow 20
    ("IssuedCertificate", 19, False, 20),
])
def test_given_arrow_must_fit(validator: Validator, type_id: str, given: int, ok: bool,
                              resolved: int) -> None:
    checked = validator.check(sample(type_id), arrow=given)
    assert checked.arrow == resolved
    assert ("ENV-ARROW" not in [f.code for f in checked.findings]) is ok


def test_error_report_may_answer_on_any_arrow(validator: Validator) -> None:
    checked = validator.check(sample("ErrorReport"), arrow=9)
    assert checked.ok and checked.arrow == 9


def test_rules_run_with_the_arrows_data_class(validator: Validator) -> None:
    # Arrow 26 (kiosk -> centre) is blue: a valid 個人番号 anywhere, even in a comment, is refused.
    data = retag(sample("KioskCertificateRequest"), r"<Body>", "<Body><!-- 個人番号 1234 5678 9018 -->")
    checked = validator.check(data)
    assert checked.data_class == "blue"
    assert [f.code for f in checked.findings] == ["CLASS-MYNUMBER"]
    # The same number on a green arrow is allowed.
    green = retag(sample("IdentityNotice"), r"<Body>", "<Body><!-- 個人番号 1234 5678 9018 -->")
    assert validator.check(green).ok


def test_rule_findings_in_a_schema_valid_message(validator: Validator) -> None:
    data = retag(sample("IdentityNotice"), r"<MyNumber>[0-9]{12}</MyNumber>",
                 "<MyNumber>123456789017</MyNumber>")
    checked = validator.check(data, file="f.xml")
    assert [(f.code, f.file) for f in checked.findings] == [("ID-MYNUMBER", "f.xml")]


def test_non_utf8_document_is_refused(validator: Validator) -> None:
    # CP932's user-defined area (F040) would be U+E000 (PUA); the contract is UTF-8 only, so it never gets that far.
    body = b'<?xml version="1.0" encoding="CP932"?><ErrorReport xmlns="urn:juki-harness:1"><Finding>' \
           b"<Code>X</Code><Message>\xf0\x40</Message></Finding></ErrorReport>"
    checked = validator.check(body, allow_bare_body=True)
    assert [f.code for f in checked.findings] == ["XML-ENCODING"]


def test_bare_body_needs_permission(validator: Validator) -> None:
    root = xmlsafe.parse(sample("IdentityNotice"))
    body = root.find(f"{{{xmlsafe.NS}}}Body")
    assert body is not None
    data = etree.tostring(body[0])
    assert [f.code for f in validator.check(data).findings] == ["ENV-ROOT"]
    checked = validator.check(data, allow_bare_body=True)
    assert checked.ok and checked.message_type is not None and checked.message_type.id == "IdentityNotice"


def test_foreign_root_is_refused_even_as_a_body(validator: Validator) -> None:
    checked = validator.check(b"<html/>", allow_bare_body=True)
    assert "ENV-ROOT" in [f.code for f in checked.findings] and not checked.ok
