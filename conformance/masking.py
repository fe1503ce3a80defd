"""Masking of 個人番号 in everything the harness shows or keeps, and how the evidence stays verifiable.

Why: a conformance run moves synthetic but *valid* 個人番号 through the SUT, and a report or evidence bundle
is handed to reviewers. Nothing a person reads may show a whole 個人番号, yet a reviewer must still be able to
check that the evidence was not changed after the run.

What is masked: every VALID 個人番号 (12 digits whose last is the 検査用数字, checked with
``conformance.identifiers.is_valid_my_number``), written with ASCII or full-width digits, bare or split by
separators (spaces, hyphens, dashes, 長音) — the notion of the CLASS-MYNUMBER rule, a little wider (below).
It becomes ``********1234``: eight asterisks and its last four digits as written. A 12-digit number with a
wrong check digit is not a 個人番号 and is left alone (it is usually a serial or a phone number); so are
digits glued to a letter (``A123456789018``). Unlike the rule, a number after a word ("ID 123456789018",
"msg-123456789018") is masked: a rule may miss an edge case, a mask must not leak.

How the evidence bundle (``reports.evidence``) stays verifiable — and what it honestly cannot prove:

* The trace's own chain (``simulators.trace``) hashes each record *with its raw payload*. Once payloads are
  masked, that hash can no longer be recomputed from the bundle, so the bundle does not pretend to.
* Default (masked) bundle: each record keeps every trace field, the ORIGINAL ``payload_sha256`` and the
  trace's ``prev_hash``/``hash``, text fields (findings, note) masked, the masked payload, and for each
  個人番号 found a salted SHA-256 (``sha256(salt + 12 ASCII digits)``, the salt is recorded) instead of the
  number — so a reviewer who holds a number can confirm it appeared, nobody else can recover it.
  ``juki-harness verify`` checks: seq continuity, that each trace ``prev_hash`` equals the ``hash`` before it,
  and an *evidence chain* ``evidence_hash = sha256(prev evidence_hash + canonical JSON of the stored record)``
  that covers every stored field including the masked payload and the payload hash. Changing any byte of a
  record, its payload hash or its masked payload is detected and the record is named. What it cannot check
  offline: that a masked payload is the masking of a payload with the recorded ``payload_sha256`` (that would
  need the raw payload).
* ``keep_raw=True`` (``--keep-raw``): raw payloads and fields are kept, no salt; verify additionally rebuilds
  the ``TraceRecord``s and runs ``simulators.trace.verify_records`` — payload hashes and the trace's own
  chain are recomputed exactly as the gateway computed them.
* A hash chain has no secret: someone who rewrites the whole bundle can recompute every hash. The anchor
  (last seq, last trace hash, last evidence hash) and the bundle digest are printed on the report's first
  page and in results; keep them apart from the bundle (a ticket, a signed mail) for a reviewer to trust it.

Console lines and HTML go through ``mask_text`` regardless of ``keep_raw``: keep_raw only changes what the
evidence file keeps.

Logs, the console of every CLI command and ``trace`` output (unless ``--raw``) go through ``mask_personal``:
``mask_text`` plus every 住民票コード — any 11 digits written alone become ``*******`` and the last four (the
code's check digit formula is not public, so the mask does not rely on it; an 11-digit phone number written
alone is masked too). ``install_log_masking()`` puts a filter on the root logger's handlers;
``masked_console()`` wraps stdout/stderr for the duration of a command.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.identifiers import is_valid_my_number

__all__ = [
    "MASK",
    "MyNumberHit",
    "find_my_number_spans",
    "install_log_masking",
    "mask_and_find",
    "mask_obj",
    "mask_personal",
    "mask_text",
    "masked_console",
    "new_salt",
    "redact_config",
    "salted_hash",
]

MASK = "********"

_DIGIT = "0-9０-９"
_ALNUM = "0-9A-Za-z０-９Ａ-Ｚａ-ｚ"
_SEP = " \t\u00a0\u3000\\-\u2010-\u2015\u2212\uff0d\uff70\u30fc"
# A chain of digit groups joined by 1-3 separators, not glued to a letter or digit. Deliberately wider than
# the CLASS-MYNUMBER rule (which also ignores a chain next to a word through a separator, "ID 1234..."):
# a rule may miss an edge case, a mask must not leak.
_CHAIN = re.compile(rf"(?<![{_ALNUM}])[{_DIGIT}]+(?:[{_SEP}]{{1,3}}[{_DIGIT}]+)*(?![{_ALNUM}])")
_GROUP = re.compile(rf"[{_DIGIT}]+")
_NOT_DIGIT = re.compile(rf"[^{_DIGIT}]+")
_TO_ASCII = str.maketrans("０１２３４５６７８９", "0123456789")
_QUICK = re.compile(rf"[{_DIGIT}]")


@dataclass(frozen=True, slots=True)
class MyNumberHit:
    """A 個人番号 written in a text: [start, end) in the text and its 12 ASCII digits."""

    start: int
    end: int
    digits: str


def _hits(text: str) -> Iterator[MyNumberHit]:
    for m in _CHAIN.finditer(text):
        chain = m.group()
        if len(chain) < 12:  # dates, short codes: cannot hold 12 digits
            continue
        joined = _NOT_DIGIT.sub("", chain)
        if len(joined) < 12:  # a phone number, a postcode
            continue
        if len(joined) == 12:
            digits = joined.translate(_TO_ASCII)
            if is_valid_my_number(digits):
                yield MyNumberHit(m.start(), m.end(), digits)
            continue
        for g in _GROUP.finditer(chain):
            if g.end() - g.start() == 12:
                digits = g.group().translate(_TO_ASCII)
                if is_valid_my_number(digits):
                    yield MyNumberHit(m.start() + g.start(), m.start() + g.end(), digits)


def find_my_number_spans(text: str) -> list[MyNumberHit]:
    """Every valid 個人番号 written in ``text`` with its span (ASCII or full-width, bare or separated)."""
    if len(text) < 12 or _QUICK.search(text) is None:
        return []
    return list(_hits(text))


def mask_and_find(text: str) -> tuple[str, list[str]]:
    """``mask_text(text)`` and the 12 ASCII digits of each 個人番号 it hid, in one scan."""
    hits = find_my_number_spans(text)
    if not hits:
        return text, []
    out: list[str] = []
    pos = 0
    for h in hits:
        last4 = _NOT_DIGIT.sub("", text[h.start:h.end])[-4:]
        out.append(text[pos:h.start])
        out.append(MASK + last4)
        pos = h.end
    out.append(text[pos:])
    return "".join(out), [h.digits for h in hits]


def mask_text(text: str) -> str:
    """``text`` with every valid 個人番号 replaced by ``********`` and its last four digits as written."""
    return mask_and_find(text)[0]


def mask_obj(obj: Any) -> Any:
    """A copy of a JSON-like value with every string (and dict key) masked; an integer that is a valid
    個人番号 becomes the masked string (a number in JSON must not leak one either); other values unchanged."""
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, int) and not isinstance(obj, bool) and 10**11 <= obj < 10**12:
        return mask_text(str(obj)) if is_valid_my_number(str(obj)) else obj
    if isinstance(obj, Mapping):
        return {mask_text(k) if isinstance(k, str) else k: mask_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [mask_obj(v) for v in obj]
    return obj


def new_salt() -> str:
    """A fresh random salt (hex) for one evidence bundle."""
    return secrets.token_hex(16)


def salted_hash(digits: str, salt: str) -> str:
    """``sha256(salt + digits)`` as hex: what the evidence keeps instead of a 個人番号."""
    return hashlib.sha256((salt + digits).encode("utf-8")).hexdigest()


_SECRET_WORDS = ("token", "secret", "password", "passwd", "passphrase", "key")
# A key names a secret when one of its words ends in a secret word: "token", "api_key", "tlsKey",
# "CLIENT-SECRET", "apikey", "auth_tokens". Over-redaction ("monkey") is harmless; a leak is not.
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _is_secret_key(key: str) -> bool:
    words = [w.lower().removesuffix("s") for w in _WORDS.findall(key)]
    return any(w.endswith(_SECRET_WORDS) for w in words)


def redact_config(config: Any, *, mask: bool = True) -> Any:
    """A JSON-able copy of a config with the value of any key naming a token/secret/password/key as "***".

    With ``mask`` (the default) other strings are masked too: a 個人番号 in a config is still a 個人番号.
    """
    if isinstance(config, Mapping):
        return {str(k): ("***" if _is_secret_key(str(k)) and v is not None else redact_config(v, mask=mask))
                for k, v in config.items()}
    if isinstance(config, list | tuple):
        return [redact_config(v, mask=mask) for v in config]
    if config is None or isinstance(config, bool | int | float):
        return config
    text = str(config)  # Paths and other objects: their text form
    return mask_text(text) if mask else text


# ------------------------------------------------------------------------------ logs and the console

_JUMINHYO = re.compile(rf"(?<![{_ALNUM}])[{_DIGIT}]{{11}}(?![{_ALNUM}])")
JUMINHYO_MASK = "*******"


def mask_personal(text: str) -> str:
    """``mask_text`` plus every 住民票コード (any 11 digits written alone): what logs and consoles show."""
    out = mask_text(text)
    if len(out) < 11 or _QUICK.search(out) is None:
        return out
    return _JUMINHYO.sub(lambda m: JUMINHYO_MASK + m.group()[-4:], out)


class MaskingFilter(logging.Filter):
    """A logging filter that masks 個人番号 and 住民票コード in every record's message (args merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        masked = mask_personal(msg)
        if masked != msg or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_personal(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_personal(record.exc_text)
        return True


_FILTER = MaskingFilter()
_FACTORY_INSTALLED = False


def _masking_factory(inner: Any) -> Any:
    def make(*args: Any, **kw: Any) -> logging.LogRecord:
        rec: logging.LogRecord = inner(*args, **kw)
        _FILTER.filter(rec)
        return rec
    return make


def install_log_masking(logger: logging.Logger | None = None) -> None:
    """Mask every record that reaches the handlers of ``logger`` (the root logger by default), and records
    logged directly on it (a handler added later still gets masked records from the root's own filter)."""
    global _FACTORY_INSTALLED
    if not _FACTORY_INSTALLED:  # every record, whichever handler (added now or later) writes it
        logging.setLogRecordFactory(_masking_factory(logging.getLogRecordFactory()))
        _FACTORY_INSTALLED = True
    lg = logger or logging.getLogger()
    if _FILTER not in lg.filters:
        lg.addFilter(_FILTER)
    for h in lg.handlers:
        if _FILTER not in h.filters:
            h.addFilter(_FILTER)
    if logging.lastResort is not None and _FILTER not in logging.lastResort.filters:
        logging.lastResort.addFilter(_FILTER)


class _MaskingStream:
    """A text stream that masks each write (line-oriented: a number split across writes is buffered)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        data = self._pending + text
        cut = data.rfind("\n") + 1
        if cut == 0 and len(data) < 4096:
            self._pending = data
            return len(text)
        self._pending = data[cut:] if cut else ""
        self._inner.write(mask_personal(data[:cut] if cut else data))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._inner.write(mask_personal(self._pending))
            self._pending = ""
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def masked_console(raw: bool = False) -> Iterator[None]:
    """Mask stdout, stderr and log records for the block (``raw``: stdout unmasked, logs still masked)."""
    install_log_masking()
    out, err = sys.stdout, sys.stderr
    if not raw and not isinstance(out, _MaskingStream):
        sys.stdout = _MaskingStream(out)
    if not isinstance(err, _MaskingStream):
        sys.stderr = _MaskingStream(err)
    try:
        yield
    finally:
        for s_ in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s_.flush()
        sys.stdout, sys.stderr = out, err
