"""The registry (every catalogue actor has its simulator) and the toolbox: refusals, seeds, lgCodes, tokens, kana."""

from __future__ import annotations

import json

import pytest
from test_simulators_support import SUT, FakePort

from conformance import catalogue
from conformance.identifiers import is_valid_lg_code
from simulators.actors import SIMULATORS
from simulators.base import Message
from simulators.toolbox import (
    ACTORS,
    Refusal,
    SimBase,
    kana_key,
    lg_of,
    seed_fields,
    sibling,
    stable_token,
)


@pytest.mark.parametrize("actor", sorted(SIMULATORS))
def test_every_simulator_starts_empty_with_a_json_snapshot(actor: str) -> None:
    port = FakePort()
    sim = port.add(SIMULATORS[actor])
    assert sibling(port, actor) is sim  # type: ignore[arg-type]
    snap = sim.snapshot("T1")
    assert json.loads(json.dumps(snap, ensure_ascii=False)) == snap


def test_the_registry_hosts_exactly_the_catalogues_simulated_actors() -> None:
    hosted = {a.id for a in catalogue.default().actors.values() if a.role in ("simulator", "driver")}
    assert set(SIMULATORS) == hosted
    assert all(cls.actor == actor for actor, cls in SIMULATORS.items())


def test_an_actor_registers_itself_and_a_second_player_of_it_is_refused() -> None:
    try:
        class _Probe(SimBase, actor="probe-actor"):
            async def react(self, msg: Message) -> None:
                return None

        assert ACTORS["probe-actor"] is _Probe and _Probe.actor == "probe-actor"
        with pytest.raises(TypeError, match="probe-actor"):
            class _Other(SimBase, actor="probe-actor"):
                pass
    finally:
        ACTORS.pop("probe-actor", None)
    assert "probe-actor" not in SIMULATORS


def test_refusal_is_a_finding() -> None:
    f = Refusal("PREF-ORDER", "out of order").finding()
    assert (f.code, f.message, f.severity) == ("PREF-ORDER", "out of order", "error")


def test_lg_codes_of_upper_tiers() -> None:
    port = FakePort()
    assert lg_of(port, "pref") == "130001" and is_valid_lg_code(lg_of(port, "pref"))  # type: ignore[arg-type]
    assert lg_of(port, "national") == SUT  # type: ignore[arg-type]


def test_seed_fields_merge_nested_data_under_top_level_keys() -> None:
    assert seed_fields({"xml": "<x/>", "lg_code": "1", "data": {"lg_code": "2", "cards": [1]}}) == \
        {"xml": "<x/>", "lg_code": "1", "cards": [1]}


def test_stable_token_is_deterministic_and_sized() -> None:
    a = stable_token("x", "y", n=40)
    assert a == stable_token("x", "y", n=40) != stable_token("x", "z", n=40)
    assert len(a) == 40 and a.isalnum() and a.upper() == a


@pytest.mark.parametrize(("a", "b"), [("ヤマダ タロウ", "やまだ　たろう"), ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ")])
def test_kana_key_ignores_script_width_and_spaces(a: str, b: str) -> None:
    assert kana_key(a) == kana_key(b)
