"""The scenario loader: schema and cross-reference errors carry the file's line; good files load."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import HarnessError
from conformance.scenario import load_suite, load_text

GOOD = """\
defaults:
  route: R04
  functions: [F06]
  law: 住基法30条の5・6
scenarios:
  - id: F06-T01
    title: {ja: 転居の本人確認情報通知, en: identity notice on a move}
    kind: positive
    fixtures:
      residents:
        taro: {card: false}
    steps:
      - id: move
        counter: MovingNotification
        body: |
          <Kind>転居</Kind>{{ jdate_xml(today, 'EventDate') }}
          <Person><JuminhyoCode>{{ fixture.taro.juminhyo_code }}</JuminhyoCode></Person>
    expect:
      - check: content.message
        match: {arrow: 8, type: IdentityNotice, after: move}
        assert:
          - {xpath: "j:Change/j:Reason/@code", equals: M01}
      - check: sequence.absent
        match: {arrow: 29}
"""


def _load(text: str) -> list[object]:
    return list(load_text(text, "scenarios/R04/F06.yaml"))


def _error(text: str) -> HarnessError:
    with pytest.raises(HarnessError) as exc:
        load_text(text, "scenarios/R04/F06.yaml")
    return exc.value


def test_a_good_file_loads_with_defaults_and_lines() -> None:
    (sc,) = load_text(GOOD, "scenarios/R04/F06.yaml")
    assert sc.id == "F06-T01"
    assert sc.route == "R04" and sc.functions == ("F06",) and sc.law == "住基法30条の5・6"
    assert [s.action for s in sc.steps] == ["counter"]
    assert sc.steps[0].line == 13
    assert [e.check for e in sc.expect] == ["content.message", "sequence.absent"]
    assert sc.expect[0].line == 19
    assert sc.residents[0].name == "taro" and sc.residents[0].card is False
    assert sc.markers == ["route_R04", "function_F06", "kind_positive"]


@pytest.mark.parametrize(("old", "new", "line", "code", "words"), [
    ("    kind: positive", "    kind: sometimes", 8, "SCN-SHAPE", "kind"),
    ("        counter: MovingNotification", "        counter: MovingNotificaton", 14, "SCN-STEP",
     "unknown counter operation"),
    ("      - check: sequence.absent", "      - check: sequence.absnt", 23, "SCN-CHECK", "unknown check"),
    ("        match: {arrow: 29}", "        match: {arow: 29}", 24, "SCN-CHECK", "arow"),
    ("  functions: [F06]", "  functions: [F07]", 3, "SCN-FUNCTION", "belongs to route R05"),
    ("        match: {arrow: 8, type: IdentityNotice, after: move}",
     "        match: {arrow: 8, type: IdentityNotice, after: mvoe}", 19, "SCN-CHECK", "no step with id"),
    ("          - {xpath: \"j:Change/j:Reason/@code\", equals: M01}",
     "          - {xpath: \"j:Change/j:Reason/@code\"}", 22, "SCN-CHECK", "needs an operator"),
])
def test_a_broken_file_fails_with_its_line(old: str, new: str, line: int, code: str, words: str) -> None:
    assert old in GOOD
    err = _error(GOOD.replace(old, new))
    f = err.findings[0]
    assert f.code == code, err
    assert f.line == line, err
    assert f.file == "scenarios/R04/F06.yaml"
    assert words in f.message


def test_template_syntax_errors_are_found_when_loading() -> None:
    err = _error(GOOD.replace("{{ fixture.taro.juminhyo_code }}", "{{ fixture.taro.juminhyo_code }"))
    assert err.findings[0].code == "SCN-TEMPLATE"
    assert err.findings[0].line == 17


def test_a_step_needs_exactly_one_action() -> None:
    bad = GOOD.replace("        counter: MovingNotification\n",
                       "        counter: MovingNotification\n        settle: 0.1\n")
    f = _error(bad).findings[0]
    assert f.code == "SCN-STEP" and "exactly one action" in f.message and f.line == 13


def test_yaml_syntax_error_has_a_line() -> None:
    f = _error(GOOD.replace("    kind: positive", "    kind: [positive")).findings[0]
    assert f.code == "SCN-YAML" and f.line is not None and f.line >= 8


def test_the_folder_must_match_the_route(tmp_path: Path) -> None:
    d = tmp_path / "R05"
    d.mkdir()
    (d / "F06.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(HarnessError) as exc:
        load_suite(tmp_path)
    assert any(f.code == "SCN-ROUTE" and "folder R05" in f.message for f in exc.value.findings)


def test_duplicate_ids_across_files_fail(tmp_path: Path) -> None:
    d = tmp_path / "R04"
    d.mkdir()
    (d / "F06.yaml").write_text(GOOD, encoding="utf-8")
    (d / "F06b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(HarnessError) as exc:
        load_suite(tmp_path)
    assert [f.code for f in exc.value.findings] == ["SCN-DUP"]


def test_suite_digest_changes_with_content(tmp_path: Path) -> None:
    d = tmp_path / "R04"
    d.mkdir()
    (tmp_path / "suite.yaml").write_text("version: '9.1'\n", encoding="utf-8")
    (d / "F06.yaml").write_text(GOOD, encoding="utf-8")
    a = load_suite(tmp_path)
    (d / "F06.yaml").write_text(GOOD.replace("転居の", "転居に伴う"), encoding="utf-8")
    b = load_suite(tmp_path)
    assert a.version == "9.1" and len(a.scenarios) == 1
    assert a.digest != b.digest


def test_an_expectation_may_name_its_rule_and_per_person_order_loads() -> None:
    text = GOOD.replace("      - check: sequence.absent\n", """      - check: sequence.order
        because: "contract §3 (1 before 2, per person)"
        per: "(.//j:JuminhyoCode)[1]"
        messages: [{arrow: 8, type: IdentityNotice}, {arrow: 21, type: ResidentTransfer}]
      - check: sequence.absent
""")
    sc = load_text(text, "scenarios/R04/F06.yaml")[0]
    order = next(e for e in sc.expect if e.check == "sequence.order")
    assert order.params["because"].startswith("contract §3") and order.params["per"]
    bad = text.replace('because: "contract §3 (1 before 2, per person)"', "because: [not, a, string]")
    assert "because" in str(_error(bad))
