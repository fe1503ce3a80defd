"""Issue 13 item 8: property-based fuzzing of envelopes and bodies against lint and the gateway's /msg —
whatever arrives, the answer is a refusal or an acceptance with a code, never a 5xx (bounded examples)."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.lint import lint_paths
from conformance.samples import sample
from simulators.config import load_config
from simulators.runtime import Runtime

BASE = sample("IdentityNotice", seed=1)
EXAMPLES = 150
COUNT = {"lint": 0, "gateway": 0}

_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
_tagish = st.sampled_from(["MessageId", "MessageType", "Sender", "Receiver", "SentAt", "BusinessDate", "Body",
                           "Envelope", "Header", "IdentityNotice", "JuminhyoCode", "MyNumber", "LgCode"])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid envelope with some of: a header value replaced, a span deleted/duplicated, bytes inserted."""
    data = bytearray(BASE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["value", "delete", "dup", "insert", "attr", "entity"]))
        n = len(data)
        if n == 0:
            break
        i = draw(st.integers(0, n - 1))
        j = min(n, i + draw(st.integers(0, 64)))
        if op == "value":
            tag = draw(_tagish).encode()
            k = data.find(b"<" + tag + b">")
            if k >= 0:
                end = data.find(b"<", k + 1)
                data[k + len(tag) + 2:end] = draw(_text).encode("utf-8", "surrogatepass")
        elif op == "delete":
            del data[i:j]
        elif op == "dup":
            data[i:i] = data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=16))
        elif op == "attr":
            k = data.find(b"<Sender ")
            data[k + 8:k + 8] = draw(st.sampled_from([b'actor="cs" ', b'lgCode="000000" ', b'x="' + b"y" * 50
                                                      + b'" ', b'actor="" ', b'lgCode="131016" ']))
        else:
            data[i:i] = draw(st.sampled_from([b"&lt;", b"&#0;", b"&#x110000;", b"&undefined;", b"<![CDATA[x]]>",
                                              b"<?pi x?>", b"<!-- c -->", b"]]>"]))
    return bytes(data)


_any = st.one_of(mutated(), st.binary(max_size=512),
                 st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_any)
def test_lint_never_crashes_and_always_says_why(doc: bytes, tmp_path: Path) -> None:
    p = tmp_path / "fuzz.xml"
    p.write_bytes(doc)
    COUNT["lint"] += 1
    (_, findings), = lint_paths([str(p)])
    assert all(f.code and f.message for f in findings)


class _Harness:
    """The whole harness on a loop of its own thread, so hypothesis drives it with plain blocking calls."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(tmp),), daemon=True)

    async def _run(self, tmp: Path) -> None:
        self.stop = asyncio.Event()
        async with Runtime(load_config(None, data_dir=tmp, port=0), with_reference_sut=True) as rt:
            self.port = rt.port
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> _Harness:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)

    def post(self, path: str, data: bytes, token: str) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", path, body=data, headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/xml"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Harness]:
    with _Harness(tmp_path_factory.mktemp("fuzz")) as h:
        yield h


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_any, where=st.sampled_from([("/msg", "sut-secret"), ("/counter", "control-secret"),
                                        ("/msg", "wrong-token")]))
def test_the_gateway_never_answers_5xx(gateway: _Harness, doc: bytes, where: tuple[str, str]) -> None:
    status, body = gateway.post(where[0], doc, where[1])
    COUNT["gateway"] += 1
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert b"<" in body or (status == 401 and where[1] == "wrong-token"), body[:200]


def test_fuzzing_ran_its_examples() -> None:
    """Runs after the two properties (file order): both were exercised with their example budgets."""
    assert COUNT["lint"] >= EXAMPLES // 2 and COUNT["gateway"] >= EXAMPLES // 2, COUNT


