"""The import structure: no import circle between modules, and packages import only downward.

Why a test: the layout is what lets a newcomer find a room — the contract and the judge at the bottom, the
simulators and reports above them, load above those, and one composition root that wires everything. An
import added in a hurry (often inside a function, where nobody sees it) is what breaks that; this test reads
every module's imports with ``ast`` — those inside functions included — and fails on a circle (imports that
run; ``if TYPE_CHECKING:`` ones are annotations) or an upward arrow (every import), naming the modules. It
also keeps every Python file under 800 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT_DIR = Path(__file__).resolve().parent.parent
PACKAGES = ("conformance", "simulators", "reports", "load")

#: The composition root: the modules that wire the layers together (CLIs, certify, selftest, serve, the pytest
#: plugin's start-up). They may import everything; nothing below may import them. The ONE list to edit.
COMPOSITION_ROOT: frozenset[str] = frozenset({
    "conformance.certify",
    "conformance.cli",
    "conformance.cli_serve",
    "conformance.cli_sut",
    "conformance.mutation_run",
    "conformance.pytest_plugin",
    "conformance.selftest",
    "conformance.suite_bench",
    "load.cli",
    "reports.cli",
    "reports.demo",
    "simulators.bench",
    "simulators.bench_serve",
    "simulators.reference.__main__",
    "simulators.trace_bench",
})

#: Layers, bottom -> top, by package (a module of the composition root is above all of them).
LAYERS: dict[str, int] = {"conformance": 0, "simulators": 1, "reports": 2, "load": 3}
TOP = max(LAYERS.values()) + 1

#: Circles that exist today in files owned by other work in progress, each to be removed by that work; the
#: test fails if one of them is gone (so the list only shrinks). Empty it when the owners are done.
KNOWN_CIRCLES: frozenset[frozenset[str]] = frozenset()

#: Upward imports that exist today in files owned by other work in progress (importer, imported).
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT_DIR / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT_DIR).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(name: str, node: ast.ImportFrom | ast.Import, module: str, is_pkg: bool) -> Iterator[str]:
    """The project modules an import statement names (``from a import b`` names ``a.b`` if it is a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            target = alias.name
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target:
                yield target
        return
    base = node.module or ""
    if node.level:
        pkg_parts = module.split(".") if is_pkg else module.split(".")[:-1]
        pkg_parts = pkg_parts[: len(pkg_parts) - (node.level - 1)]
        base = ".".join([*pkg_parts, base] if base else pkg_parts)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in MODULES:
            yield full
        elif base in MODULES:
            yield base


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (never run: annotations only)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def imports_of(module: str, *, type_only: bool = True) -> set[str]:
    """Every project module ``module`` imports, anywhere in its body (``type_only``: TYPE_CHECKING ones too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = set() if type_only else _type_only_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
            found.update(_imported(module, node, module, path.name == "__init__.py"))
    found.discard(module)
    return found


#: Every import (the layering rule holds for annotations too).
GRAPH: dict[str, set[str]] = {m: imports_of(m) for m in MODULES}
#: The imports that run (a circle is about loading order: an import under TYPE_CHECKING never runs).
RUN_GRAPH: dict[str, set[str]] = {m: imports_of(m, type_only=False) for m in MODULES}


def layer(module: str) -> int:
    if module in COMPOSITION_ROOT:
        return TOP
    return LAYERS[module.split(".")[0]]


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp: set[str] = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.add(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(frozenset(comp))
    return out


def upward(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, targets in graph.items() for t in targets if layer(t) > layer(m)}


def test_no_import_circle_between_modules() -> None:
    found = set(circles(RUN_GRAPH))
    new = sorted(sorted(c) for c in found - KNOWN_CIRCLES)
    assert not new, f"import circles: {new}"
    gone = sorted(sorted(c) for c in KNOWN_CIRCLES - found)
    assert not gone, f"circles fixed — remove them from KNOWN_CIRCLES: {gone}"


def test_packages_import_only_downward() -> None:
    found = upward(GRAPH)
    new = sorted(found - KNOWN_UPWARD)
    assert not new, "upward imports (importer, imported): " + "\n".join(f"{a} -> {b}" for a, b in new)
    gone = sorted(KNOWN_UPWARD - found)
    assert not gone, f"upward imports fixed — remove them from KNOWN_UPWARD: {gone}"


def test_the_judge_and_the_reports_do_not_reach_into_the_gateway() -> None:
    """The judge reads records (conformance.record), not the store; reports likewise (bar their CLIs)."""
    for module, targets in GRAPH.items():
        if module in COMPOSITION_ROOT:
            continue
        if module.startswith(("conformance.engine", "conformance.checks", "reports")):
            bad = sorted(t for t in targets if t.startswith("simulators."))
            assert not bad, f"{module} imports {bad}"


def test_the_checker_sees_imports_inside_functions_and_finds_a_circle() -> None:
    """The test's own machinery: a hidden import is seen, a circle is found, an upward import is named."""
    tree = ast.parse("def f():\n    from simulators.trace import TraceRecord\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert set(_imported("conformance.engine", node, "conformance.engine", False)) == {"simulators.trace"}
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    assert upward({"conformance.engine": {"simulators.trace"}}) == {("conformance.engine", "simulators.trace")}
    typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from simulators import trace\n")
    assert len(_type_only_nodes(typed)) > 0


#: The house rule on room size (lines per Python file, the tests included).
MAX_LINES = 800


def test_no_python_file_is_over_800_lines() -> None:
    files = [*MODULES.values(), *sorted((ROOT_DIR / "tests").rglob("*.py"))]
    big = {str(p.relative_to(ROOT_DIR)): n for p in files
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"files over {MAX_LINES} lines: {big}"


@pytest.mark.parametrize("module", sorted(COMPOSITION_ROOT))
def test_every_root_module_exists(module: str) -> None:
    assert module in MODULES
