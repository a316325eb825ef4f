"""The import graph of the two packages: no cycle, ``probes`` never imports ``steering``, and
every module imports on its own in a fresh interpreter.

The graph is read from the source with :mod:`ast` (no module is executed to build it): an edge
``a -> b`` for every ``import b`` / ``from b import x`` in ``a`` whose target is a module of
``probes`` or ``steering``, relative imports resolved. Importing ``p.q.r`` also runs the
``__init__`` of ``p.q`` (and ``p``), so those packages are targets too, unless they enclose the
importing module (a package is always initialised before its own submodules). Imports under
``if TYPE_CHECKING:`` never run and are left out of the runtime graph.

Two graphs: *top-level* edges (module body, class bodies; what runs at import time) and *all*
edges (function bodies too, where a cycle hides until the function is called).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("probes", "steering")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    lineno: int
    top_level: bool  # runs at import time (not inside a function body)
    type_checking: bool  # under ``if TYPE_CHECKING:``


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """``module name -> file`` of every module of the packages (``__init__`` as the package name)."""
    out: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement with (top_level, under TYPE_CHECKING)."""
    stack: list[tuple[ast.AST, bool, bool]] = [(tree, True, False)]
    while stack:
        node, top, tc = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, top, tc
                continue
            child_top = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    stack.append((ast.Module(body=[sub], type_ignores=[]), child_top, True))
                for sub in child.orelse:
                    stack.append((ast.Module(body=[sub], type_ignores=[]), child_top, tc))
                continue
            stack.append((child, child_top, tc))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module named by a (possibly relative) ``from ... import``."""
    if node.level == 0:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_packages(target: str, source: str, known: Mapping[str, Path]) -> list[str]:
    """``target`` and the packages above it that importing it initialises (not those enclosing ``source``)."""
    parts = target.split(".")
    out = []
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name in known and not (source == name or source.startswith(name + ".")):
            out.append(name)
    return out


def import_edges(known: Mapping[str, Path] | None = None) -> list[Edge]:
    """Every import edge between modules of the packages, read from the source."""
    known = module_files() if known is None else known
    edges: list[Edge] = []
    for mod, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node, top, tc in _import_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(mod, is_pkg, node)
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
                targets = [base, *subs]
            for t in targets:
                for name in _with_packages(t, mod, known):
                    edges.append(Edge(mod, name, node.lineno, top, tc))
    return edges


def graph(edges: Iterable[Edge], *, top_level_only: bool) -> dict[str, set[str]]:
    """Adjacency of the runtime graph (``TYPE_CHECKING`` imports left out)."""
    g: dict[str, set[str]] = {}
    for e in edges:
        if e.type_checking or (top_level_only and not e.top_level) or e.source == e.target:
            continue
        g.setdefault(e.source, set()).add(e.target)
    return g


def find_cycle(g: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` of the directed graph ``g``, or ``None`` if it has none (DFS)."""
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = {}
    nodes = sorted(set(g) | {t for ts in g.values() for t in ts})
    for start in nodes:
        if colour.get(start, white) != white:
            continue
        path = [start]
        iters = [iter(sorted(g.get(start, ())))]
        colour[start] = grey
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                iters.pop()
                continue
            c = colour.get(nxt, white)
            if c == grey:
                return path[path.index(nxt) :] + [nxt]
            if c == white:
                colour[nxt] = grey
                path.append(nxt)
                iters.append(iter(sorted(g.get(nxt, ()))))
    return None


# ---------------------------------------------------------------------------------- the finder
def test_find_cycle_on_hand_made_graphs() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"x"}}) == ["x", "x"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None  # a diamond is no cycle
    assert find_cycle({}) is None


def test_planted_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    """A two-module package where one side imports the other only inside a function: the
    top-level graph is acyclic, the full graph is not; a relative import resolves."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n\ndef f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("def g():\n    import pkg.a\n    return pkg.a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n"
    )
    edges = import_edges(module_files(tmp_path, ["pkg"]))
    assert {(e.source, e.target, e.top_level, e.type_checking) for e in edges} == {
        ("pkg.a", "pkg.b", True, False),
        ("pkg.a", "pkg.b", False, False),
        ("pkg.b", "pkg.a", False, False),
        ("pkg.c", "pkg.a", True, True),
    }
    assert find_cycle(graph(edges, top_level_only=True)) is None
    assert find_cycle(graph(edges, top_level_only=False)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_importing_a_submodule_initialises_the_packages_above_it(tmp_path: Path) -> None:
    """``sub/__init__`` re-exports ``sub.x``, ``sub.x`` imports ``top``, and ``top`` imports
    ``sub.y``, which first runs ``sub/__init__``: ``top`` depends on ``sub`` and the graph has a
    cycle (``from pkg.sub import u`` in ``top`` would fail half-initialised)."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("from pkg.sub.y import v\n")
    (root / "sub" / "__init__.py").write_text("from pkg.sub.x import u\n")
    (root / "sub" / "x.py").write_text("import pkg.top\nu = 1\n")
    (root / "sub" / "y.py").write_text("v = 2\n")
    g = graph(import_edges(module_files(tmp_path, ["pkg"])), top_level_only=True)
    assert g["pkg.top"] == {"pkg.sub", "pkg.sub.y"}
    assert find_cycle(g) == ["pkg.sub", "pkg.sub.x", "pkg.top", "pkg.sub"]


# ---------------------------------------------------------------------------------- the kit
def _fmt(cycle: list[str], edges: list[Edge]) -> str:
    at = {(e.source, e.target): e.lineno for e in edges}
    return (
        " -> ".join(f"{a} (line {at.get((a, b), '?')})" for a, b in zip(cycle, cycle[1:], strict=False))
        + f" -> {cycle[-1]}"
    )


def test_no_import_cycle_at_import_time() -> None:
    edges = import_edges()
    cycle = find_cycle(graph(edges, top_level_only=True))
    assert cycle is None, "import cycle: " + _fmt(cycle, edges)


def test_no_import_cycle_hidden_in_function_bodies() -> None:
    edges = import_edges()
    cycle = find_cycle(graph(edges, top_level_only=False))
    assert cycle is None, "import cycle (through a function-level import): " + _fmt(cycle, edges)


def test_probes_never_imports_steering() -> None:
    bad = [
        e
        for e in import_edges()
        if e.source.split(".")[0] == "probes" and e.target.split(".")[0] == "steering"
    ]
    assert not bad, [f"{e.source}:{e.lineno} imports {e.target}" for e in bad]


def test_package_modules_import_from_the_defining_module() -> None:
    """Inside the packages, ``from probes import X`` (through the facade) is not used: the
    facade is for users, and importing it from inside the package hides cycles."""
    known = module_files()
    bad = []
    for mod, path in known.items():
        if path.name == "__init__.py":
            continue
        for node, _, _ in _import_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in PACKAGES:
                facade = [a.name for a in node.names if f"{node.module}.{a.name}" not in known]
                if facade:
                    bad.append(f"{mod}:{node.lineno} from {node.module} import {', '.join(facade)}")
    assert not bad, bad


_IMPORT_ALL = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=3)
leaked = sorted(m for m in sys.modules if m == "steering" or m.startswith("steering."))
print(json.dumps({"failed": failed, "steering_loaded": leaked}))
"""


def _import_in_fresh_interpreter(names: list[str]) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """All probes modules first (then no steering module may be loaded), then steering's."""
    names = sorted(module_files())
    probes_names = [n for n in names if n.split(".")[0] == "probes"]
    out = _import_in_fresh_interpreter(probes_names)
    assert out["failed"] == {}, out["failed"]
    assert out["steering_loaded"] == [], f"importing probes loaded {out['steering_loaded']}"
    out = _import_in_fresh_interpreter([n for n in names if n not in probes_names])
    assert out["failed"] == {}, out["failed"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(module_files()))
def test_module_imports_alone(name: str) -> None:
    """Each module on its own, first in its interpreter (order-dependent imports fail here)."""
    out = _import_in_fresh_interpreter([name])
    assert out["failed"] == {}, out["failed"]
    if name.split(".")[0] == "probes":
        assert out["steering_loaded"] == [], f"importing {name} loaded {out['steering_loaded']}"
