"""A relay (the CS passing a message on) keeps the accepted body's bytes and writes a new header before them
(``envelope.rehead``, ``Gateway.relay``). What it records must be exactly what the full validator accepts;
anything not shaped as ``build`` writes takes the ordinary path."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime

import aiohttp
import pytest
from conftest import identity_notice, post_msg

from conformance.envelope import HEAD, Header, build, header, read_header, rehead
from conformance.validate import Validator
from conformance.xmlsafe import parse
from simulators.runtime import Runtime

_AT = datetime(2026, 3, 30, 1, 2, 3, 456789, tzinfo=UTC)


def _body() -> bytes:
    return identity_notice(1)


def _new(**kw: str) -> Header:
    args: dict[str, object] = {"sent_at": _AT, "correlation_id": "M-src-1"}
    args.update(kw)
    return header("IdentityNotice", ("cs", "131016"), ("pref", "130001"), **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("correlation_id", ["M-src-1", None])
def test_rehead_writes_what_build_writes(correlation_id: str | None) -> None:
    root = parse(_body())
    body = copy.deepcopy(root[1][0])
    src = build(read_header(root), copy.deepcopy(body))
    h = _new(correlation_id=correlation_id) if correlation_id else header(
        "IdentityNotice", ("cs", "131016"), ("pref", "130001"), sent_at=_AT)
    assert rehead(src, h) == build(h, body)


def test_rehead_keeps_every_byte_from_the_body_on() -> None:
    src = _body()  # pretty-printed, as a vendor's system may write it
    out = rehead(src, _new())
    assert out is not None and out.startswith(HEAD)
    assert out[out.index(b"<Body>"):] == src[src.index(b"<Body>"):]
    assert read_header(parse(out)).correlation_id == "M-src-1"


@pytest.mark.parametrize("mutate, why", [
    (lambda b: b.replace(b"<Header>", b"<Header><!-- </Header><Body/> -->", 1), "comment in the header"),
    (lambda b: b.replace(b"<Header>", b"<Header><?pi </Header>?>", 1), "processing instruction"),
    (lambda b: b.replace(b'<Envelope xmlns="urn:juki-harness:1"', b'<j:Envelope xmlns:j="urn:juki-harness:1"', 1)
     .replace(b"</Envelope>", b"</j:Envelope>"), "another prefix"),
    (lambda b: b.replace(b"<?xml version='1.0' encoding='UTF-8'?>\n", b"", 1), "no declaration"),
])
def test_rehead_declines_what_it_cannot_cut_safely(mutate: object, why: str) -> None:
    assert rehead(mutate(_body()), _new()) is None, why  # type: ignore[operator]


def test_rehead_declines_a_value_that_needs_escaping() -> None:
    assert rehead(_body(), _new(correlation_id="a&b")) is None


async def _relay_of(harness: Runtime, mid: str) -> bytes:
    for _ in range(100):
        recs = [r for r in harness.store.query(arrow=5, kind="message") if r.correlation_id == mid]
        if recs:
            assert recs[0].verdict == "accepted"
            return recs[0].payload
        await asyncio.sleep(0.02)
    raise AssertionError(f"no relay of {mid} on arrow 5")


@pytest.mark.parametrize("shape", ["as built", "comment in the header"])
async def test_the_relay_recorded_is_what_the_full_validator_accepts(
        harness: Runtime, http: aiohttp.ClientSession, shape: str) -> None:
    """Both ways (kept bytes, or the ordinary path for a header with a comment) give a relay that the full
    validator passes on its arrow, carrying the same body and the conversation's id."""
    src = identity_notice(2 if shape == "as built" else 3)
    if shape != "as built":
        src = src.replace(b"<Header>", b"<Header><!-- </Header> -->", 1)
    assert (await post_msg(http, harness, src))[0] == 202
    mid = read_header(parse(src)).message_id
    relayed = await _relay_of(harness, mid)
    checked = Validator().check(relayed, arrow=5)
    assert checked.ok, checked.findings
    h = read_header(checked.root)
    assert (h.sender_actor, h.receiver_actor, h.correlation_id) == ("cs", "pref", mid)
    src_body, relay_body = parse(src)[1][0], checked.root[1][0]  # type: ignore[index]
    assert [(e.tag, (e.text or "").strip()) for e in src_body.iter()] == \
        [(e.tag, (e.text or "").strip()) for e in relay_body.iter()]
    if shape == "as built":  # the kept-bytes path: the body's bytes are the SUT's own
        assert relayed[relayed.index(b"<Body>"):] == src[src.index(b"<Body>"):]
    else:  # the ordinary path: the comment is not carried over
        assert b"<!--" not in relayed
