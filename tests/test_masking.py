"""Masking of 個人番号: every valid one hidden in every written form, nothing else touched; config secrets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.identifiers import is_valid_my_number, make_my_number
from conformance.masking import find_my_number_spans, mask_obj, mask_text, redact_config, salted_hash
from conformance.rules import find_my_numbers

VALID = make_my_number("12345678901")  # 123456789018
assert VALID == "123456789018"
INVALID = VALID[:11] + str((int(VALID[11]) + 1) % 10)  # same digits, wrong check digit
FW = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(("text", "masked"), [
    (VALID, "********9018"),
    (f"<j:MyNumber>{VALID}</j:MyNumber>", "<j:MyNumber>********9018</j:MyNumber>"),
    ("1234-5678-9018", "********9018"),
    ("1234 5678 9018", "********9018"),
    ("1234　5678　9018", "********9018"),  # ideographic spaces
    ("1234‐5678−9018", "********9018"),  # hyphen, minus sign
    (VALID.translate(FW), "********９０１８"),  # full-width digits: the last four as written
    ("１２３４－５６７８－９０１８", "********９０１８"),  # full-width with full-width hyphens
    (f"個人番号{VALID}です", "個人番号********9018です"),
    (f"ID {VALID} on arrow 19", "ID ********9018 on arrow 19"),  # after a word: masked all the same
    (f"03-1234-5678 {VALID}", "03-1234-5678 ********9018"),  # a 12-digit group inside a longer chain
    (f"{VALID},{make_my_number('98765432109')}", "********9018,********1093"),
])
def test_valid_numbers_are_masked_in_every_form(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    INVALID,
    f"<j:MyNumber>{INVALID}</j:MyNumber>",
    "1234-5678-9019",
    INVALID.translate(FW),
    VALID + "0",  # 13 digits: not a 個人番号
    "9" + VALID,
    f"A{VALID}",  # glued to a letter: an identifier, not a number written alone
    f"{VALID}x",
    "1234-5678-901",  # 11 digits
    "no digits at all",
])
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text
    assert find_my_number_spans(text) == []


def test_spans_give_the_digits_and_where_they_are() -> None:
    text = f"a {VALID.translate(FW)} b 1234-5678-9018"
    hits = find_my_number_spans(text)
    assert [h.digits for h in hits] == [VALID, VALID]
    assert text[hits[0].start:hits[0].end] == VALID.translate(FW)
    assert text[hits[1].start:hits[1].end] == "1234-5678-9018"


def test_mask_obj_masks_strings_keys_and_number_valued_my_numbers_deeply() -> None:
    obj: dict[str, Any] = {"a": [VALID, {"b": f"x {VALID}"}], VALID: 1, "n": 123456789018,
                           "not": 123456789010, "ok": True}
    out = mask_obj(obj)
    assert out == {"a": ["********9018", {"b": "x ********9018"}], "********9018": 1, "n": "********9018",
                   "not": 123456789010, "ok": True}
    assert obj["a"][0] == VALID  # a copy: the input is unchanged


@given(st.text(alphabet="0123456789", min_size=11, max_size=11),
       st.sampled_from(["", " ", "番号:", "<x>", "ID "]), st.sampled_from(["", " ", "。", "</x>"]))
def test_any_valid_number_is_masked_to_its_last_four(first11: str, before: str, after: str) -> None:
    n = make_my_number(first11)
    out = mask_text(f"{before}{n}{after}")
    assert n not in out
    assert out == f"{before}********{n[-4:]}{after}"


@given(st.text(alphabet="0123456789", min_size=12, max_size=12).filter(lambda s: not is_valid_my_number(s)))
def test_any_invalid_twelve_digits_stay(number: str) -> None:
    assert mask_text(f"番号 {number}") == f"番号 {number}"


@given(st.text(alphabet=st.sampled_from("0123456789０１２３ -－　aZ号"), max_size=60))
def test_the_mask_hides_everything_the_class_rule_finds(text: str) -> None:
    """The mask is at least as wide as CLASS-MYNUMBER: nothing the judge calls a 個人番号 survives."""
    masked = mask_text(text)
    assert find_my_numbers(masked) == []


def test_salted_hash_depends_on_salt_and_number() -> None:
    assert salted_hash(VALID, "s1") == salted_hash(VALID, "s1")
    assert salted_hash(VALID, "s1") != salted_hash(VALID, "s2")
    assert salted_hash(VALID, "s1") != salted_hash(make_my_number("98765432109"), "s1")
    assert len(salted_hash(VALID, "s1")) == 64


def test_redact_config_removes_secrets_by_key_name_and_masks_numbers() -> None:
    cfg = {
        "token": "t0k", "api_key": "k", "tlsKey": "k2", "CLIENT-SECRET": "s", "password": "p",
        "passwords": ["a"],
        "db": {"user": "juki", "passwd": "x", "url": "sqlite:///trace.sqlite"}, "keys": ["a", "b"],
        "port": 8080, "note": f"resident {VALID}", "empty_token": None,
    }
    out = redact_config(cfg)
    for k in ("token", "api_key", "tlsKey", "CLIENT-SECRET", "password", "passwords", "keys"):
        assert out[k] == "***", k
    assert out["db"] == {"user": "juki", "passwd": "***", "url": "sqlite:///trace.sqlite"}
    assert out["port"] == 8080
    assert out["note"] == "resident ********9018"
    assert out["empty_token"] is None  # nothing to hide; None says "not set"
    assert redact_config(cfg, mask=False)["note"] == f"resident {VALID}"


# ------------------------------------------------------------------ logs, console, trace (issue 13 item 7)

JUMINHYO = "89358339965"


def test_mask_personal_hides_my_numbers_and_juminhyo_codes_only() -> None:
    from conformance.masking import mask_personal

    text = f"code {JUMINHYO} number {VALID} seq 12345 at 2026-03-30 id M-{JUMINHYO}X"
    assert mask_personal(text) == "code *******9965 number ********9018 seq 12345 at 2026-03-30 id M-" \
                                  f"{JUMINHYO}X"


def test_log_records_are_masked_whatever_handler_writes_them(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from conformance.masking import install_log_masking

    install_log_masking()
    caplog.set_level(logging.INFO)
    logging.getLogger("juki.test").info("resident %s with %s", JUMINHYO, VALID)
    assert JUMINHYO not in caplog.text and VALID not in caplog.text
    assert "*******9965" in caplog.text and "********9018" in caplog.text


def test_the_console_of_a_command_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from conformance.masking import masked_console

    with masked_console():
        print(f"住民票コード {JUMINHYO}")
        print(VALID, file=sys.stderr)
    out, err = capsys.readouterr()
    assert JUMINHYO not in out and "*******9965" in out
    assert VALID not in err and "********9018" in err
    with masked_console(raw=True):
        print(JUMINHYO)
    assert JUMINHYO in capsys.readouterr().out  # --raw: the data as it is


async def test_trace_output_is_masked_unless_raw(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main
    from simulators.trace import TraceStore

    db = tmp_path / "t.sqlite"
    async with TraceStore(db) as store:
        await store.append(kind="message", verdict="accepted", message_type="IdentityNotice",
                           payload=f"<j:X><JuminhyoCode>{JUMINHYO}</JuminhyoCode><MyNumber>{VALID}</MyNumber>"
                                   "</j:X>".encode(), note=f"for {JUMINHYO}")
    assert main(["trace", "--db", str(db), "--json"]) == 0
    masked = capsys.readouterr().out
    assert JUMINHYO not in masked and VALID not in masked and "*******9965" in masked
    assert main(["trace", "--db", str(db), "--json", "--raw"]) == 0
    assert JUMINHYO in capsys.readouterr().out


def test_a_certify_run_shows_no_my_number_juminhyo_code_or_secret(
        tmp_path: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """A full (small) run: console and log scanned for both identifiers; reports for 個人番号 and secrets."""
    import logging
    import re

    from conformance.cli import main

    caplog.set_level(logging.DEBUG)
    out_dir = tmp_path / "run"
    code = main(["certify", "--sut", "reference", "--routes", "R01", "--report-dir", str(out_dir),
                 "--gateway-port", "0", "--no-progress", "--partial-ok"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    console = out + err + caplog.text
    assert "scenarios passed" in out
    assert find_my_number_spans(console) == []
    assert re.search(r"(?<![0-9A-Za-z])[0-9]{11}(?![0-9A-Za-z])", console) is None
    reports = {p.name: p.read_text(encoding="utf-8") for p in out_dir.iterdir() if p.is_file()}
    assert "evidence.json" in reports and "********" in reports["evidence.json"]  # numbers flowed, masked
    for name, text in reports.items():
        assert find_my_number_spans(text) == [], name
        for secret in ("control-secret", "sut-secret", "gateway-secret", "PRIVATE KEY"):
            assert secret not in text, (name, secret)
    for secret in ("control-secret", "sut-secret", "gateway-secret"):
        assert secret not in console
