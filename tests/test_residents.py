"""Synthetic residents: reproducible, valid identifiers, coherent households, and the hard cases present."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path

import pytest
from faker import Faker

from conformance.errors import HarnessError
from conformance.identifiers import (
    is_valid_juminhyo_code,
    is_valid_lg_code,
    is_valid_my_number,
    is_valid_residence_card_no,
)
from conformance.model import ENTRY_KINDS, FOREIGN_CATEGORIES, RELATIONSHIPS, Address, Resident
from conformance.residents import (
    DEFAULT_TODAY,
    HARD_KINDS,
    LONG_SURNAMES,
    PREFECTURES,
    FakerSeat,
    JukiProvider,
    ResidentFactory,
    make_faker,
    municipality_for,
)
from conformance.wareki import from_wareki, parse_uncertain, to_wareki

SEED = 20250401
LG = "131016"
N = 200
KATAKANA = re.compile(r"[ァ-ヺー\u3000]+")
LATIN = re.compile(r"[A-Z]+( [A-Z]+)*")
CERT_SERIAL = re.compile(r"[0-9A-F]{16,40}")
CARD_NO = re.compile(r"C[0-9A-Z]{11}")
IDENT_NO = re.compile(r"ID[0-9A-Z]{14}")
HOUSEHOLD_NO = re.compile(r"[0-9]{1,12}")
POSTAL = re.compile(r"[0-9]{3}-[0-9]{4}")
LONG_KANJI = {s for s, _ in LONG_SURNAMES}


def build_corpus(seed: int = SEED) -> list[Resident]:
    """200 residents: people living alone, households of 2-5, foreign residents (通称, 特別永住者)."""
    f = ResidentFactory(seed, LG)
    out = f.residents(110)
    for size in (2, 3, 4, 5) * 4:
        out += f.household(size)
    out += [f.foreign_resident() for _ in range(10)]
    out += [f.foreign_resident(tsusho=True) for _ in range(5)]
    out += [f.foreign_resident(category="特別永住者") for _ in range(5)]
    out += f.residents(N - len(out))
    assert len(out) == N
    return out


@cache
def corpus() -> tuple[Resident, ...]:
    return tuple(build_corpus())


def _name_text(r: Resident) -> str:
    n = r.name
    return "".join(x for x in (n.kanji, n.kana, n.latin, n.tsusho, n.tsusho_kana, n.former_surname,
                                n.former_surname_kana) if x)


def _in(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def features(r: Resident) -> set[str]:
    """Which hard cases a resident shows, judged from its content alone."""
    out: set[str] = set()
    text = _name_text(r)
    if any(0xE0100 <= ord(c) <= 0xE01EF for c in text):
        out.add("ivs")
    base = "".join(c for c in text if not 0xE0100 <= ord(c) <= 0xE01EF)
    for c in base:
        if not _in(c, "shift_jis"):
            out.add("jisx0213" if _in(c, "shift_jis_2004") else "beyond_jis")
    if (r.name.kanji and r.name.kanji.split("\u3000")[0] in LONG_KANJI) or len(r.name.latin or "") >= 30:
        out.add("long_name")
    if r.name.former_surname:
        out.add("former_surname")
    if r.foreign is not None:
        out.add("foreign_tsusho" if r.name.tsusho else "foreign")
    if r.birth_date.uncertain is not None:
        out.add("uncertain_date")
    if r.birth_date.wareki and r.birth_date.wareki[:2] in ("明治", "大正"):
        out.add("old_era")
    return out


def _walk_strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, tuple | list):
        return [s for x in obj for s in _walk_strings(x)]
    if hasattr(obj, "__slots__"):
        return [s for k in obj.__slots__ for s in _walk_strings(getattr(obj, k))]
    return []


def _digest(rs: list[Resident]) -> str:
    return hashlib.sha256(repr(rs).encode("utf-8")).hexdigest()


# --- reproducibility --------------------------------------------------------------------
def test_same_seed_gives_same_world() -> None:
    a, b = ResidentFactory(7, LG), ResidentFactory(7, LG)
    assert a.residents(40) == b.residents(40)
    assert a.household(4) == b.household(4)
    assert a.foreign_resident() == b.foreign_resident()
    assert a.peer_municipalities(10) == b.peer_municipalities(10)


def test_a_reseeded_faker_seat_gives_the_same_world_as_a_new_faker() -> None:
    """The load plan reuses one Faker per process (``FakerSeat``): each factory taking the seat in turn must
    draw exactly what a factory with its own new Faker draws, whatever was drawn from the seat before."""
    seat = FakerSeat()
    for seed in (7, 8, 7):
        with_seat = ResidentFactory(seed, LG, seat=seat)
        alone = ResidentFactory(seed, LG)
        assert with_seat.residents(12) == alone.residents(12)
        assert with_seat.p.card_no() == alone.p.card_no()
        seat.take("anything")  # another taker in between
    assert seat.take("load:3:131016")[0].address() == make_faker("load:3:131016").address()


def test_other_seed_or_municipality_gives_other_world() -> None:
    base = ResidentFactory(7, LG).residents(10)
    assert ResidentFactory(8, LG).residents(10) != base
    assert ResidentFactory(7, "131130").residents(10) != base


@pytest.mark.parametrize("hashseed", ["1", "4242"])
def test_reproducible_across_processes(hashseed: str) -> None:
    code = ("import hashlib; from conformance.residents import ResidentFactory as F; f = F(11, '131016'); "
            "rs = f.residents(30) + f.household(4) + [f.foreign_resident()]; "
            "print(hashlib.sha256(repr(rs).encode('utf-8')).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[1])
    f = ResidentFactory(11, LG)
    assert out.stdout.strip() == _digest(f.residents(30) + f.household(4) + [f.foreign_resident()])


# --- identifiers ------------------------------------------------------------------------
@pytest.mark.parametrize("i", range(N))
def test_identifiers_are_valid(i: int) -> None:
    r = corpus()[i]
    assert r.my_number is not None and is_valid_my_number(r.my_number)
    assert is_valid_juminhyo_code(r.juminhyo_code)
    assert r.address.lg_code == LG
    assert r.address.postal_code is not None and POSTAL.fullmatch(r.address.postal_code)
    assert HOUSEHOLD_NO.fullmatch(r.household_no)
    assert r.identification_no is not None and IDENT_NO.fullmatch(r.identification_no)
    assert (r.card_serial is None) == (r.card_no is None)
    if r.card_serial is not None:
        assert CERT_SERIAL.fullmatch(r.card_serial) and CARD_NO.fullmatch(r.card_no or "")
    prev = r.previous_address
    if prev is not None and not prev.is_overseas:
        assert prev.lg_code is not None and is_valid_lg_code(prev.lg_code)
    if r.honseki is not None:
        assert is_valid_lg_code(r.honseki.lg_code)
    if r.foreign is not None:
        assert is_valid_residence_card_no(r.foreign.residence_card_no)


def test_identifiers_never_repeat() -> None:
    f = ResidentFactory(3, LG, card_share=1.0)
    rs = f.residents(600) + [m for size in (3, 4, 5) * 20 for m in f.household(size)]
    rs += [f.foreign_resident() for _ in range(200)]
    for key in ("my_number", "juminhyo_code", "card_serial", "card_no", "identification_no"):
        values = [getattr(r, key) for r in rs]
        assert None not in values, key
        assert len(set(values)) == len(values), key
    cards = [r.foreign.residence_card_no for r in rs if r.foreign]
    assert len(set(cards)) == len(cards)
    heads = [r for r in rs if r.relationship == "世帯主"]
    assert len({r.household_no for r in heads}) == len(heads)


# --- dates, text ------------------------------------------------------------------------
@pytest.mark.parametrize("i", range(N))
def test_dates_are_consistent(i: int) -> None:
    r = corpus()[i]
    jdates = [r.birth_date, r.resident_since, r.address_since]
    for j in jdates:
        assert j is not None
        if j.western is not None:
            assert j.wareki == to_wareki(j.western)
            assert from_wareki(j.wareki) == j.western
        else:
            assert j.uncertain is not None
            parse_uncertain(j.uncertain)  # raises on a form or era year the XSD or era table refuses
    since, moved = r.resident_since, r.address_since
    assert since is not None and moved is not None and since.western and moved.western
    assert since.western <= moved.western < DEFAULT_TODAY
    if r.birth_date.western is not None:
        assert r.birth_date.western <= since.western
    for e in r.entries:
        assert e.kind in ENTRY_KINDS
        assert since.western <= e.from_ <= DEFAULT_TODAY
    if r.foreign is not None and r.foreign.period_end is not None:
        assert r.foreign.period_end > DEFAULT_TODAY


@pytest.mark.parametrize("i", range(N))
def test_text_is_clean(i: int) -> None:
    r = corpus()[i]
    for s in _walk_strings(r):
        assert 1 <= len(s) <= 200
        assert not any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000 for c in s), f"PUA in {s!r}"
    n = r.name
    for kana in (n.kana, n.tsusho_kana, n.former_surname_kana):
        assert kana is None or KATAKANA.fullmatch(kana), kana
    assert (n.former_surname is None) == (n.former_surname_kana is None)
    assert (n.tsusho is None) == (n.tsusho_kana is None)
    if r.foreign is None:
        assert n.kanji and n.kana and n.latin is None and n.tsusho is None and r.honseki is not None
    else:
        assert n.latin and LATIN.fullmatch(n.latin) and len(n.latin) <= 40
        assert r.honseki is None and r.foreign.category in FOREIGN_CATEGORIES
    assert r.relationship in RELATIONSHIPS and r.sex in ("1", "2")


# --- hard cases -------------------------------------------------------------------------
def test_corpus_holds_every_hard_case() -> None:
    seen = Counter(k for r in corpus() for k in features(r))
    for kind in (*HARD_KINDS, "jisx0213", "beyond_jis"):
        assert seen[kind] >= 1, (kind, seen)
    assert any(r.foreign and r.foreign.category == "特別永住者" and r.name.tsusho for r in corpus())


def test_births_span_every_era() -> None:
    f = ResidentFactory(4, LG)
    rs = f.residents(300) + [f.resident(hard="old_era") for _ in range(20)]
    rs += [m for _ in range(30) for m in f.household(4)]
    eras = Counter((r.birth_date.wareki or "")[:2] for r in rs if r.birth_date.western)
    assert set(eras) == {"明治", "大正", "昭和", "平成", "令和"}
    assert eras["明治"] < eras["大正"] < eras["平成"] < eras["昭和"]


def test_hard_share_is_about_configured() -> None:
    rs = ResidentFactory(5, LG).residents(600)
    hard = [r for r in rs if features(r) - {"old_era"}]
    assert 0.10 <= len(hard) / len(rs) <= 0.22


def test_no_hard_cases_when_share_is_zero() -> None:
    rs = ResidentFactory(5, LG, hard_share=0.0).residents(300)
    assert [r for r in rs if features(r) - {"old_era"}] == []


@pytest.mark.parametrize("kind", HARD_KINDS)
def test_forced_hard_case_shows(kind: str) -> None:
    f = ResidentFactory(9, LG, hard_share=0.0)
    for _ in range(5):
        assert kind in features(f.resident(hard=kind))


def test_unknown_hard_case_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown hard case"):
        ResidentFactory(1, LG).resident(hard="martian")


# --- households and foreign residents ---------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("hard", [None, "foreign", "ivs", "old_era", "former_surname"])
def test_household_is_coherent(size: int, hard: str | None) -> None:
    f = ResidentFactory(size * 31, LG, hard_share=0.0)
    for _ in range(4):
        hh = f.household(size, hard=hard)
        head = hh[0]
        assert len(hh) == size and head.relationship == "世帯主"
        assert [m.relationship for m in hh].count("世帯主") == 1
        assert {m.household_no for m in hh} == {head.household_no}
        assert {m.head_name for m in hh} == {head.name.kanji or head.name.latin}
        assert {m.address for m in hh} == {head.address}
        assert all(m.is_foreign == head.is_foreign for m in hh)
        births = [m.birth_date.western or date(1900, 1, 1) for m in hh]
        for m, b in zip(hh, births, strict=True):
            if m.relationship in ("妻", "夫"):
                assert m.sex != head.sex
            if m.relationship == "子" and head.birth_date.western:
                assert b > head.birth_date.western
            if m.relationship in ("父", "母") and head.birth_date.western:
                assert b < head.birth_date.western
        if not head.is_foreign:
            family = (head.name.kanji or "").split("\u3000")[0]
            for m in hh:
                if m.relationship != "同居人":
                    assert (m.name.kanji or "").startswith(family)
    with pytest.raises(ValueError):
        f.household(0)


@pytest.mark.parametrize("category", ["中長期在留者", "特別永住者", "一時庇護許可者"])
def test_foreign_resident_fields(category: str) -> None:
    f = ResidentFactory(17, LG)
    for _ in range(15):
        r = f.foreign_resident(category=category, tsusho=True)
        info = r.foreign
        assert info is not None and info.category == category
        assert r.name.tsusho and r.name.tsusho_kana and r.name.latin
        if category == "中長期在留者":
            assert info.residence_status
            assert (info.period_of_stay is None) == (info.period_end is None)
        else:
            assert info.residence_status is None and info.period_of_stay is None
            assert info.period_end is None
    with pytest.raises(ValueError):
        f.foreign_resident(category="観光客")


# --- municipalities ---------------------------------------------------------------------
def test_peer_municipalities_are_valid_distinct_and_never_reused() -> None:
    f = ResidentFactory(1, LG)
    first = f.peer_municipalities(300, exclude=["13113", "271004"])
    second = f.peer_municipalities(300)
    codes = [m.lg_code for m in first + second]
    assert len(set(codes)) == 600 and LG not in codes
    assert "131130" not in codes and "271004" not in codes
    prefs = {p[0]: p[1] for p in PREFECTURES}
    for m in first + second:
        assert is_valid_lg_code(m.lg_code) and prefs[m.pref_code] == m.prefecture
        assert re.fullmatch(r"[0-9]{3}", m.postal_prefix) and m.city
    with pytest.raises(HarnessError) as e:
        f.peer_municipalities(10**6)
    assert e.value.findings[0].code == "ID-EXHAUSTED"


@pytest.mark.parametrize(("code", "city"), [("131016", "千代田区"), ("13101", "千代田区"),
                                            ("473821", "八重山郡与那国町"), ("011002", "札幌市")])
def test_known_municipalities(code: str, city: str) -> None:
    m = municipality_for(code)
    assert m.city == city and is_valid_lg_code(m.lg_code) and m.lg_code.startswith(code[:5])


@pytest.mark.parametrize("code", ["131017", "48101", "1310", "abcde"])
def test_bad_municipality_codes_are_refused(code: str) -> None:
    with pytest.raises(HarnessError) as e:
        ResidentFactory(1, code)
    assert e.value.findings[0].code == "ID-LGCODE"


def test_home_addresses_are_in_the_home_municipality() -> None:
    f = ResidentFactory(2, "271004")
    home = f.municipality()
    for r in f.residents(30):
        a: Address = r.address
        assert (a.lg_code, a.prefecture, a.city) == (home.lg_code, "大阪府", "大阪市")
        assert a.postal_code and a.postal_code.startswith(home.postal_prefix)


# --- the Faker provider -----------------------------------------------------------------
def test_provider_registers_on_faker() -> None:
    fake = make_faker(3)
    assert is_valid_my_number(fake.my_number())
    assert is_valid_juminhyo_code(fake.juminhyo_code())
    assert is_valid_lg_code(fake.municipal_lg_code("47"))
    plain = Faker("ja_JP")
    plain.add_provider(JukiProvider)
    name = plain.japanese_name("2", kind="ivs")
    assert "\U000e0100" in name.kanji and KATAKANA.fullmatch(name.kana)
    assert plain.prefecture()  # Faker's own ja_JP methods are not shadowed
