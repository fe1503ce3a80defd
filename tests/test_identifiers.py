"""Check digits: worked examples, python-stdnum agreement, properties, the pluggable 住民票コード rule."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.jp import in_ as stdnum_in

from conformance import identifiers as ids
from conformance.identifiers import (
    is_valid_juminhyo_code,
    is_valid_lg_code,
    is_valid_my_number,
    is_valid_residence_card_no,
    lg_code_check_digit,
    make_juminhyo_code,
    make_lg_code,
    make_my_number,
    my_number_check_digit,
)


def prefix(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@pytest.fixture(autouse=True)
def default_juminhyo_algorithm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the default algorithm and leaves no selection behind."""
    monkeypatch.delenv(ids.JUMINHYO_ENV, raising=False)
    ids.set_juminhyo_algorithm(None)
    yield
    ids.set_juminhyo_algorithm(None)


# --- reference implementations written from the texts, independent of the module's arithmetic ---

def ref_my_number_remainder(first11: str) -> int:
    """番号法施行規則: P(n) the n-th digit from the right, Q(n) = n+1 (n <= 6) else n-5."""
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    return total % 11


def ref_lg_sum_mod(first5: str) -> int:
    a, b, c, d, e = (int(x) for x in first5)
    return (6 * a + 5 * b + 4 * c + 3 * d + 2 * e) % 11


def ref_w2_7_remainder(first10: str) -> int:
    return sum(int(dg) * (2 + i % 6) for i, dg in enumerate(reversed(first10))) % 11


# --- 個人番号 ---

@pytest.mark.parametrize(("first11", "full"), [
    ("12345678901", "123456789018"), ("98320567321", "983205673214"),
])
def test_my_number_worked_examples(first11: str, full: str) -> None:
    assert make_my_number(first11) == full
    assert my_number_check_digit(first11) == int(full[-1])
    assert is_valid_my_number(full)


@pytest.mark.parametrize("bad", [
    "123456789017", "12345678901", "1234567890180", "12345678901A", "１２３４５６７８９０１８",
    "1234 5678 9018", "",
])
def test_my_number_rejects(bad: str) -> None:
    assert not is_valid_my_number(bad)


@pytest.mark.parametrize("bad", ["1234567890", "1234567890a", "１２３４５６７８９０１"])
def test_my_number_check_digit_needs_11_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="11 ASCII digits"):
        my_number_check_digit(bad)


@given(prefix(11))
def test_my_number_agrees_with_python_stdnum(first11: str) -> None:
    assert str(my_number_check_digit(first11)) == stdnum_in.calc_check_digit(first11)
    assert stdnum_in.is_valid(make_my_number(first11))


@given(prefix(11))
def test_my_number_matches_the_text_of_the_ordinance(first11: str) -> None:
    r = ref_my_number_remainder(first11)
    assert my_number_check_digit(first11) == (0 if r <= 1 else 11 - r)


def one_digit_changes(s: str) -> Iterator[str]:
    for i, old in enumerate(s):
        for new in "0123456789":
            if new != old:
                yield s[:i] + new + s[i + 1:]


def _changes_detected(
    first: str, make: Callable[[str], str], valid: Callable[[str], bool], blind: Callable[[str, str], bool],
) -> None:
    code = make(first)
    assert valid(code)
    n = len(first)
    for changed in one_digit_changes(code):
        # The algorithms share one check digit between two remainders: a change between exactly those two
        # remainders cannot be seen. Everything else must be.
        if changed[n] == code[n] and blind(first, changed[:n]):
            assert valid(changed)
        else:
            assert not valid(changed), (code, changed)


@given(prefix(11))
def test_my_number_single_digit_change_is_detected(first11: str) -> None:
    _changes_detected(first11, make_my_number, is_valid_my_number,
                      lambda a, b: {ref_my_number_remainder(a), ref_my_number_remainder(b)} <= {0, 1})


def test_my_number_remainders_zero_and_one_share_check_digit_zero() -> None:
    # 00000000000 has r = 0; 00000000006 has r = 6 * Q(1) % 11 = 12 % 11 = 1: both end in 0.
    assert ref_my_number_remainder("00000000000") == 0 and ref_my_number_remainder("00000000006") == 1
    assert is_valid_my_number("000000000000") and is_valid_my_number("000000000060")


# --- 地方公共団体コード ---

@pytest.mark.parametrize(("first5", "full"), [
    ("13101", "131016"), ("13113", "131130"), ("47382", "473821"), ("01100", "011002"),
])
def test_lg_code_worked_examples(first5: str, full: str) -> None:
    assert make_lg_code(first5) == full
    assert lg_code_check_digit(first5) == int(full[-1])
    assert is_valid_lg_code(full)


@pytest.mark.parametrize("bad", ["131015", "13101", "1310160", "13101a", "１３１０１６", ""])
def test_lg_code_rejects(bad: str) -> None:
    assert not is_valid_lg_code(bad)


@given(prefix(5))
def test_lg_code_matches_jis_x_0402(first5: str) -> None:
    assert lg_code_check_digit(first5) == (11 - ref_lg_sum_mod(first5)) % 10


@given(prefix(5))
def test_lg_code_single_digit_change_is_detected(first5: str) -> None:
    _changes_detected(first5, make_lg_code, is_valid_lg_code,
                      lambda a, b: {ref_lg_sum_mod(a), ref_lg_sum_mod(b)} <= {0, 10})


# --- 住民票コード (unverified formula, pluggable) ---

def test_juminhyo_default_is_mod11_w2_7() -> None:
    assert ids.current_juminhyo_algorithm() == "mod11-w2-7"
    # 1234567890: weights from the right 2,3,4,5,6,7,2,3,4,5 -> 0*2+9*3+8*4+7*5+6*6+5*7+4*2+3*3+2*4+1*5 = 195;
    # 195 % 11 = 8; check = 11 - 8 = 3.
    assert make_juminhyo_code("1234567890") == "12345678903"
    assert is_valid_juminhyo_code("12345678903")
    assert not is_valid_juminhyo_code("12345678904")


@given(prefix(10))
def test_juminhyo_default_matches_its_definition(first10: str) -> None:
    r = ref_w2_7_remainder(first10)
    assert make_juminhyo_code(first10)[-1] == str(0 if r <= 1 else 11 - r)


@given(prefix(10))
def test_juminhyo_single_digit_change_is_detected(first10: str) -> None:
    _changes_detected(first10, make_juminhyo_code, is_valid_juminhyo_code,
                      lambda a, b: {ref_w2_7_remainder(a), ref_w2_7_remainder(b)} <= {0, 1})


@pytest.mark.parametrize("bad", ["1234567890", "123456789034", "1234567890a", "１２３４５６７８９０３"])
def test_juminhyo_rejects_malformed(bad: str) -> None:
    assert not is_valid_juminhyo_code(bad)


def test_juminhyo_none_checks_format_only() -> None:
    ids.set_juminhyo_algorithm("none")
    assert is_valid_juminhyo_code("12345678904") and is_valid_juminhyo_code("12345678903")
    assert not is_valid_juminhyo_code("1234567890")
    assert make_juminhyo_code("1234567890") == "12345678900"


def test_juminhyo_algorithm_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ids.JUMINHYO_ENV, "none")
    ids.set_juminhyo_algorithm(None)  # re-read the environment
    assert ids.current_juminhyo_algorithm() == "none"
    assert is_valid_juminhyo_code("12345678904")


def test_juminhyo_unknown_algorithm_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown 住民票コード algorithm"):
        ids.set_juminhyo_algorithm("luhn")
    monkeypatch.setenv(ids.JUMINHYO_ENV, "luhn")
    ids.set_juminhyo_algorithm(None)
    with pytest.raises(ValueError, match="JUKI_JUMINHYO_CHECK"):
        ids.current_juminhyo_algorithm()


def test_juminhyo_registered_algorithm_is_used() -> None:
    ids.register_juminhyo_algorithm("always-7", lambda first10: 7)
    try:
        ids.set_juminhyo_algorithm("always-7")
        assert make_juminhyo_code("0000000000") == "00000000007"
        assert not is_valid_juminhyo_code("00000000000")
    finally:
        ids.JUMINHYO_ALGORITHMS.pop("always-7")


def test_juminhyo_docstring_says_unverified() -> None:
    assert "nverified" in (ids.juminhyo_check_digit.__doc__ or "")


# --- 在留カード番号 ---

@pytest.mark.parametrize(("value", "ok"), [
    ("AB12345678CD", True), ("ab12345678cd", False), ("AB1234567CD", False), ("AB12345678C", False),
    ("ＡＢ12345678CD", False), ("AB12345678CDE", False), ("", False),
])
def test_residence_card_format(value: str, ok: bool) -> None:
    assert is_valid_residence_card_no(value) is ok
