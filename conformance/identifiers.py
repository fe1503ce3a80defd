"""Check digits of the register's identifiers: 個人番号, 地方公共団体コード, 住民票コード, 在留カード番号.

Functions take and return ASCII digit strings: full-width digits or separators are *not* identifiers here
(the CLASS-MYNUMBER rule normalises free text itself). Malformed input to ``*_check_digit``/``make_*`` is a
programming error and raises ValueError; ``is_valid_*`` never raises.

Known property of every mod-11 scheme below: remainders 0 and 1 share the check digit 0 (for the 地方公共団体
コード, remainders 0 and 10 share 1), so a few single-digit changes go undetected. That is the published
algorithm, not a bug here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from operator import mul

__all__ = [
    "JUMINHYO_ALGORITHMS",
    "JUMINHYO_ENV",
    "current_juminhyo_algorithm",
    "is_valid_juminhyo_code",
    "is_valid_lg_code",
    "is_valid_my_number",
    "is_valid_residence_card_no",
    "juminhyo_check_digit",
    "lg_code_check_digit",
    "make_juminhyo_code",
    "make_lg_code",
    "make_my_number",
    "my_number_check_digit",
    "register_juminhyo_algorithm",
    "set_juminhyo_algorithm",
]

# --- 個人番号 (番号法施行令8条; 総務省令85号 5条) ---
# Q(n) = n+1 (n<=6), n-5 (n>=7) for the n-th digit from the right; read left to right: 6,5,4,3,2,7,6,5,4,3,2.
_MY_NUMBER_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_MY_NUMBER_BIAS = 48 * sum(_MY_NUMBER_WEIGHTS)  # the weighted sum of the ASCII codes of "0"


def _ascii_digits(s: str, n: int) -> bool:
    return len(s) == n and s.isascii() and s.isdigit()


def _digits(s: str, n: int, what: str) -> None:
    if not _ascii_digits(s, n):
        raise ValueError(f"{what} must be {n} ASCII digits, got {s!r}")


def my_number_check_digit(first11: str) -> int:
    """検査用数字 of a 個人番号 from its first 11 digits."""
    _digits(first11, 11, "the first 11 digits of a 個人番号")
    r = int(sum(map(mul, first11.encode(), _MY_NUMBER_WEIGHTS)) - _MY_NUMBER_BIAS) % 11
    return 0 if r <= 1 else 11 - r


def is_valid_my_number(s: str) -> bool:
    """True for exactly 12 ASCII digits whose last digit is the 検査用数字."""
    if not _ascii_digits(s, 12):
        return False
    b = s.encode()
    r = int(sum(map(mul, b, _MY_NUMBER_WEIGHTS)) - _MY_NUMBER_BIAS) % 11  # map stops after 11 digits
    return b[11] - 48 == (0 if r <= 1 else 11 - r)


def make_my_number(first11: str) -> str:
    """The 12-digit 個人番号 with ``first11`` and its check digit."""
    return f"{first11}{my_number_check_digit(first11)}"


# --- 全国地方公共団体コード (JIS X 0402) ---
_LG_WEIGHTS = (6, 5, 4, 3, 2)
_LG_BIAS = 48 * sum(_LG_WEIGHTS)


def lg_code_check_digit(first5: str) -> int:
    """検査数字 of a 全国地方公共団体コード: (11 − ((6a+5b+4c+3d+2e) mod 11)) mod 10."""
    _digits(first5, 5, "the first 5 digits of a 地方公共団体コード")
    return int(11 - (sum(map(mul, first5.encode(), _LG_WEIGHTS)) - _LG_BIAS) % 11) % 10


def is_valid_lg_code(s: str) -> bool:
    """True for exactly 6 ASCII digits whose last digit is the 検査数字."""
    if not _ascii_digits(s, 6):
        return False
    b = s.encode()
    return b[5] - 48 == int(11 - (sum(map(mul, b, _LG_WEIGHTS)) - _LG_BIAS) % 11) % 10


def make_lg_code(first5: str) -> str:
    """The 6-digit code with ``first5`` (都道府県2桁 + 市区町村3桁) and its check digit."""
    return f"{first5}{lg_code_check_digit(first5)}"


# --- 住民票コード (住基法施行規則1条: formula set by the minister, text not public) ---
JUMINHYO_ENV = "JUKI_JUMINHYO_CHECK"
_DEFAULT_JUMINHYO = "mod11-w2-7"


# Weights 2..7 repeating from the rightmost digit: 5,4,3,2,7,6,5,4,3,2 read left to right.
_W2_7 = tuple(2 + i % 6 for i in range(10))[::-1]
_W2_7_BIAS = 48 * sum(_W2_7)


def _mod11_w2_7(first10: str) -> int | None:
    r = int(sum(map(mul, first10.encode(), _W2_7)) - _W2_7_BIAS) % 11
    return 0 if r <= 1 else 11 - r


def _none(first10: str) -> int | None:
    return None


# name -> callable(first 10 digits) -> check digit, or None for "any digit is accepted" (format only).
JUMINHYO_ALGORITHMS: dict[str, Callable[[str], int | None]] = {
    "mod11-w2-7": _mod11_w2_7,
    "none": _none,
}
_selected: str | None = None  # set by set_juminhyo_algorithm()
_from_env: str | None = None  # $JUKI_JUMINHYO_CHECK as read once (the rules ask on every message)


def register_juminhyo_algorithm(name: str, fn: Callable[[str], int | None]) -> None:
    """Add an algorithm (e.g. the real one, where a deployment knows it) under ``name``."""
    JUMINHYO_ALGORITHMS[name] = fn


def set_juminhyo_algorithm(name: str | None) -> None:
    """Select the algorithm for this process; None returns to $JUKI_JUMINHYO_CHECK (read afresh)."""
    global _selected, _from_env
    if name is not None and name not in JUMINHYO_ALGORITHMS:
        raise ValueError(f"unknown 住民票コード algorithm {name!r}; known: {', '.join(JUMINHYO_ALGORITHMS)}")
    _selected, _from_env = name, None


def current_juminhyo_algorithm() -> str:
    """The algorithm in force: set_juminhyo_algorithm(), else $JUKI_JUMINHYO_CHECK, else "mod11-w2-7".

    The environment variable is read on first use and again after ``set_juminhyo_algorithm(None)``.
    """
    global _from_env
    name = _selected or _from_env
    if name is None:
        name = os.environ.get(JUMINHYO_ENV) or _DEFAULT_JUMINHYO
        if name not in JUMINHYO_ALGORITHMS:
            known = ", ".join(JUMINHYO_ALGORITHMS)
            raise ValueError(f"${JUMINHYO_ENV}={name!r} names no 住民票コード algorithm; known: {known}")
        _from_env = name
    return name


def juminhyo_check_digit(first10: str, algorithm: str | None = None) -> int | None:
    """Check digit of a 住民票コード by the selected algorithm (None: the algorithm checks format only).

    **Unverified**: the minister's formula (住基法施行規則1条) is not public. The default "mod11-w2-7"
    (weights 2..7 repeating from the right, r = Σ mod 11, check = 0 if r ≤ 1 else 11 − r) is this project's
    assumption; select another with set_juminhyo_algorithm() or $JUKI_JUMINHYO_CHECK ("none": format only).
    """
    _digits(first10, 10, "the first 10 digits of a 住民票コード")
    return JUMINHYO_ALGORITHMS[algorithm or current_juminhyo_algorithm()](first10)


def is_valid_juminhyo_code(s: str, algorithm: str | None = None) -> bool:
    """True for 11 ASCII digits whose last digit fits the selected (unverified) algorithm."""
    if not _ascii_digits(s, 11):
        return False
    check = JUMINHYO_ALGORITHMS[algorithm or current_juminhyo_algorithm()](s[:10])
    return check is None or int(s[10]) == check


def make_juminhyo_code(first10: str, algorithm: str | None = None) -> str:
    """The 11-digit 住民票コード for ``first10`` (check digit 0 under an algorithm that has none)."""
    check = juminhyo_check_digit(first10, algorithm)
    return f"{first10}{0 if check is None else check}"


# --- 在留カード番号 ---
_RESIDENCE_CARD = re.compile(r"[A-Z]{2}[0-9]{8}[A-Z]{2}")


def is_valid_residence_card_no(s: str) -> bool:
    """Format only (英字2・数字8・英字2): no check digit is published for the 在留カード番号."""
    return _RESIDENCE_CARD.fullmatch(s) is not None
