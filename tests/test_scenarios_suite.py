"""The shipped suite as data: it loads, covers every function and route, and every defect has its catcher."""

from __future__ import annotations

from collections import Counter

import pytest

from conformance import catalogue
from conformance.scenario import Suite, load_suite
from conformance.selftest import load_defects


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite()


def test_the_suite_loads_with_a_version_and_digest(suite: Suite) -> None:
    assert suite.version == "1.0"
    assert len(suite.digest) == 64
    assert len(suite.scenarios) >= 90


@pytest.mark.parametrize("fid", sorted(catalogue.default().functions))
def test_every_function_has_a_positive_and_two_negative_scenarios(suite: Suite, fid: str) -> None:
    kinds = Counter(s.kind for s in suite.scenarios if fid in s.functions)
    assert kinds["positive"] >= 1, f"{fid} has no positive scenario"
    assert kinds["negative"] >= 2, f"{fid} has {kinds['negative']} negative scenario(s)"


@pytest.mark.parametrize("rid", sorted(catalogue.default().routes))
def test_every_route_is_walked_end_to_end(suite: Suite, rid: str) -> None:
    walks = [s for s in suite.scenarios if s.route == rid and "walk" in s.tags]
    assert walks, f"route {rid} has no scenario tagged walk"


def test_scenario_ids_name_their_function(suite: Suite) -> None:
    for s in suite.scenarios:
        assert s.id.split("-")[0] in s.functions, s.id
        assert s.file.endswith(f"{s.route}/{s.id.split('-')[0]}.yaml"), (s.id, s.file)


def test_deadlines_hours_and_robustness_are_tested(suite: Suite) -> None:
    tags = Counter(t for s in suite.scenarios for t in s.tags)
    assert tags["deadline"] >= 6
    assert tags["robustness"] >= 10
    assert tags["downtime"] >= 2
    assert tags["malformed"] >= 2 and tags["duplicate"] >= 1 and tags["hours"] >= 1


def test_every_defect_of_the_reference_sut_names_an_existing_scenario(suite: Suite) -> None:
    from simulators.reference.defects import DEFECTS

    cases = load_defects(suite)
    assert {c.defect for c in cases} == set(DEFECTS)
    functions = {c.function for c in cases}
    assert functions == set(catalogue.default().functions)
