"""The catalogue's own consistency: counts, cross-references, line-numbered failures, the JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance import catalogue
from conformance.errors import HarnessError

UNUSED = {11, 12, 17, 22, 34}


@pytest.fixture(scope="module")
def cat() -> catalogue.Catalogue:
    return catalogue.default()


def test_counts(cat: catalogue.Catalogue) -> None:
    assert len(cat.routes) == 22
    assert sorted(cat.functions) == [f"F{i:02d}" for i in range(1, 31)]
    assert sorted(cat.arrows) == list(range(1, 39))
    assert {n for n, a in cat.arrows.items() if not a.in_route} == UNUSED
    assert sum(a.in_route for a in cat.arrows.values()) == 33


def test_every_function_on_its_route(cat: catalogue.Catalogue) -> None:
    listed = {f for r in cat.routes.values() for f in r.functions}
    assert listed == set(cat.functions)
    for f in cat.functions.values():
        assert f.id in cat.routes[f.route].functions


def test_every_used_arrow_has_end_points_and_class(cat: catalogue.Catalogue) -> None:
    for a in cat.arrows.values():
        if a.in_route:
            assert a.src in cat.actors and a.dst in cat.actors
            assert a.line in ("manual", "system")
            assert a.data_class in ("green", "yellow", "blue", "none")


def test_every_type_names_an_existing_schema_with_its_root(cat: catalogue.Catalogue) -> None:
    from lxml import etree

    xs = "{http://www.w3.org/2001/XMLSchema}element"
    for t in cat.message_types.values():
        path = catalogue.SCHEMAS / t.schema
        assert path.is_file(), t.id
        roots = {e.get("name") for e in etree.parse(str(path)).getroot().findall(xs)}
        assert t.root in roots, f"{t.id}: {t.root} not a global element of {t.schema}"


def test_resolution_of_arrows(cat: catalogue.Catalogue) -> None:
    assert cat.resolve_arrow("juki", "cs", "IdentityNotice") == 8
    assert cat.resolve_arrow("cs", "pref", "IdentityNotice") == 5
    assert cat.resolve_arrow("certserver", "juki", "CertificateDataRequest") == 19  # bidirectional 19
    assert cat.resolve_arrow("juki", "pref", "IdentityNotice") is None
    assert cat.resolve_arrow("juki", "cs", "NoSuchType") is None


def test_yellow_and_blue_arrows_are_the_seed_ones(cat: catalogue.Catalogue) -> None:
    no_number = {n for n, a in cat.arrows.items() if a.must_not_carry_my_number}
    assert {19, 20, 25, 26, 32, 33, 38, 35, 15} <= no_number
    assert 8 not in no_number and 21 not in no_number


def _broken_copy(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(catalogue.DEFAULT_PATH.read_text(encoding="utf-8"))
    mutate(raw)
    p = tmp_path / "catalogue.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda r: r["routes"][0]["arrows"].append(99), "CAT-ARROW"),
        (lambda r: r["arrows"][0].__setitem__("from", "nobody"), "CAT-ACTOR"),
        (lambda r: r["message_types"][0].__setitem__("response", "Nope"), "CAT-TYPE"),
        (lambda r: r["message_types"][0].__setitem__("schema", "missing.xsd"), "CAT-SCHEMA"),
        (lambda r: r["functions"][0].__setitem__("route", "R99"), "CAT-ROUTE"),
        (lambda r: r["message_types"][0].pop("mode"), "CAT-SHAPE"),
    ],
    ids=["unknown-arrow", "unknown-actor", "unknown-type", "missing-schema", "unknown-route", "shape"],
)
def test_broken_catalogue_fails_loudly_with_a_line(tmp_path: Path, mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    path = _broken_copy(tmp_path, mutate)
    with pytest.raises(HarnessError) as ei:
        catalogue.load(path)
    codes = {f.code for f in ei.value.findings}
    assert code in codes
    assert all(f.line and f.line > 0 for f in ei.value.findings if f.code == code)
    assert all(f.file == str(path) for f in ei.value.findings)


def test_routes_json_from_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "routes", "--json"], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    assert set(data) >= {"actors", "arrows", "routes", "functions", "message_types"}
    assert len([a for a in data["arrows"] if a["in_route"]]) == 33
    assert sorted(a["n"] for a in data["arrows"] if not a["used"]) == sorted(UNUSED)
    assert len(data["routes"]) == 22 and len(data["functions"]) == 30
    for t in data["message_types"]:
        assert Path(t["schema_path"]).is_file()


def test_routes_table_from_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "routes"], capture_output=True, text=True, check=True
    ).stdout
    assert "本人確認情報通知" in out and "Identity-confirmation notice" in out
    assert "33→26→20→19→25→32" in out
