"""`lint`: findings for people and as JSON, exit status, standard input, and XML attacks refused fast."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import samples, xmlsafe
from conformance.lint import add_lint_parser, lint_paths, run_lint

BOMB = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
                   for i in range(9))
        + b"]><l>&j;</l>")
XXE = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/secret">]><d>&x;</d>'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.xml"
    good.write_bytes(samples.sample("IdentityNotice"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(samples.sample("IdentityNotice").replace(b"<Sex>", b"\n<Sex>", 1)
                    .replace(b"</Sex>", b"9</Sex>", 1))
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(BOMB)
    xxe = tmp_path / "xxe.xml"
    xxe.write_bytes(XXE)
    return {"good": good, "bad": bad, "bomb": bomb, "xxe": xxe}


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="juki-harness")
    add_lint_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["lint", *argv])


def test_passing_file_exits_zero(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lint(args(str(files["good"]))) == 0
    assert capsys.readouterr().out == ""


def test_findings_for_people(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lint(args(str(files["good"]), str(files["bad"]))) == 1
    lines = capsys.readouterr().out.splitlines()
    # The sample's XML declaration is line 1, the envelope line 2, and the edited Sex line 3.
    assert lines and all(line.startswith(f"{files['bad']}:3 error XSD-INVALID at /j:Envelope/")
                         for line in lines)
    assert ": " in lines[0] and "Sex" in lines[0]


def test_findings_as_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lint(args("--json", str(files["good"]), str(files["bad"]))) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(o["file"], o["ok"]) for o in out] == [(str(files["good"]), True), (str(files["bad"]), False)]
    f = out[1]["findings"][0]
    assert set(f) == {"code", "message", "line", "xpath", "severity"}
    assert (f["code"], f["line"], f["severity"]) == ("XSD-INVALID", 3, "error")
    assert f["xpath"].endswith("j:Sex")


@pytest.mark.parametrize(("name", "code"), [("bomb", "XML-ENTITY"), ("xxe", "XML-ENTITY")])
def test_attacks_fail_fast_without_expansion(files: dict[str, Path], name: str, code: str) -> None:
    start = time.perf_counter()
    [(_, found)] = lint_paths([str(files[name])])
    assert time.perf_counter() - start < 1.0
    assert [f.code for f in found] == [code]


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.xml"
    assert run_lint(args(str(missing))) == 1
    assert "LINT-READ" in capsys.readouterr().out


def test_stdin_through_a_subprocess() -> None:
    code = "import sys; from conformance.lint import run_lint, add_lint_parser; import argparse\n" \
           "p = argparse.ArgumentParser(); add_lint_parser(p.add_subparsers())\n" \
           "sys.exit(run_lint(p.parse_args(['lint', '--json', '-'])))"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], input=BOMB, capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 1, proc.stderr
    [result] = json.loads(proc.stdout)
    assert result["file"] == "<stdin>" and not result["ok"]
    assert [f["code"] for f in result["findings"]] == ["XML-ENTITY"]
    assert time.perf_counter() - start < 30


def test_stdin_passing_sample() -> None:
    code = "import sys; from conformance.lint import lint_paths\n" \
           "[(name, found)] = lint_paths(['-']); print(name, len(found))"
    proc = subprocess.run([sys.executable, "-c", code], input=samples.sample("MoveInNotice"),
                          capture_output=True, timeout=60, check=True)
    assert proc.stdout.decode().split() == ["<stdin>", "0"]


def test_stdin_is_read_only_up_to_the_limit() -> None:
    """`lint -` reads at most MAX_BYTES + 1 bytes and refuses with XML-SIZE; the rest stays unread."""
    code = "import sys; from conformance.lint import lint_paths\n" \
           "[(name, found)] = lint_paths(['-'])\n" \
           "rest = len(sys.stdin.buffer.read())\n" \
           "print(name, [f.code for f in found], rest)"
    big = b"<d>" + b"x" * (3 * xmlsafe.MAX_BYTES) + b"</d>"
    proc = subprocess.run([sys.executable, "-c", code], input=big, capture_output=True, timeout=60, check=True)
    name, codes, rest = proc.stdout.decode().rsplit(" ", 2)
    assert (name, codes) == ("<stdin>", "['XML-SIZE']")
    assert int(rest) == len(big) - xmlsafe.MAX_BYTES - 1


def test_oversize_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"<d>" + b"x" * xmlsafe.MAX_BYTES + b"</d>")
    [(_, found)] = lint_paths([str(big)])
    assert [f.code for f in found] == ["XML-SIZE"] and f"limit is {xmlsafe.MAX_BYTES}" in found[0].message


def test_attribute_flood_is_refused_in_under_a_second(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    flood = tmp_path / "flood.xml"
    flood.write_bytes(samples.sample("IdentityNotice").replace(
        b"<Sex>", b"<Sex " + b" ".join(b'a%d="1"' % i for i in range(150_000)) + b">", 1))
    start = time.perf_counter()
    assert run_lint(args(str(flood))) == 1
    assert time.perf_counter() - start < 1.0
    out = capsys.readouterr().out
    assert "XML-ATTRIBUTES" in out and len(out) < 1000
