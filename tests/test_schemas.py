"""Every schema compiles in lxml and xmlschema; every element has Japanese documentation; code lists agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xmlschema
import yaml
from lxml import etree

from conformance.catalogue import DATA, SCHEMAS

XS = "{http://www.w3.org/2001/XMLSchema}"
FILES = sorted(SCHEMAS.glob("*.xsd"))
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_compiles_in_lxml(path: Path) -> None:
    etree.XMLSchema(etree.parse(str(path)))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_compiles_in_xmlschema(path: Path) -> None:
    xmlschema.XMLSchema(str(path))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_element_has_japanese_documentation(path: Path) -> None:
    missing = []
    for el in etree.parse(str(path)).getroot().iter(f"{XS}element"):
        doc = el.find(f"{XS}annotation/{XS}documentation")
        if doc is None or not JAPANESE.search(doc.text or ""):
            missing.append(f"{el.get('name')} (line {el.sourceline})")
    assert not missing, missing


def test_only_body_roots_are_global_elements() -> None:
    from conformance.catalogue import default

    roots = {t.root for t in default().message_types.values()} | {"Envelope", "ErrorReport"}
    for path in FILES:
        for el in etree.parse(str(path)).getroot().findall(f"{XS}element"):
            assert el.get("name") in roots, f"{path.name}: unexpected global element {el.get('name')}"


def test_reason_codes_agree_with_the_data_file() -> None:
    data = yaml.safe_load((Path(str(DATA)) / "reasons.yaml").read_text(encoding="utf-8"))
    codes = {r["code"] for r in data["reasons"]}
    common = etree.parse(str(SCHEMAS / "common.xsd")).getroot()
    st = common.find(f"{XS}simpleType[@name='ReasonCodeType']")
    assert st is not None
    assert {e.get("value") for e in st.iter(f"{XS}enumeration")} == codes
    assert {r["family"] for r in data["reasons"]} == {"record", "delete", "amend"}
