"""The route catalogue: actors, arrows, routes, functions, message types and counter operations.

One data file (``conformance/data/catalogue.yaml``) read by everything. It is checked when loaded: its shape
against ``catalogue.schema.json`` and its cross-references (an unknown actor, arrow, type, route or function
fails loudly with the line of the data file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from conformance.errors import Finding, HarnessError

DATA = resources.files("conformance") / "data"
SCHEMAS = Path(str(resources.files("conformance") / "schemas"))
DEFAULT_PATH = Path(str(DATA / "catalogue.yaml"))


class _Node(dict[str, Any]):
    """A mapping that remembers the line it came from."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    loader.flatten_mapping(node)
    m = _Node(loader.construct_pairs(node, deep=True))
    m.line = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    ja: str
    en: str
    role: str  # driver | sut | simulator


@dataclass(frozen=True, slots=True)
class Arrow:
    n: int
    in_route: bool
    ja: str
    en: str
    src: str | None = None
    dst: str | None = None
    line: str | None = None  # manual | system
    data_class: str | None = None  # green | yellow | blue | none
    endpoints: str | None = None
    bidirectional: bool = False

    @property
    def must_not_carry_my_number(self) -> bool:
        return self.data_class in ("yellow", "blue")


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    arrows: tuple[int, ...]
    functions: tuple[str, ...]

    @property
    def chain(self) -> str:
        return "→".join(str(a) for a in self.arrows)


@dataclass(frozen=True, slots=True)
class Function:
    id: str
    route: str
    law: str | None
    ja: str
    en: str


@dataclass(frozen=True, slots=True)
class MessageType:
    id: str
    ja: str
    en: str
    root: str
    schema: str
    arrows: tuple[int, ...]
    mode: str  # async | sync | response
    functions: tuple[str, ...]
    response: str | None = None
    response_arrows: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CounterOperation:
    op: str
    ja: str
    arrow_in: int
    arrow_out: int
    functions: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    version: str
    counter_contract_version: str
    actors: dict[str, Actor]
    arrows: dict[int, Arrow]
    routes: dict[str, Route]
    functions: dict[str, Function]
    message_types: dict[str, MessageType]
    counter_operations: dict[str, CounterOperation]
    source: str
    by_root: dict[str, MessageType] = field(default_factory=dict)
    # (sender actor, receiver actor, message type) -> arrow number; built once for the gateway's hot path
    resolution: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def resolve_arrow(self, sender: str, receiver: str, type_id: str) -> int | None:
        """The arrow a message of ``type_id`` from ``sender`` to ``receiver`` travels, or None."""
        return self.resolution.get((sender, receiver, type_id))

    def ends(self, n: int) -> list[tuple[str, str]]:
        """(from, to) pairs an arrow connects: one pair, two for a bidirectional arrow."""
        a = self.arrows[n]
        if a.src is None or a.dst is None:
            return []
        pairs = [(a.src, a.dst)]
        if a.bidirectional:
            pairs.append((a.dst, a.src))
        return pairs

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "counter_contract_version": self.counter_contract_version,
            "actors": [
                {"id": a.id, "ja": a.ja, "en": a.en, "role": a.role} for a in self.actors.values()
            ],
            "arrows": [
                {
                    "n": a.n, "from": a.src, "to": a.dst, "line": a.line, "class": a.data_class,
                    "in_route": a.in_route, "used": a.in_route, "endpoints": a.endpoints,
                    "bidirectional": a.bidirectional, "ja": a.ja, "en": a.en,
                }
                for a in self.arrows.values()
            ],
            "routes": [
                {"id": r.id, "arrows": list(r.arrows), "chain": r.chain, "functions": list(r.functions)}
                for r in self.routes.values()
            ],
            "functions": [
                {"id": f.id, "route": f.route, "chain": self.routes[f.route].chain, "law": f.law,
                 "ja": f.ja, "en": f.en}
                for f in self.functions.values()
            ],
            "message_types": [
                {
                    "id": t.id, "ja": t.ja, "en": t.en, "root": t.root, "schema": t.schema,
                    "schema_path": str(SCHEMAS / t.schema), "arrows": list(t.arrows), "mode": t.mode,
                    "response": t.response,
                    "response_arrows": {str(k): v for k, v in t.response_arrows.items()},
                    "functions": list(t.functions),
                }
                for t in self.message_types.values()
            ],
            "counter_operations": [
                {"op": o.op, "ja": o.ja, "in": o.arrow_in, "out": o.arrow_out, "functions": list(o.functions)}
                for o in self.counter_operations.values()
            ],
        }


def _shape_errors(raw: Any, source: str) -> list[Finding]:
    schema = json.loads((DATA / "catalogue.schema.json").read_text(encoding="utf-8"))
    out: list[Finding] = []
    for err in jsonschema.Draft202012Validator(schema).iter_errors(raw):
        node: Any = raw
        line = getattr(raw, "line", None)
        for part in err.absolute_path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
            line = getattr(node, "line", line)
        path = "/".join(str(p) for p in err.absolute_path)
        out.append(Finding("CAT-SHAPE", f"{path or '(top)'}: {err.message}", file=source, line=line))
    return out


def _parse(raw: Any, source: str) -> Catalogue:
    problems: list[Finding] = []

    def bad(code: str, node: Any, msg: str) -> None:
        problems.append(Finding(code, msg, file=source, line=getattr(node, "line", None)))

    actors: dict[str, Actor] = {}
    for a in raw["actors"]:
        if a["id"] in actors:
            bad("CAT-DUP", a, f"actor {a['id']!r} is defined twice")
        actors[a["id"]] = Actor(a["id"], a["ja"], a["en"], a["role"])

    arrows: dict[int, Arrow] = {}
    for a in raw["arrows"]:
        if a["n"] in arrows:
            bad("CAT-DUP", a, f"arrow {a['n']} is defined twice")
        for end in ("from", "to"):
            if end in a and a[end] not in actors:
                bad("CAT-ACTOR", a, f"arrow {a['n']}: unknown actor {a[end]!r} in {end!r}")
        arrows[a["n"]] = Arrow(
            n=a["n"], in_route=a["in_route"], ja=a["ja"], en=a["en"], src=a.get("from"), dst=a.get("to"),
            line=a.get("line"), data_class=a.get("class"), endpoints=a.get("endpoints"),
            bidirectional=a.get("bidirectional", False),
        )

    functions: dict[str, Function] = {}
    for f in raw["functions"]:
        if f["id"] in functions:
            bad("CAT-DUP", f, f"function {f['id']} is defined twice")
        functions[f["id"]] = Function(f["id"], f["route"], f["law"], f["ja"], f["en"])

    routes: dict[str, Route] = {}
    for r in raw["routes"]:
        if r["id"] in routes:
            bad("CAT-DUP", r, f"route {r['id']} is defined twice")
        for n in r["arrows"]:
            if n not in arrows:
                bad("CAT-ARROW", r, f"route {r['id']}: unknown arrow {n}")
            elif not arrows[n].in_route:
                bad("CAT-ARROW", r, f"route {r['id']}: arrow {n} is marked as in no route")
        for fid in r["functions"]:
            if fid not in functions:
                bad("CAT-FUNCTION", r, f"route {r['id']}: unknown function {fid}")
            elif functions[fid].route != r["id"]:
                bad("CAT-FUNCTION", r, f"route {r['id']} lists {fid}, whose route is {functions[fid].route}")
        routes[r["id"]] = Route(r["id"], tuple(r["arrows"]), tuple(r["functions"]))
    for f in raw["functions"]:
        if f["route"] not in routes:
            bad("CAT-ROUTE", f, f"function {f['id']}: unknown route {f['route']}")
    for n, a in arrows.items():
        used = any(n in r.arrows for r in routes.values())
        if a.in_route != used:
            bad("CAT-ARROW", a, f"arrow {n}: in_route is {a.in_route} but it is {'' if used else 'not '}in a route")

    types: dict[str, MessageType] = {}
    for t in raw["message_types"]:
        if t["id"] in types:
            bad("CAT-DUP", t, f"message type {t['id']} is defined twice")
        if not (SCHEMAS / t["schema"]).is_file():
            bad("CAT-SCHEMA", t, f"message type {t['id']}: schema file {t['schema']} does not exist")
        for n in t["arrows"]:
            if n not in arrows or not arrows[n].in_route:
                bad("CAT-ARROW", t, f"message type {t['id']}: unknown or unused arrow {n}")
        for fid in t["functions"]:
            if fid not in functions:
                bad("CAT-FUNCTION", t, f"message type {t['id']}: unknown function {fid}")
        rarrows = {int(k): v for k, v in (t.get("response_arrows") or {}).items()}
        types[t["id"]] = MessageType(
            id=t["id"], ja=t["ja"], en=t["en"], root=t["root"], schema=t["schema"], arrows=tuple(t["arrows"]),
            mode=t["mode"], functions=tuple(t["functions"]), response=t.get("response"), response_arrows=rarrows,
        )
    for t in raw["message_types"]:
        mt = types[t["id"]]
        if mt.response is not None:
            resp = types.get(mt.response)
            if resp is None:
                bad("CAT-TYPE", t, f"message type {mt.id}: unknown response type {mt.response}")
            else:
                for req_arrow, resp_arrow in mt.response_arrows.items():
                    if req_arrow not in mt.arrows:
                        bad("CAT-ARROW", t, f"{mt.id}: response_arrows names request arrow {req_arrow} not in arrows")
                    if resp_arrow not in resp.arrows:
                        bad("CAT-ARROW", t, f"{mt.id}: response arrow {resp_arrow} is not an arrow of {resp.id}")

    ops: dict[str, CounterOperation] = {}
    for o in raw["counter_operations"]:
        for fid in o["functions"]:
            if fid not in functions:
                bad("CAT-FUNCTION", o, f"counter operation {o['op']}: unknown function {fid}")
        for key in ("in", "out"):
            if o[key] not in arrows or arrows[o[key]].line != "manual":
                bad("CAT-ARROW", o, f"counter operation {o['op']}: {key} arrow {o[key]} is not a manual arrow")
        ops[o["op"]] = CounterOperation(o["op"], o["ja"], o["in"], o["out"], tuple(o["functions"]))

    if problems:
        raise HarnessError(problems)

    cat = Catalogue(
        version=raw["version"], counter_contract_version=raw["counter_contract_version"], actors=actors,
        arrows=arrows, routes=routes, functions=functions, message_types=types, counter_operations=ops,
        source=source,
    )
    for mt in types.values():
        cat.by_root[mt.root] = mt
        for n in mt.arrows:
            for src, dst in cat.ends(n):
                cat.resolution.setdefault((src, dst, mt.id), n)
    return cat


def load(path: str | Path | None = None) -> Catalogue:
    """Load and check a catalogue file; raises HarnessError with line-numbered findings."""
    p = Path(path) if path is not None else DEFAULT_PATH
    source = str(p)
    try:
        raw = yaml.load(p.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise HarnessError([Finding("CAT-YAML", str(e).splitlines()[0], file=source,
                                    line=(mark.line + 1) if mark else None)]) from e
    shape = _shape_errors(raw, source)
    if shape:
        raise HarnessError(shape)
    return _parse(raw, source)


@cache
def default() -> Catalogue:
    """The embedded catalogue, loaded once per process."""
    return load()
