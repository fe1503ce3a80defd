"""docs/sut-contract.md stands alone: every printed-document Item label and every Result/Code the scenarios
assert is written in it, and it does not send the vendor to read the reference SUT."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "sut-contract.md"
SCENARIOS = ROOT / "scenarios"
LABEL = re.compile(r"Label\s*=\s*['\"]([^'\"]+)['\"]")
CODE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _scenario_docs() -> list[tuple[Path, str, Any]]:
    out = []
    for p in sorted(SCENARIOS.rglob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        out.append((p, text, yaml.safe_load(text)))
    return out


def asserted_labels() -> dict[str, str]:
    """Item label → the first scenario file asserting it (template parts such as {{ … }} cut off)."""
    found: dict[str, str] = {}
    for p, text, _ in _scenario_docs():
        for m in LABEL.finditer(text):
            label = m.group(1).split("{{", 1)[0].strip()
            if label:
                found.setdefault(label, p.name)
    return found


def asserted_codes() -> dict[str, str]:
    """Result/Code values asserted: a counter step's or a content.result check's `code`, an xpath on Result/Code."""
    found: dict[str, str] = {}
    for p, _, doc in _scenario_docs():
        for d in _walk(doc):
            code = d.get("code")
            if isinstance(code, str) and CODE.match(code) and ("counter" in d or "check" in d):
                found.setdefault(code, p.name)
            xpath, equals = d.get("xpath"), d.get("equals")
            if isinstance(xpath, str) and xpath.endswith("Result/j:Code") and isinstance(equals, str):
                found.setdefault(equals, p.name)
    return found


def test_the_scenarios_assert_labels_and_codes() -> None:
    """The extraction finds what the suite asserts (else the next test would pass vacuously)."""
    labels, codes = asserted_labels(), asserted_codes()
    assert len(labels) >= 15 and {"根拠", "届出期間経過", "転出予定年月日"} <= set(labels), labels
    assert len(codes) >= 8 and {"COPY-RESTRICTED", "MOC-NOT-MOVING"} <= set(codes), codes


def test_every_asserted_label_and_code_is_in_the_contract() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    missing_labels = {k: v for k, v in asserted_labels().items() if f"`{k}" not in text}
    missing_codes = {k: v for k, v in asserted_codes().items() if f"`{k}`" not in text}
    assert not missing_labels, f"Item labels asserted but not in docs/sut-contract.md: {missing_labels}"
    assert not missing_codes, f"Result/Code values asserted but not in docs/sut-contract.md: {missing_codes}"


def test_the_contract_lists_every_counter_operation_and_stands_alone() -> None:
    from lxml import etree

    text = CONTRACT.read_text(encoding="utf-8")
    xsd = etree.parse(str(ROOT / "conformance" / "schemas" / "counter.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    ops = {e.get("name") for e in xsd.iterfind(".//xs:element[@name='CounterRequest']//xs:choice/xs:element", ns)}
    assert len(ops) >= 15
    for op in ops:
        assert f"`{op}`" in text, op
    assert "model to read" not in text and "read the reference" not in text.lower()
    for must in ("Change/Seq", "SentAt", "BusinessDate", 'version="1"', "gateway-secret", "sut-secret",
                 "tls_ca", "/contract", "/health", "HeadJuminhyoCode", "worked example"):
        assert must in text, must
