"""Samples of every catalogue message type are valid, coherent and deterministic; each named mutation breaks
exactly the rule it is named for (the judge is judged: a valid sample passes, a broken one fails)."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from conformance import cli, mutations
from conformance.catalogue import default
from conformance.envelope import body_of, read_header
from conformance.errors import HarnessError
from conformance.identifiers import is_valid_lg_code
from conformance.rules import find_my_numbers
from conformance.samples import BUSINESS_DATE, SENT_AT, sample, sample_types
from conformance.validate import Checked, Validator
from conformance.xmlsafe import parse, q

CAT = default()
TYPES = sample_types()
SEED1 = {t: sample(t, seed=1) for t in TYPES}
ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / ".venv" / "bin" / "juki-harness"


def _first_class(type_id: str) -> str | None:
    mt = CAT.message_types[type_id]
    return CAT.arrows[mt.arrows[0]].data_class if mt.arrows else None


def _has(type_id: str, local: str) -> bool:
    return parse(SEED1[type_id]).find(f".//{q(local)}") is not None


SECRET = [t for t in TYPES if _first_class(t) in ("yellow", "blue")]
ID_CASES = [
    pytest.param(t, local, code, id=f"{t}-{local}")
    for local, code in (("MyNumber", "ID-MYNUMBER"), ("LgCode", "ID-LGCODE"), ("JuminhyoCode", "ID-JUMINHYO"))
    for t in TYPES
    if any(el.text and el.text.isdigit() for el in parse(SEED1[t]).iter(q(local)))
]
WAREKI = [t for t in TYPES if _has(t, "Wareki")]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _codes(checked: Checked) -> set[str]:
    return {f.code for f in checked.findings}


def _new_codes(validator: Validator, before: bytes, after: bytes) -> set[str]:
    """Codes of the findings the mutation added (a problem of the sample itself is not counted again)."""
    added = (Counter(f.code for f in validator.check(after).findings)
             - Counter(f.code for f in validator.check(before).findings))
    return set(added)


# --- the catalogue is covered -----------------------------------------------------------------------------

def test_every_catalogue_type_has_a_sample() -> None:
    assert list(CAT.message_types) == TYPES
    assert len(TYPES) >= 40
    assert SECRET, "the catalogue has yellow and blue types"
    assert len(WAREKI) >= 10


def test_parametrized_cases_cover_every_identifier_kind() -> None:
    kinds = {p.values[1] for p in ID_CASES}
    assert kinds == {"MyNumber", "LgCode", "JuminhyoCode"}


# --- valid ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_id", TYPES)
def test_sample_passes_the_validator(type_id: str, validator: Validator) -> None:
    checked = validator.check(SEED1[type_id])
    assert [f.for_people() for f in checked.findings] == []
    assert checked.ok
    assert checked.message_type is not None and checked.message_type.id == type_id


@pytest.mark.parametrize("type_id", TYPES)
def test_header_names_the_first_arrow(type_id: str, validator: Validator) -> None:
    root = parse(SEED1[type_id])
    h = read_header(root)
    mt = CAT.message_types[type_id]
    assert h.message_type == type_id
    assert etree.QName(body_of(root)).localname == mt.root
    assert h.sent_at == SENT_AT and h.business_date == BUSINESS_DATE
    assert is_valid_lg_code(h.sender_lg) and is_valid_lg_code(h.receiver_lg)
    # A message for another municipality (8 then 1) is addressed to cs with that municipality's code.
    for_peer = mt.arrows[:1] == (8,) and 1 in mt.arrows
    for actor, lg, to_peer in ((h.sender_actor, h.sender_lg, False), (h.receiver_actor, h.receiver_lg, for_peer)):
        assert (lg != "131016") if actor == "peer" or to_peer else (lg == "131016"), (actor, lg)
    if mt.arrows:
        checked = validator.check(SEED1[type_id])
        assert checked.arrow is not None
        assert checked.arrow == mt.arrows[0] or checked.arrow in mt.response_arrows.values()
        first = CAT.arrows[mt.arrows[0]]
        assert {h.sender_actor, h.receiver_actor} == {first.src, first.dst}


@pytest.mark.parametrize("type_id", ["IdentityNotice", "MoveOutCertRequest", "CertificateData", "MojNotice"])
def test_lg_code_names_the_sut(type_id: str, validator: Validator) -> None:
    data = sample(type_id, seed=4, lg_code="271004")
    h = read_header(parse(data))
    assert "271004" in (h.sender_lg, h.receiver_lg)
    assert "131016" not in (h.sender_lg, h.receiver_lg)
    assert validator.check(data).ok


@pytest.mark.parametrize("type_id", SECRET)
def test_secret_types_never_carry_a_my_number(type_id: str, validator: Validator) -> None:
    for seed in range(1, 16):
        data = sample(type_id, seed=seed)
        assert find_my_numbers(data.decode("utf-8")) == []
        assert parse(data).find(f".//{q('MyNumber')}") is None
        assert "CLASS-MYNUMBER" not in _codes(validator.check(data))


def test_green_samples_carry_valid_my_numbers() -> None:
    numbers = [el.text for t in TYPES for el in parse(SEED1[t]).iter(q("MyNumber")) if el.text != "false"]
    assert numbers and all(find_my_numbers(n or "") == [n] for n in numbers)


# --- deterministic ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_id", TYPES)
def test_deterministic_per_seed_and_different_across_seeds(type_id: str) -> None:
    assert sample(type_id, seed=1) == SEED1[type_id]
    other = sample(type_id, seed=2)
    assert other != SEED1[type_id]
    assert etree.tostring(body_of(parse(other))) != etree.tostring(body_of(parse(SEED1[type_id])))


def test_unknown_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(HarnessError) as e:
        sample("NoSuchMessage")
    assert e.value.findings[0].code == "ENV-TYPE"
    assert "IdentityNotice" in e.value.findings[0].message


# --- the CLI: sample | lint -------------------------------------------------------------------------------

@pytest.mark.parametrize("type_id", ["MoveOutCertInfo", "CertificateData"])
def test_sample_piped_into_lint(type_id: str, tmp_path: Path) -> None:
    copy = tmp_path / "sample.xml"
    pipe = f"{shlex.quote(str(EXE))} sample {type_id} --seed 1 | tee {shlex.quote(str(copy))} " \
           f"| {shlex.quote(str(EXE))} lint -"
    done = subprocess.run(["sh", "-c", pipe], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert b"1 file(s) checked, 0 failed" in done.stderr
    assert copy.read_bytes() == SEED1[type_id] + b"\n"  # the same bytes in another process


def test_cli_sample_then_lint_in_process_for_every_type(tmp_path: Path,
                                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    files = []
    for t in TYPES:
        assert cli.main(["sample", t, "--seed", "1"]) == 0
        out = capsysbinary.readouterr().out
        assert out == SEED1[t] + b"\n"
        path = tmp_path / f"{t}.xml"
        path.write_bytes(out)
        files.append(str(path))
    status = cli.main(["lint", *files])
    captured = capsysbinary.readouterr()
    assert status == 0, captured.out.decode()
    assert f"{len(TYPES)} file(s) checked, 0 failed".encode() in captured.err
    broken = tmp_path / "broken.xml"
    broken.write_bytes(mutations.extra_element(SEED1[TYPES[0]]))
    assert cli.main(["lint", str(broken)]) == 1
    assert b"XSD-INVALID" in capsysbinary.readouterr().out


# --- mutations: each breaks exactly its rule --------------------------------------------------------------

@pytest.mark.parametrize(("type_id", "local", "code"), ID_CASES)
def test_broken_check_digit_fails(type_id: str, local: str, code: str, validator: Validator) -> None:
    broken = mutations.break_check_digit(SEED1[type_id], local)
    assert broken != SEED1[type_id]
    checked = validator.check(broken)
    assert not checked.ok
    assert _new_codes(validator, SEED1[type_id], broken) == {code}


@pytest.mark.parametrize("type_id", SECRET)
def test_leaked_my_number_fails_on_yellow_and_blue(type_id: str, validator: Validator) -> None:
    leaked = mutations.leak_my_number(SEED1[type_id])
    assert mutations.LEAK_NUMBER.encode() in leaked
    checked = validator.check(leaked)
    assert not checked.ok
    assert _new_codes(validator, SEED1[type_id], leaked) == {"CLASS-MYNUMBER"}


def test_leaked_my_number_is_allowed_on_green(validator: Validator) -> None:
    leaked = mutations.leak_my_number(SEED1["IdentityNotice"])
    assert mutations.LEAK_NUMBER.encode() in leaked
    assert validator.check(leaked).ok


@pytest.mark.parametrize("type_id", WAREKI)
def test_bad_wareki_fails(type_id: str, validator: Validator) -> None:
    bad = mutations.bad_wareki(SEED1[type_id])
    assert _new_codes(validator, SEED1[type_id], bad) == {"DATE-WAREKI"}


@pytest.mark.parametrize("type_id", WAREKI)
def test_inconsistent_wareki_fails(type_id: str, validator: Validator) -> None:
    bad = mutations.inconsistent_wareki(SEED1[type_id])
    assert _new_codes(validator, SEED1[type_id], bad) == {"DATE-CONSISTENT"}


def test_bad_wareki_keeps_the_western_day_and_names_a_lost_era_year() -> None:
    from conformance.mutations import _nonexistent

    assert _nonexistent(date(2019, 5, 1)) == "平成31年5月1日"
    assert _nonexistent(date(1980, 1, 2)) == "大正69年1月2日"
    assert _nonexistent(date(1900, 1, 1)) is None  # 明治 has no era before it


@pytest.mark.parametrize("type_id", TYPES)
def test_extra_element_fails_the_schema(type_id: str, validator: Validator) -> None:
    bad = mutations.extra_element(SEED1[type_id])
    assert _new_codes(validator, SEED1[type_id], bad) == {"XSD-INVALID"}


@pytest.mark.parametrize(
    ("make", "code"),
    [(mutations.billion_laughs, "XML-ENTITY"), (mutations.external_entity, "XML-ENTITY"),
     (mutations.external_dtd, "XML-DTD")],
    ids=["billion_laughs", "external_entity", "external_dtd"],
)
def test_xml_attacks_are_refused_fast(make: Callable[[], bytes], code: str, validator: Validator) -> None:
    start = time.perf_counter()
    checked = validator.check(make())
    assert time.perf_counter() - start < 1.0
    assert not checked.ok and checked.root is None
    assert _codes(checked) == {code}


@pytest.mark.parametrize(
    ("mutate", "kwargs"),
    [(mutations.break_check_digit, {"local_name": "MyNumber"}), (mutations.bad_wareki, {}),
     (mutations.inconsistent_wareki, {})],
    ids=["no-mynumber", "no-wareki", "no-jdate"],
)
def test_a_mutation_with_nothing_to_break_says_so(mutate: Callable[..., bytes],
                                                  kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        mutate(SEED1["SymbolRequest"], **kwargs)


def test_mutations_by_name() -> None:
    data = SEED1["MojNotice"]
    assert mutations.mutate("extra_element", data) == mutations.extra_element(data)
    assert mutations.mutate("billion_laughs", b"") == mutations.billion_laughs()
    with pytest.raises(ValueError, match="known"):
        mutations.mutate("nope", data)
