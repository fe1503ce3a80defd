"""Scenarios as data: the model, the line-tracking loader and the template language of bodies.

A scenario file (``scenarios/RNN/FNN*.yaml``) holds file-level ``defaults`` and a list of scenarios, each read
like an EU Interoperability Test Bed test case: id, title (ja/en), functions, route, law, kind, actors,
fixtures, steps and expectations. Loading checks the file against ``data/scenario.schema.json``, every
expectation against its check's own parameter schema, and the cross-references (catalogue functions and
routes, counter operations, message types, step ids, template syntax); any problem is a Finding with the
file's LINE.

Strings are Jinja2 templates rendered when the step or expectation runs: bodies with XML autoescaping and
helpers that print model values as the XSD's types (``{{ resident_xml(fixture.taro) }}``), other values
plainly (``"{{ fixture.taro.juminhyo_code }}"``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml
from lxml import etree
from markupsafe import Markup

from conformance import catalogue as catalogue_mod
from conformance import codec
from conformance.checks import ASSERTION_OPS, CHECKS, SCHEMA_DEFS
from conformance.errors import Finding, HarnessError
from conformance.model import Address, ForeignInfo, Honseki, IndividualEntry, JDate, Name, Resident
from conformance.wareki import to_wareki

__all__ = [
    "COUNTER_OPERATIONS",
    "SCENARIOS_DIR",
    "Expectation",
    "ResidentSpec",
    "Scenario",
    "Step",
    "Suite",
    "body_env",
    "load_file",
    "load_suite",
    "value_env",
]

SCHEMA_PATH = Path(str(resources.files("conformance") / "data" / "scenario.schema.json"))
SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
ACTIONS = ("counter", "send", "deliver_raw", "fault", "fault_off", "clock", "hours", "wait", "seed", "settle",
           "sleep", "join")


# ------------------------------------------------------------------------------------ line-tracking YAML

class YMap(dict[str, Any]):
    """A mapping that remembers its line and the line of each key's value."""

    line: int = 0
    key_lines: dict[str, int]


class YList(list[Any]):
    """A sequence that remembers its line and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _map(loader: _Loader, node: yaml.MappingNode) -> YMap:
    loader.flatten_mapping(node)
    m = YMap()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        m[key] = loader.construct_object(vnode, deep=True)
        block = isinstance(vnode, yaml.ScalarNode) and vnode.style in ("|", ">")
        m.key_lines[key] = vnode.start_mark.line + 1 + (1 if block else 0)
    return m


def _seq(loader: _Loader, node: yaml.SequenceNode) -> YList:
    lst = YList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    lst.item_lines = [n.start_mark.line + 1 for n in node.value]
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)
# Dates stay strings: templates and XML want ISO text, not date objects.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def line_of(root: Any, path: Iterable[Any]) -> int | None:
    """The line of the value at ``path`` inside a loaded document (the nearest enclosing line)."""
    node = root
    line: int | None = getattr(root, "line", None)
    for part in path:
        if isinstance(node, YMap) and isinstance(part, str) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, YList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part] if part < len(node.item_lines) else line
            node = node[part]
        else:
            break
        line = getattr(node, "line", None) or line
    return line


# ------------------------------------------------------------------------------------------------- model

@dataclass(frozen=True, slots=True)
class ResidentSpec:
    """A fixture person (or household) drawn from the synthetic provider."""

    name: str
    members: int = 1
    foreign: bool | str = False
    tsusho: bool | None = None
    hard: str | None = "none"
    card: bool | None = None
    honseki: str = "here"
    lives: str = "sut"
    into: tuple[str, ...] = ("sut",)
    entries: tuple[str, ...] = ()
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``action`` (counter, send, deliver_raw, fault, fault_off, clock, wait, seed, settle, sleep),
    its argument, and every other key of the step (templates)."""

    id: str
    action: str
    arg: Any
    params: Mapping[str, Any]
    line: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Expectation:
    """One expectation: the named check and its parameters (templates, rendered at evaluation)."""

    id: str
    check: str
    params: Mapping[str, Any]
    line: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title_ja: str
    title_en: str
    functions: tuple[str, ...]
    route: str
    law: str | None
    kind: str
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    file: str
    line: int | None
    description: str = ""
    tags: tuple[str, ...] = ()
    actors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    exclusive: bool = False
    timeout: float = 30.0
    peers: int = 2
    seed: int = 1
    clock: str | None = None
    residents: tuple[ResidentSpec, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    skip_auto: tuple[str, ...] = ()

    @property
    def markers(self) -> list[str]:
        """pytest marker names: route_RNN, function_FNN, kind_positive|negative."""
        return [f"route_{self.route}", *(f"function_{f}" for f in self.functions), f"kind_{self.kind}"]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": {"ja": self.title_ja, "en": self.title_en}, "route": self.route,
                "functions": list(self.functions), "law": self.law, "kind": self.kind,
                "tags": list(self.tags), "file": self.file, "line": self.line}


@dataclass(frozen=True, slots=True)
class Suite:
    """Every scenario of a folder, with the suite's version and a digest over its files."""

    scenarios: tuple[Scenario, ...]
    version: str
    digest: str
    root: str

    def select(self, routes: Iterable[str] | None = None, functions: Iterable[str] | None = None,
               ids: Iterable[str] | None = None) -> list[Scenario]:
        rs, fs, ii = (set(x) if x else None for x in (routes, functions, ids))
        return [s for s in self.scenarios
                if (rs is None or s.route in rs) and (fs is None or fs & set(s.functions))
                and (ii is None or s.id in ii)]


# --------------------------------------------------------------------------------------------- templates

def _jd(v: Any) -> date:
    if isinstance(v, JDate):
        if v.western is None:
            raise ValueError(f"{v.uncertain} is not a calendar date")
        return v.western
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _days(v: Any, n: int) -> str:
    """ISO date ``n`` days after ``v`` (a date, JDate or ISO text)."""
    return (_jd(v) + timedelta(days=int(n))).isoformat()


def _iso(v: Any) -> str:
    return _jd(v).isoformat()


def _wareki(v: Any) -> str:
    return to_wareki(_jd(v))


# --- XML helpers for body templates ---------------------------------------------------------------------------
# Each builds its element with :mod:`conformance.codec` (the one writer of model values as XML) and gives it to
# the template as text without a namespace declaration: bodies are written in the project's default namespace.

def _xml(el: etree._Element) -> Markup:
    return Markup(codec.fragment(el))


def _t(parent: etree._Element, tag: str, value: Any) -> None:
    """A text child, left out when the value is None or empty (as a template would leave it out)."""
    if value is not None and value != "":
        codec.text_el(parent, tag, str(value))


def _jdate(d: Any) -> JDate:
    return d if isinstance(d, JDate) else JDate.of(_jd(d))


def name_xml(n: Name, tag: str = "Name") -> Markup:
    return _xml(codec.name_el(tag, n))


def jdate_xml(d: Any, tag: str) -> Markup:
    """A JDateType element from a JDate, a date or ISO text (和暦 filled in)."""
    return _xml(codec.jdate_el(tag, _jdate(d)))


def address_xml(a: Address, tag: str = "Address") -> Markup:
    return _xml(codec.address_el(tag, a))


def honseki_xml(h: Honseki | None, tag: str = "Honseki") -> Markup:
    return Markup("") if h is None else _xml(codec.honseki_el(tag, h))


def foreign_xml(f: ForeignInfo | None, tag: str = "Foreign") -> Markup:
    return Markup("") if f is None else _xml(codec.foreign_el(tag, f))


def household_xml(r: Resident, tag: str = "Household") -> Markup:
    return _xml(codec.household_el(tag, r.household, r.relationship))


def entry_xml(e: IndividualEntry, tag: str = "IndividualEntry") -> Markup:
    return _xml(codec.entry_el(tag, e))


def _r(r: Any) -> Resident:
    res = getattr(r, "resident", r)
    if not isinstance(res, Resident):
        raise TypeError(f"expected a fixture person, got {type(r).__name__}")
    return res


def identity_xml(p: Any, tag: str = "Identity", my_number: bool = True,
                 address: Address | None = None) -> Markup:
    """PersonIdentityType: 住民票コード, 個人番号 (unless ``my_number`` is false), 氏名, 生年月日, 性別,
    住所."""
    r = _r(p)
    if address is not None:
        r = replace(r, address=address)
    return _xml(codec.person_identity_el(tag, r, include_my_number=my_number))


def resident_xml(p: Any, tag: str = "Resident", my_number: bool = True, entries: bool = True,
                 address: Address | None = None) -> Markup:
    """ResidentType: every 住民票 item of a fixture person."""
    r = _r(p)
    if address is not None or not entries:
        r = replace(r, address=address or r.address, entries=r.entries if entries else ())
    return _xml(codec.resident_el(tag, r, include_my_number=my_number))


def counter_person_xml(p: Any, tag: str = "Person", ids: bool = True, my_number: bool = True,
                       card: bool = True, honseki: bool = True) -> Markup:
    """CounterPersonType: what staff type in for a person (ids only for a person already known)."""
    r = _r(p)
    el = codec.new_el(tag)
    _t(el, "JuminhyoCode", r.juminhyo_code if ids else None)
    _t(el, "MyNumber", r.my_number if ids and my_number else None)
    codec.name_el("Name", r.name, el)
    codec.jdate_el("BirthDate", r.birth_date, el)
    _t(el, "Sex", r.sex)
    _t(el, "Relationship", r.relationship)
    if honseki and r.honseki is not None:
        codec.honseki_el("Honseki", r.honseki, el)
    if r.foreign is not None:
        codec.foreign_el("Foreign", r.foreign, el)
    _t(el, "CardNo", r.card_no if card else None)
    return _xml(el)


def subject_xml(p: Any, tag: str = "Subject", code: bool = True, my_number: bool = False,
                name: bool = True, birth: bool = True) -> Markup:
    """SubjectType: how another municipality names a person."""
    r = _r(p)
    el = codec.new_el(tag)
    _t(el, "JuminhyoCode", r.juminhyo_code if code else None)
    _t(el, "MyNumber", r.my_number if my_number else None)
    if name:
        codec.name_el("Name", r.name, el)
    if birth:
        codec.jdate_el("BirthDate", r.birth_date, el)
    return _xml(el)


def koseki_person_xml(p: Any, tag: str = "Person", name: Name | None = None, code: bool = True) -> Markup:
    """KosekiPersonType: the person as the family register writes them."""
    r = _r(p)
    return _xml(codec.koseki_person_el(tag, juminhyo_code=r.juminhyo_code if code else None, name=name or r.name,
                                       birth=r.birth_date, sex=r.sex, honseki=r.honseki))


def foreign_person_xml(p: Any, tag: str = "Person", address: bool = True) -> Markup:
    """ForeignPersonType: a foreign resident as the agency names them (never a 個人番号)."""
    r = _r(p)
    if r.foreign is None:
        raise ValueError(f"{r.name.display} is not a foreign resident")
    return _xml(codec.foreign_person_el(tag, r, include_address=address))


def move_in_person_xml(p: Any, tag: str = "Person", my_number: bool = True) -> Markup:
    r = _r(p)
    el = codec.new_el(tag)
    _t(el, "JuminhyoCode", r.juminhyo_code)
    _t(el, "MyNumber", r.my_number if my_number else None)
    codec.name_el("Name", r.name, el)
    codec.jdate_el("BirthDate", r.birth_date, el)
    return _xml(el)


def change_xml(code: str, text: str, event: Any, seq: int = 1, notified: Any = None,
               tag: str = "Change") -> Markup:
    """ChangeType: 異動事由 (code and name), 異動年月日, 届出年月日, Seq."""
    return _xml(codec.change_el(tag, code, text, _jdate(event), seq,
                                _jd(notified) if notified is not None else None))


_HELPERS: dict[str, Any] = {
    "name_xml": name_xml, "jdate_xml": jdate_xml, "address_xml": address_xml, "honseki_xml": honseki_xml,
    "foreign_xml": foreign_xml, "household_xml": household_xml, "entry_xml": entry_xml,
    "identity_xml": identity_xml, "resident_xml": resident_xml, "counter_person_xml": counter_person_xml,
    "subject_xml": subject_xml, "koseki_person_xml": koseki_person_xml,
    "foreign_person_xml": foreign_person_xml,
    "move_in_person_xml": move_in_person_xml, "change_xml": change_xml,
}
_FILTERS: dict[str, Any] = {"days": _days, "iso": _iso, "wareki": _wareki}


@cache
def body_env() -> jinja2.Environment:
    """The environment of XML bodies: autoescaped, helpers return markup, undefined names fail."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    env.globals.update(_HELPERS)
    env.filters.update(_FILTERS)
    return env


@cache
def value_env() -> jinja2.Environment:
    """The environment of plain values (ids, dates, expected values): no escaping."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    env.globals.update(_HELPERS)
    env.filters.update(_FILTERS)
    return env


# ------------------------------------------------------------------------------------------------ loading

@cache
def _schema() -> dict[str, Any]:
    s: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    s["$defs"]["match"] = SCHEMA_DEFS["match"]
    return s


@cache
def _counter_operations() -> frozenset[str]:
    """The operation elements of CounterRequest (its xs:choice in counter.xsd)."""
    xs = "{http://www.w3.org/2001/XMLSchema}"
    tree = etree.parse(str(catalogue_mod.SCHEMAS / "counter.xsd"))
    el = tree.getroot().find(f"{xs}element[@name='CounterRequest']")
    assert el is not None
    return frozenset(str(c.get("name")) for c in el.iter(f"{xs}choice") for c in c.findall(f"{xs}element"))


COUNTER_OPERATIONS = _counter_operations()


def _templates(value: Any, path: tuple[Any, ...] = ()) -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _templates(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _templates(v, (*path, i))


def _plain(v: Any) -> Any:
    """Loaded YAML as plain dicts and lists (the line-tracking types are only for errors)."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _merge(defaults: Mapping[str, Any], sc: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in sc.items():
        if k == "fixtures" and isinstance(out.get("fixtures"), Mapping):
            merged = dict(out["fixtures"])
            merged.update(v)
            out[k] = merged
        else:
            out[k] = v
    return out


def _resident_specs(raw: Mapping[str, Any], node: Any) -> tuple[ResidentSpec, ...]:
    out = []
    for name, spec in raw.items():
        out.append(ResidentSpec(
            name=name, members=int(spec.get("members", 1)), foreign=spec.get("foreign", False),
            tsusho=spec.get("tsusho"), hard=spec.get("hard", "none"), card=spec.get("card"),
            honseki=spec.get("honseki", "here"), lives=spec.get("lives", "sut"),
            into=tuple(spec.get("into", ["sut"] if spec.get("lives", "sut") == "sut" else [spec["lives"]])),
            entries=tuple(spec.get("entries", [])),
            line=getattr(node.get(name) if node else None, "line", None)))
    return tuple(out)


def _check_file(raw: Any, source: str, cat: catalogue_mod.Catalogue) -> list[Finding]:
    """Cross-references and per-check schemas; shape problems are found by the JSON schema first."""
    problems: list[Finding] = []

    def bad(code: str, path: Sequence[Any], msg: str) -> None:
        problems.append(Finding(code, msg, file=source, line=line_of(raw, path)))

    defaults = raw.get("defaults") or {}
    folder = Path(source).parent.name
    for i, sc in enumerate(raw["scenarios"]):
        base: tuple[Any, ...] = ("scenarios", i)
        merged = _merge(defaults, sc)
        route = merged.get("route")
        functions = merged.get("functions") or []
        if route is None:
            bad("SCN-ROUTE", base, f"scenario {sc['id']}: no route (give one, or a default)")
        elif route not in cat.routes:
            bad("SCN-ROUTE", (*base, "route"), f"scenario {sc['id']}: unknown route {route}")
        elif folder.startswith("R") and folder[:3] != route:
            bad("SCN-ROUTE", (*base, "route"),
                f"scenario {sc['id']} is on route {route} but in folder {folder}")
        if not functions:
            bad("SCN-FUNCTION", base, f"scenario {sc['id']}: no functions")
        for j, fid in enumerate(functions):
            f = cat.functions.get(fid)
            fpath = (*base, "functions", j) if "functions" in sc else ("defaults", "functions", j)
            if f is None:
                bad("SCN-FUNCTION", fpath, f"scenario {sc['id']}: unknown function {fid}")
            elif route is not None and f.route != route:
                bad("SCN-FUNCTION", fpath,
                    f"scenario {sc['id']}: {fid} belongs to route {f.route}, not {route}")
        step_ids: set[str] = set()
        for j, st in enumerate(sc.get("steps", [])):
            spath = (*base, "steps", j)
            actions = [a for a in ACTIONS if a in st]
            if len(actions) != 1:
                bad("SCN-STEP", spath, f"a step needs exactly one action of {', '.join(ACTIONS)}; "
                                       f"found {', '.join(actions) or 'none'}")
                continue
            action = actions[0]
            sid = st.get("id") or f"s{j + 1}"
            if sid in step_ids:
                bad("SCN-STEP", (*spath, "id"), f"step id {sid} is used twice")
            step_ids.add(sid)
            if action == "counter":
                if st["counter"] not in COUNTER_OPERATIONS:
                    bad("SCN-STEP", (*spath, "counter"), f"unknown counter operation {st['counter']}; known: "
                                                          f"{', '.join(sorted(COUNTER_OPERATIONS))}")
                if "body" not in st:
                    bad("SCN-STEP", spath, "a counter step needs a body (the operation element's content)")
            if action == "send":
                if st["send"] not in cat.message_types and "{{" not in st["send"]:
                    bad("SCN-STEP", (*spath, "send"), f"unknown message type {st['send']}")
                if "body" not in st and "raw" not in st:
                    bad("SCN-STEP", spath, "a send step needs a body or raw")
                if "from" not in st:
                    bad("SCN-STEP", spath, "a send step needs from: {actor, lg}")
            for sub, text in _templates(_plain(st)):
                env = body_env() if sub and sub[0] in ("body", "raw", "deliver_raw") else value_env()
                try:
                    env.parse(text)
                except jinja2.TemplateSyntaxError as e:
                    problems.append(Finding("SCN-TEMPLATE", f"template syntax: {e.message}", file=source,
                                            line=(line_of(raw, (*spath, *sub)) or 0) + max(0, e.lineno - 1)))
        for j, ex in enumerate(sc.get("expect", [])):
            epath = (*base, "expect", j)
            c = CHECKS.get(ex["check"])
            if c is None:
                bad("SCN-CHECK", (*epath, "check"),
                    f"unknown check {ex['check']}; known: {', '.join(sorted(CHECKS))}")
                continue
            for err in jsonschema.Draft202012Validator(c.params).iter_errors(_plain(ex)):
                where = "/".join(str(x) for x in err.absolute_path)
                if err.validator == "minProperties" and "xpath" in err.instance:
                    err.message = ("an assertion needs an operator besides xpath: one of "
                                   + ", ".join(ASSERTION_OPS))
                bad("SCN-CHECK", (*epath, *err.absolute_path),
                    f"{ex['check']}: {where or '(top)'}: {err.message}")
            for key in ("step", "after"):
                ref = ex.get(key) or (ex.get("match") or {}).get(key)
                if isinstance(ref, str) and "{{" not in ref and ref not in step_ids:
                    bad("SCN-CHECK", epath, f"{ex['check']}: no step with id {ref!r}")
            for sub, text in _templates(_plain(ex)):
                try:
                    value_env().parse(text)
                except jinja2.TemplateSyntaxError as e:
                    problems.append(Finding("SCN-TEMPLATE", f"template syntax: {e.message}", file=source,
                                            line=line_of(raw, (*epath, *sub))))
        for name in (merged.get("skip_auto") or []):
            if name not in CHECKS or not CHECKS[name].auto:
                bad("SCN-CHECK", (*base, "skip_auto"), f"{name} is not an automatic check")
    return problems


def _build(raw: Any, source: str) -> list[Scenario]:
    defaults = raw.get("defaults") or {}
    out = []
    for i, sc_node in enumerate(raw["scenarios"]):
        sc = _merge(defaults, sc_node)
        fx = sc.get("fixtures") or {}
        tenant = fx.get("tenant") or {}
        steps = []
        for j, st in enumerate(sc_node.get("steps", [])):
            action = next(a for a in ACTIONS if a in st)
            params = {k: _plain(v) for k, v in st.items() if k not in (action, "id", "title")}
            steps.append(Step(id=st.get("id") or f"s{j + 1}", action=action, arg=_plain(st[action]),
                              params=params, line=line_of(raw, ("scenarios", i, "steps", j)),
                              title=st.get("title")))
        expect = []
        for j, ex in enumerate(sc_node["expect"]):
            expect.append(Expectation(
                id=ex.get("id") or f"e{j + 1}", check=ex["check"],
                params={k: _plain(v) for k, v in ex.items() if k not in ("check", "id", "title")},
                line=line_of(raw, ("scenarios", i, "expect", j)), title=ex.get("title")))
        res_node = (sc_node.get("fixtures") or {}).get("residents") or (defaults.get("fixtures") or {}).get(
            "residents")
        out.append(Scenario(
            id=sc["id"], title_ja=sc["title"]["ja"], title_en=sc["title"]["en"],
            functions=tuple(sc["functions"]),
            route=sc["route"], law=sc.get("law"), kind=sc["kind"], steps=tuple(steps), expect=tuple(expect),
            file=source, line=line_of(raw, ("scenarios", i)), description=sc.get("description", ""),
            tags=tuple(sc.get("tags", [])), actors=_plain(sc.get("actors") or {}),
            exclusive=bool(sc.get("exclusive", False)), timeout=float(sc.get("timeout", 30.0)),
            peers=int(tenant.get("peers", 2)), seed=int(tenant.get("seed", 1)), clock=fx.get("clock"),
            residents=_resident_specs(fx.get("residents") or {}, res_node),
            values=_plain(fx.get("values") or {}),
            skip_auto=tuple(sc.get("skip_auto", []))))
    return out


def load_text(text: str, source: str, cat: catalogue_mod.Catalogue | None = None) -> list[Scenario]:
    """Load scenarios from YAML text; raises HarnessError with line-numbered findings."""
    cat = cat or catalogue_mod.default()
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise HarnessError([Finding("SCN-YAML", str(e).splitlines()[0], file=source,
                                    line=(mark.line + 1) if mark else None)]) from e
    problems = []
    for err in jsonschema.Draft202012Validator(_schema()).iter_errors(raw):
        where = "/".join(str(x) for x in err.absolute_path)
        problems.append(Finding("SCN-SHAPE", f"{where or '(top)'}: {err.message}", file=source,
                                line=line_of(raw, err.absolute_path)))
    if problems:
        raise HarnessError(sorted(problems, key=lambda f: f.line or 0))
    problems = _check_file(raw, source, cat)
    if problems:
        raise HarnessError(problems)
    return _build(raw, source)


def load_file(path: str | Path, cat: catalogue_mod.Catalogue | None = None) -> list[Scenario]:
    """Load one scenario file."""
    p = Path(path)
    return load_text(p.read_text(encoding="utf-8"), str(p), cat)


def scenario_files(root: str | Path | None = None) -> list[Path]:
    """Scenario files under ``root`` (default: the shipped suite), sorted; ``suite.yaml`` and ``_*``
    skipped."""
    base = Path(root) if root is not None else SCENARIOS_DIR
    return sorted(p for p in base.rglob("*.yaml") if p.name != "suite.yaml" and not p.name.startswith("_"))


def load_suite(root: str | Path | None = None, cat: catalogue_mod.Catalogue | None = None) -> Suite:
    """Load every scenario file under ``root``; all problems of all files are raised together."""
    base = Path(root) if root is not None else SCENARIOS_DIR
    cat = cat or catalogue_mod.default()
    problems: list[Finding] = []
    scenarios: list[Scenario] = []
    h = hashlib.sha256()
    for p in scenario_files(base):
        data = p.read_bytes()
        h.update(str(p.relative_to(base)).encode() + b"\0" + data + b"\0")
        try:
            scenarios.extend(load_text(data.decode("utf-8"), str(p), cat))
        except HarnessError as e:
            problems.extend(e.findings)
    seen: dict[str, Scenario] = {}
    for s in scenarios:
        if s.id in seen:
            problems.append(Finding("SCN-DUP", f"scenario id {s.id} is also used at {seen[s.id].file}:"
                                               f"{seen[s.id].line}", file=s.file, line=s.line))
        seen[s.id] = s
    if problems:
        raise HarnessError(problems)
    version = "0"
    meta = base / "suite.yaml"
    if meta.is_file():
        info = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        version = str(info.get("version", version))
        h.update(meta.read_bytes())
    return Suite(tuple(scenarios), version, h.hexdigest(), str(base))
