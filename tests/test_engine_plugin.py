"""The pytest plugin: scenarios become items with route/function markers, only when asked; a broken file
fails collection with its line; a run against the reference SUT gives JUnit XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

GOOD = """\
scenarios:
  - id: F03-T01
    title: {ja: 写しの交付, en: a copy is issued}
    route: R02
    functions: [F03]
    kind: positive
    fixtures:
      residents:
        taro: {card: false}
    steps:
      - id: copy
        counter: CopyRequest
        body: |
          <JuminhyoCode>{{ fixture.taro.juminhyo_code }}</JuminhyoCode>
          <Scope>本人</Scope><Requester>本人</Requester>
          <Relationship>false</Relationship><Honseki>false</Honseki><IncludeMyNumber>false</IncludeMyNumber>
          <IncludeJuminhyoCode>false</IncludeJuminhyoCode>
    expect:
      - check: content.result
        step: copy
        status: accepted
        assert:
          - {xpath: "j:Document/j:Member/j:Name/j:Kanji", equals: "{{ fixture.taro.name.kanji }}"}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "scenarios" / "R02"
    d.mkdir(parents=True)
    (d / "F03.yaml").write_text(GOOD, encoding="utf-8")
    return tmp_path


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_scenarios_are_not_collected_unless_asked(project: Path) -> None:
    r = _pytest(project, "--collect-only", ".")
    assert "no tests collected" in r.stdout, r.stdout


def test_a_path_into_scenarios_collects_items_with_markers(project: Path) -> None:
    r = _pytest(project, "--collect-only", "scenarios", "-m", "route_R02 and function_F03 and kind_positive")
    assert "scenarios/R02/F03.yaml::F03-T01" in r.stdout, r.stdout
    other = _pytest(project, "--collect-only", "scenarios", "-m", "route_R05")
    assert "1 deselected" in other.stdout, other.stdout


def test_a_broken_file_fails_collection_with_its_line(project: Path) -> None:
    f = project / "scenarios" / "R02" / "F03.yaml"
    f.write_text(GOOD.replace("    kind: positive", "    kind: maybe"), encoding="utf-8")
    r = _pytest(project, "--collect-only", "scenarios")
    assert r.returncode != 0
    assert "F03.yaml:6 error SCN-SHAPE" in r.stdout, r.stdout


def test_a_run_against_the_reference_sut_writes_junit(project: Path) -> None:
    r = _pytest(project, "scenarios", "--juki-sut=reference", "--junitxml=report.xml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
    suite = etree.parse(str(project / "report.xml")).getroot()
    case = next(suite.iter("testcase"))
    assert case.get("name") == "F03-T01"
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["route"] == "R02" and props["verdict"] == "pass"
