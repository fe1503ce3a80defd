"""Hardened XML parsing used everywhere: no entity expansion, no DTD, no network, size and depth limits.

Every refusal is a HarnessError with one Finding whose code names the rule (XML-SIZE, XML-DTD, XML-ENTITY,
XML-DEPTH, XML-SYNTAX, XML-EMPTY, XML-ENCODING, XML-ATTRIBUTES). Documents are refused *before* anything is
expanded: a DOCTYPE is refused outright, so a billion-laughs or external-entity document never reaches entity
processing. An attribute flood (150,000 attributes on one element) is refused right after the parse (libxml2
parses it in milliseconds), before XSD and the rules, which would otherwise report every attribute.
``expensive`` tells a server which documents to validate off its event loop.
"""

from __future__ import annotations

import re

from lxml import etree

from conformance.errors import Finding, HarnessError

NS = "urn:juki-harness:1"
NSMAP = {"j": NS}
MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_ATTRIBUTES_PER_ELEMENT = 64  # the schemas give an element at most 3; 64 leaves room for extensions
MAX_ATTRIBUTES = 10_000          # in the whole document
EXPENSIVE_BYTES = 64 * 1024      # above this, validation may take milliseconds: run it off the event loop
_BOM = b"\xef\xbb\xbf"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=False, remove_pis=True, collect_ids=False,
    )


_PARSER = _parser()
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _refuse(code: str, message: str, line: int | None = None) -> HarnessError:
    return HarnessError([Finding(code=code, message=message, line=line)])


_DEEPER: dict[int, etree.XPath] = {}


def _depth_ok(root: etree._Element, limit: int) -> int | None:
    """Return the line of the first element deeper than ``limit``, or None (one precompiled XPath)."""
    xp = _DEEPER.get(limit)
    if xp is None:
        xp = _DEEPER[limit] = etree.XPath("/*" + "/*" * limit)
    hits = xp(root)
    if not hits:
        return None
    line = hits[0].sourceline  # type: ignore[index, union-attr]
    return line if isinstance(line, int) else 0


def too_deep(root: etree._Element, limit: int = MAX_DEPTH, data: bytes | None = None) -> int | None:
    """The line (0 when unknown) of the first element nested deeper than ``limit`` under ``root``, or None.

    ``parse`` applies it to what it parses; the gateway applies it to envelopes built in process.
    ``data`` (the tree's bytes) gives a free answer for ordinary documents: a document cannot nest deeper
    than it has elements, and every start tag is a "<" not followed by "/", "!" or "?" — so the count of
    such "<" (wherever they stand, CDATA and comments included) is never below the number of elements.
    """
    if data is not None and data.count(b"<") - data.count(b"</") - data.count(b"<!") - data.count(b"<?") <= limit:
        return None
    return _depth_ok(root, limit)


def expensive(data: bytes | str) -> bool:
    """Whether validating ``data`` may cost more than a fraction of a millisecond (then a server should run it
    off its event loop). The work of parse, XSD and rules is linear in the size, so the size decides:
    more than EXPENSIVE_BYTES bytes. A document beyond MAX_BYTES is cheap (refused unread) but says True too.
    """
    return len(data) > EXPENSIVE_BYTES


_TOO_MANY_ATTRS: dict[int, etree.XPath] = {}
_COUNT_ATTRS = etree.XPath("count(//@*)")


def too_many_attributes(root: etree._Element, data: bytes | None = None, *,
                        per_element: int = MAX_ATTRIBUTES_PER_ELEMENT,
                        total: int = MAX_ATTRIBUTES) -> Finding | None:
    """An XML-ATTRIBUTES finding when an element has more than ``per_element`` attributes or the document
    more than ``total``; else None. ``data`` (the parsed bytes) gives a free answer for ordinary documents:
    no more "=" than ``per_element`` means no more attributes. Otherwise C-level XPath counts decide.
    """
    if data is not None and data.count(b"=") <= min(per_element, total):
        return None
    n = int(_COUNT_ATTRS(root))  # type: ignore[arg-type]
    if n <= per_element:
        return None
    xp = _TOO_MANY_ATTRS.get(per_element)
    if xp is None:
        xp = _TOO_MANY_ATTRS[per_element] = etree.XPath(f"(//*[count(@*) > {int(per_element)}])[1]")
    hits = xp(root)
    if isinstance(hits, list) and hits and isinstance(hits[0], etree._Element):
        el = hits[0]
        line = el.sourceline if isinstance(el.sourceline, int) else None
        return Finding("XML-ATTRIBUTES", f"element {etree.QName(el).localname} has {len(el.attrib)} attributes; "
                       f"the limit is {per_element} per element", line=line)
    if n > total:
        return Finding("XML-ATTRIBUTES", f"the document has {n} attributes; the limit is {total}", line=1)
    return None


def reparse(data: bytes) -> etree._Element:
    """Parse bytes this process assembled from parts already parsed and checked (a relay's new header
    before a body accepted earlier): the hardened parser, without ``parse``'s screening (DOCTYPE, encoding,
    depth walk), which those parts passed."""
    return etree.fromstring(data, _PARSER)


def parse(data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
          max_element_attributes: int = MAX_ATTRIBUTES_PER_ELEMENT,
          max_attributes: int = MAX_ATTRIBUTES) -> etree._Element:
    """Parse ``data`` safely and return the root element, or raise HarnessError with a precise finding."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data or data.isspace():
        raise _refuse("XML-EMPTY", "the document is empty")
    if len(data) > max_bytes:
        raise _refuse("XML-SIZE", f"the document is {len(data)} bytes; the limit is {max_bytes} bytes")
    # A DOCTYPE is the only way to declare entities or reach external DTDs: refuse it before parsing.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64]:
        raise _refuse("XML-ENCODING", "only UTF-8 documents are accepted (UTF-16/32 or NUL bytes found)", 1)
    decl = _ENCODING.match(data[3:] if data.startswith(_BOM) else data)  # a BOM changes nothing
    if decl and decl.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _refuse("XML-ENCODING", f"encoding {decl.group(1).decode('ascii', 'replace')!r} refused: "
                      "only UTF-8 documents are accepted", 1)
    # "!" first: a one-byte search is a memchr, many times cheaper than looking for "<!" (a two-byte needle).
    m = _DOCTYPE.search(data) if b"!" in data and b"<!" in data else None
    if m is not None:
        idx = m.start()
        line = data[:idx].count(b"\n") + 1
        kind = "XML-ENTITY" if _ENTITY.search(data) is not None else "XML-DTD"
        what = ("entity declarations (billion laughs, external entities) are never expanded"
                if kind == "XML-ENTITY" else "document type declarations (DTDs) are not allowed")
        raise _refuse(kind, f"DOCTYPE refused: {what}", line)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        line = e.position[0] if e.position else None
        if "depth" in (e.msg or "").lower():
            raise _refuse("XML-DEPTH", f"elements are nested deeper than {max_depth} levels", line) from e
        raise _refuse("XML-SYNTAX", f"not well-formed XML: {e.msg}", line) from e
    if root is None:
        raise _refuse("XML-EMPTY", "the document has no root element")
    if getattr(root.getroottree().docinfo, "doctype", ""):  # second guard: never accept a DTD, however it was spelled
        raise _refuse("XML-DTD", "document type declarations (DTDs) are not allowed", 1)
    deep = too_deep(root, max_depth, data)
    if deep is not None:
        raise _refuse("XML-DEPTH", f"elements are nested deeper than {max_depth} levels", deep)
    flood = too_many_attributes(root, data, per_element=max_element_attributes, total=max_attributes)
    if flood is not None:
        raise HarnessError([flood])
    return root


def q(local: str) -> str:
    """Clark name of an element in the project namespace."""
    return f"{{{NS}}}{local}"
