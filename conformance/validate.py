"""The validation facade: hardened parse, XSD, envelope/catalogue fit, then the rules beyond XSD.

Used by lint, the gateway, the simulators and the engine. The hot path is lxml all the way: the envelope
schema is compiled once (per schema file, per process), the header is read with one pass over its children,
arrows are dict lookups, and the rules are those of ``conformance.rules``. ``xmlschema`` is built lazily and
only to explain a failure in richer words (``Validator.explain``).

Work per document is bounded: the parser refuses attribute floods (XML-ATTRIBUTES), at most
``max_findings`` findings are listed (then one VAL-TRUNCATED finding counts the rest) and messages are
clipped, so an error answer stays a few kilobytes. ``xmlsafe.expensive(data)`` says when a server should
validate off its event loop. ``python -m conformance.validate --bench [--json]`` times parse, XSD, rules and
the whole check per ≈ 1.8 KB IdentityNotice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from conformance import catalogue as catalogue_mod
from conformance import xmlsafe
from conformance.catalogue import Catalogue, MessageType
from conformance.errors import Finding, HarnessError
from conformance.rules import MAX_FINDINGS, RuleContext, clip, run_rules_counted, truncated, xpath_of
from conformance.xmlsafe import NS

__all__ = ["HEADER_KEYS", "Checked", "Validator", "bench", "compiled_schema"]

ENVELOPE_XSD = catalogue_mod.SCHEMAS / "envelope.xsd"
HEADER_KEYS = (
    "message_id", "correlation_id", "message_type", "sender_actor", "sender_lg", "receiver_actor",
    "receiver_lg", "sent_at", "business_date", "retry_reason",
)

_ENVELOPE = f"{{{NS}}}Envelope"
_HEADER = f"{{{NS}}}Header"
_BODY = f"{{{NS}}}Body"
_SENDER = f"{{{NS}}}Sender"
_RECEIVER = f"{{{NS}}}Receiver"
_HEADER_TEXT = {
    f"{{{NS}}}MessageId": "message_id", f"{{{NS}}}CorrelationId": "correlation_id",
    f"{{{NS}}}MessageType": "message_type", f"{{{NS}}}SentAt": "sent_at",
    f"{{{NS}}}BusinessDate": "business_date", f"{{{NS}}}RetryReason": "retry_reason",
}


@dataclass(slots=True)
class Checked:
    """The verdict on one document: the tree (None if it did not parse), its header, the arrow, findings."""

    root: etree._Element | None
    header: dict[str, str | None]
    arrow: int | None
    findings: list[Finding] = field(default_factory=list)
    ok: bool = True
    message_type: MessageType | None = None
    data_class: str | None = None


def _empty_header() -> dict[str, str | None]:
    return dict.fromkeys(HEADER_KEYS)


def compiled_schema(path: str | Path | None = None) -> etree.XMLSchema:
    """The lxml schema of ``path`` (default envelope.xsd), compiled once per process and file."""
    return _compile(Path(path if path is not None else ENVELOPE_XSD).resolve())


@cache
def _compile(path: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)  # our files; includes resolve locally
    return etree.XMLSchema(etree.parse(str(path), parser))


def read_header(root: etree._Element) -> dict[str, str | None]:
    """The envelope header as a dict of HEADER_KEYS (None where absent); one pass over Header's children."""
    h = _empty_header()
    head = _child(root, 0, _HEADER)
    if head is None:
        return h
    for el in head:
        tag = el.tag
        key = _HEADER_TEXT.get(tag) if isinstance(tag, str) else None
        if key is not None:
            h[key] = el.text
        elif tag == _SENDER:
            h["sender_actor"], h["sender_lg"] = el.get("actor"), el.get("lgCode")
        elif tag == _RECEIVER:
            h["receiver_actor"], h["receiver_lg"] = el.get("actor"), el.get("lgCode")
    return h


def _child(root: etree._Element, index: int, tag: str) -> etree._Element | None:
    """Child ``tag`` of ``root``, looked for at ``index`` first (where a valid envelope has it)."""
    if len(root) > index:
        el = root[index]
        if el.tag == tag:
            return el
    return root.find(tag)


def _body_root(root: etree._Element) -> etree._Element | None:
    body = _child(root, 1, _BODY)
    if body is None:
        return None
    for el in body:
        if isinstance(el.tag, str):
            return el
    return None


def _line(el: etree._Element) -> int | None:
    line: int | None = getattr(el, "sourceline", None)
    return line


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return "(not an element)"
    qn = etree.QName(tag)
    return f"j:{qn.localname}" if qn.namespace == NS else tag


class Validator:
    """Schema + catalogue + rules, set up once and reused for every message."""

    def __init__(self, catalogue: Catalogue | None = None, *, schema_path: str | Path | None = None,
                 max_findings: int = MAX_FINDINGS) -> None:
        self.max_findings = max_findings  # listed per document; the rest are counted in one VAL-TRUNCATED
        self.catalogue = catalogue if catalogue is not None else catalogue_mod.default()
        self.schema_path = Path(schema_path) if schema_path is not None else ENVELOPE_XSD
        self.schema = compiled_schema(self.schema_path)
        self._rich: Any = None
        cat = self.catalogue
        self._roots = {mt.id: f"{{{NS}}}{mt.root}" for mt in cat.message_types.values()}
        # A response crosses its arrow from the request's receiver back to its sender: (sender, receiver,
        # response type) -> response arrow, and (request arrow, response type) -> response arrow.
        self._responses: dict[tuple[str, str, str], int] = {}
        self._response_of: dict[tuple[int, str], int] = {}
        for mt in cat.message_types.values():
            if mt.response is None:
                continue
            for req, resp in mt.response_arrows.items():
                self._response_of[(req, mt.response)] = resp
                for src, dst in cat.ends(req):
                    self._responses.setdefault((dst, src, mt.response), resp)

    # --- public API ------------------------------------------------------------------------------------

    def check(self, data: bytes | str, *, file: str | None = None, arrow: int | None = None,
              allow_bare_body: bool = False) -> Checked:
        """Parse and check one document. ``arrow`` is the arrow the caller saw it on (the gateway knows)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            root = xmlsafe.parse(raw)
        except HarnessError as e:
            found = [dataclasses.replace(f, file=file) for f in e.findings]
            return Checked(None, _empty_header(), None, found, ok=False)
        return self._check(root, file, arrow, raw, allow_bare_body)

    def check_element(self, root: etree._Element, *, file: str | None = None, arrow: int | None = None,
                      allow_bare_body: bool = False, raw: bytes | None = None) -> Checked:
        """Check an already parsed tree (built by a simulator or the codec).

        ``raw``, when given, must be the tree's serialisation (the rules then scan it instead of serialising).
        """
        return self._check(root, file, arrow, raw, allow_bare_body)

    def explain(self, root: etree._Element) -> list[Finding]:
        """XSD failures in xmlschema's richer words (what was expected where). Slow: never on the hot path."""
        if self._rich is None:
            import xmlschema

            self._rich = xmlschema.XMLSchema(str(self.schema_path))
        out: list[Finding] = []
        for err in self._rich.iter_errors(root):
            elem = err.elem if isinstance(getattr(err, "elem", None), etree._Element) else None
            line = getattr(elem, "sourceline", None) if elem is not None else None
            xp = xpath_of(elem) if elem is not None else err.path
            out.append(Finding("XSD-INVALID", str(err.reason or err.message), line=line, xpath=xp))
        return out

    # --- internals -------------------------------------------------------------------------------------

    def _check(self, root: etree._Element, file: str | None, arrow: int | None, raw: bytes | None,
               allow_bare_body: bool) -> Checked:
        findings: list[Finding] = []
        limit = self.max_findings
        dropped = 0
        schema = self.schema
        if not schema.validate(root):
            dropped += self._xsd_findings(root, schema.error_log, file, findings, limit)
        header = _empty_header()
        mt: MessageType | None = None
        resolved: int | None = None
        if root.tag == _ENVELOPE:
            header = read_header(root)
            mt, resolved = self._fit(root, header, arrow, file, findings)
        elif allow_bare_body and isinstance(root.tag, str) and etree.QName(root.tag).namespace == NS:
            mt = self.catalogue.by_root.get(etree.QName(root.tag).localname)
            if mt is None:
                msg = f"the root {_local(root.tag)} is neither j:Envelope nor the body root of a message type"
                findings.append(Finding("ENV-ROOT", msg, file, _line(root), "/*"))
            resolved = arrow
        else:
            findings.append(Finding("ENV-ROOT", f"the document root is {_local(root.tag)}, not j:Envelope",
                                    file, _line(root), "/*"))
        if len(findings) > limit:
            dropped += len(findings) - limit
            del findings[limit:]
        data_class = self.catalogue.arrows[resolved].data_class if resolved in self.catalogue.arrows else None
        found, more = run_rules_counted(RuleContext(root, data_class, file, raw), limit - len(findings))
        findings.extend(found)
        dropped += more
        ok = True
        for f in findings:
            if f.severity == "error":
                ok = False
                break
        if dropped:
            findings.append(truncated(dropped, limit, file))
            ok = False
        return Checked(root, header, resolved, findings, ok, mt, data_class)

    def _xsd_findings(self, root: etree._Element, log: Any, file: str | None, out: list[Finding],
                      limit: int) -> int:
        """Append at most ``limit`` XSD findings to ``out`` (located; messages clipped); return how many more."""
        tree = root.getroottree()
        entries = len(log)
        for entry in log:
            if len(out) >= limit:
                break
            xp: str | None = entry.path or None
            if xp:
                try:
                    hits = tree.xpath(xp)
                    if isinstance(hits, list) and hits and isinstance(hits[0], etree._Element):
                        xp = xpath_of(hits[0])
                except etree.XPathError:
                    pass
            out.append(Finding("XSD-INVALID", clip(entry.message), file, entry.line or None, xp))
        return max(0, entries - limit)

    def _fit(self, root: etree._Element, header: dict[str, str | None], arrow: int | None, file: str | None,
             findings: list[Finding]) -> tuple[MessageType | None, int | None]:
        """ENV-TYPE, ENV-ROOT and ENV-ARROW: does the envelope fit the catalogue? Returns (type, arrow)."""
        cat = self.catalogue
        type_id = header["message_type"] or ""
        mt = cat.message_types.get(type_id)
        if mt is None:
            findings.append(Finding("ENV-TYPE", f"message type {type_id!r} is not in the catalogue", file,
                                    _line(root), "/j:Envelope/j:Header/j:MessageType"))
            return None, None
        body = _body_root(root)
        expected = self._roots[mt.id]
        if body is None or body.tag != expected:
            found = "nothing" if body is None else _local(body.tag)
            findings.append(Finding(
                "ENV-ROOT", f"a {mt.id} carries j:{mt.root} in its Body, not {found}", file,
                _line(body if body is not None else root), "/j:Envelope/j:Body"))
        if not mt.arrows:  # e.g. ErrorReport: may answer on any arrow
            return mt, arrow
        sender, receiver = header["sender_actor"] or "", header["receiver_actor"] or ""
        resolved = cat.resolve_arrow(sender, receiver, mt.id)
        if resolved is None:
            resolved = self._responses.get((sender, receiver, mt.id))
        if resolved is None:
            findings.append(Finding(
                "ENV-ARROW", f"no arrow carries {mt.id} from {sender or '?'} to {receiver or '?'} "
                f"(the catalogue has it on arrows {', '.join(map(str, mt.arrows))})", file, _line(root),
                "/j:Envelope/j:Header"))
            return mt, None
        if arrow is not None and arrow != resolved and self._response_of.get((arrow, mt.id)) != resolved:
            findings.append(Finding(
                "ENV-ARROW", f"seen on arrow {arrow}, but {mt.id} from {sender} to {receiver} travels arrow "
                f"{resolved}", file, _line(root), "/j:Envelope/j:Header"))
        return mt, resolved


# --- benchmark -----------------------------------------------------------------------------------------

def bench(docs: int = 50, runs: int = 7) -> dict[str, float]:
    """µs per document for parse, XSD, rules and the whole ``check``: the median of ``runs`` timed rounds.

    Documents are IdentityNotice samples (seeds 1..``docs``, as `juki-harness sample IdentityNotice --seed N`
    writes them), indented by four spaces like the gateway benchmark's ≈ 1.8 KB message; the rules are timed
    on parsed trees with the arrow's data class, as ``check`` runs them.
    """
    import statistics
    import time

    from conformance import samples

    v = Validator()
    data = []
    for seed in range(1, docs + 1):
        tree = etree.fromstring(samples.sample("IdentityNotice", seed))
        etree.indent(tree, space="    ")
        data.append(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
    roots = [xmlsafe.parse(d) for d in data]
    checked = [v.check(d) for d in data]
    if not all(c.ok for c in checked):
        raise HarnessError([f for c in checked for f in c.findings][:5])
    classes = [c.data_class for c in checked]

    def timed(fn: Any) -> float:
        rounds = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            rounds.append((time.perf_counter() - start) / len(data) * 1e6)
        return round(statistics.median(rounds), 2)

    def parse_all() -> None:
        for d in data:
            xmlsafe.parse(d)

    def xsd_all() -> None:
        for r in roots:
            v.schema.validate(r)

    def rules_all() -> None:
        for d, r, c in zip(data, roots, classes, strict=True):
            run_rules_counted(RuleContext(r, c, None, d))

    def check_all() -> None:
        for d in data:
            v.check(d)

    return {"bytes": round(statistics.mean(map(len, data))), "parse_us": timed(parse_all),
            "xsd_us": timed(xsd_all), "rules_us": timed(rules_all), "total_us": timed(check_all)}


def main(argv: list[str] | None = None) -> int:
    """`python -m conformance.validate --bench [--json]`: the per-document cost of validation."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m conformance.validate", description=main.__doc__)
    p.add_argument("--bench", action="store_true", help="time parse, XSD, rules and check per document")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--docs", type=int, default=50, help="documents per round (default 50)")
    p.add_argument("--runs", type=int, default=7, help="timed rounds; the median is reported (default 7)")
    args = p.parse_args(argv)
    if not args.bench:
        p.print_help()
        return 2
    figures = bench(args.docs, args.runs)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"IdentityNotice, {figures['bytes']} bytes, median of {args.runs} rounds of {args.docs} documents:")
        for key in ("parse_us", "xsd_us", "rules_us", "total_us"):
            print(f"  {key.removesuffix('_us'):>6}  {figures[key]:8.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
