"""The hostile corpus (tests/hostile/): load the manifest, generate the big documents, send them anywhere.

Why a helper module (not a test file): the corpus test, the fuzz tests and a reviewer's one-off run share
it. Every entry of ``tests/hostile/manifest.json`` names an attack, the endpoints it is sent to and the code
each must answer with; big documents are generated here at test time (nothing of megabytes is committed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOSTILE = Path(__file__).resolve().parent / "hostile"
CANARY = "127.0.0.1:9"  # the corpus's outbound URLs point here; a test replaces it with a listening canary

ENDPOINTS = ("lint", "gw-msg", "gw-counter", "sut-inbound", "sut-counter")


def _envelope(body_inner: str = "", *, mtype: str = "IdentityNotice", n: int = 0) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="urn:juki-harness:1" version="1"><Header>'
            f"<MessageId>M-GEN{n:08d}</MessageId><MessageType>{mtype}</MessageType>"
            '<Sender actor="juki" lgCode="131016"/><Receiver actor="cs" lgCode="131016"/>'
            "<SentAt>2026-03-30T10:00:00+09:00</SentAt><BusinessDate>2026-03-30</BusinessDate></Header>"
            f"<Body>{body_inner}</Body></Envelope>")


def attribute_flood() -> bytes:
    """150,000 attributes on one element (≈ 1.7 MB): the document that stalled the gateway 30 s."""
    attrs = " ".join(f"a{i}='{i % 10}'" for i in range(150_000))
    return _envelope(f"<IdentityNotice {attrs}/>").encode()


def attribute_spread() -> bytes:
    """5,000 elements with 30 attributes each: no single element over a per-element cap, many in total."""
    el = "<X " + " ".join(f"b{i}='1'" for i in range(30)) + "/>"
    return _envelope("<IdentityNotice>" + el * 5000 + "</IdentityNotice>").encode()


def deep_nesting() -> bytes:
    return _envelope("<IdentityNotice>" + "<a>" * 20_000 + "</a>" * 20_000 + "</IdentityNotice>").encode()


def oversize() -> bytes:
    """3 MB: over every endpoint's size limit."""
    return _envelope("<IdentityNotice>" + "<Pad>" + "x" * (3 * 1024 * 1024) + "</Pad></IdentityNotice>").encode()


def huge_text_node() -> bytes:
    return _envelope("<IdentityNotice><Kanji>" + "山" * 300_000 + "</Kanji></IdentityNotice>").encode()


def finding_flood() -> bytes:
    """20,000 unknown elements: each one a schema finding; the answer must stay small (capped)."""
    return _envelope("<IdentityNotice>" + "<Bad/>" * 20_000 + "</IdentityNotice>").encode()


GENERATORS: dict[str, Callable[[], bytes]] = {
    "attribute-flood": attribute_flood, "attribute-spread": attribute_spread, "nesting-deep": deep_nesting,
    "oversize-3mb": oversize, "oversize-text-node": huge_text_node, "findings-flood": finding_flood,
}


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    attack: str
    endpoints: tuple[str, ...]
    code: str  # the first finding's code every endpoint must answer with (unless overridden)
    codes: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    generator: str | None = None

    def data(self, canary: str = CANARY) -> bytes:
        if self.file is not None:
            raw = (HOSTILE / self.file).read_bytes()
            return raw.replace(CANARY.encode(), canary.encode())
        assert self.generator is not None
        return GENERATORS[self.generator]()

    def expected(self, endpoint: str) -> str:
        return self.codes.get(endpoint, self.code)


def load_manifest() -> list[Case]:
    m = json.loads((HOSTILE / "manifest.json").read_text(encoding="utf-8"))
    out: list[Case] = []
    for e in m["cases"]:
        out.append(Case(name=e.get("file") or e["generate"], attack=e["attack"],
                        endpoints=tuple(e.get("endpoints", ENDPOINTS)), code=e["code"],
                        codes=dict(e.get("codes", {})), file=e.get("file"), generator=e.get("generate")))
    return out


def first_code(answer: bytes) -> str | None:
    """The first ErrorReport finding code of an XML answer (None: none found)."""
    from lxml import etree

    try:
        root = etree.fromstring(answer, etree.XMLParser(resolve_entities=False, no_network=True,
                                                        huge_tree=False))
    except etree.XMLSyntaxError:
        return None
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in ("Finding", "Error"):
            code = el.get("code")
            if code:
                return code
            for c in el:
                if isinstance(c.tag, str) and etree.QName(c).localname == "Code" and c.text:
                    return c.text
    return None


def describe(results: dict[str, Any]) -> str:
    return json.dumps(results, ensure_ascii=False, indent=1)
