"""The library's import graph, read from the sources: no cycle, the bottom layers import nothing above them, and no
module outside lisearch.spark imports pyspark."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from lisearch.config import SOURCE_ROOT

PACKAGE = SOURCE_ROOT / "lisearch"

#: The bottom of the graph: each module (or package, with ".*") and the lisearch modules it may import.
BOTTOM = {
    "lisearch.errors": set(),
    "lisearch.run_ids": {"lisearch.errors"},
    "lisearch.datasets": {"lisearch.errors"},
    "lisearch.chemistry.*": {"lisearch.chemistry.*", "lisearch.datasets", "lisearch.errors"},
    "lisearch.schema": {"lisearch.chemistry.elements", "lisearch.run_ids"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the lisearch modules it imports (at any depth of the file: imports inside functions count), from
    the sources with :mod:`ast`. ``from package import name`` points at ``package.name`` when that is a module."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lisearch"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("lisearch")}
        graph[name] = {t for t in targets if t != name and t in modules}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 60 and "lisearch.screening.kernels" in graph
    assert _cycles(graph) == []


def test_a_cycle_is_found():
    """The checker itself, on a toy graph: a -> b -> c -> a is one cycle, d alone is none."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith(".*") else name == pattern


def test_the_bottom_layers_import_nothing_above_them():
    graph = import_graph()
    wrong = []
    for pattern, allowed in BOTTOM.items():
        for module in (m for m in graph if _matches(pattern, m)):
            wrong += [f"{module} -> {t}" for t in graph[module] if not any(_matches(a, t) for a in allowed)]
    assert not wrong, wrong


def test_no_module_outside_lisearch_spark_imports_pyspark():
    """Every module of the package outside lisearch.spark, found by walking the package (not a fixed list)."""
    names = sorted(n for n in import_graph() if not n.startswith("lisearch.spark"))
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        "print(len(sys.modules), 'pyspark' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SOURCE_ROOT)
    assert out.stdout.split()[-1] == "False", out.stdout


def test_version_needs_no_spark():
    out = subprocess.run([sys.executable, "-m", "lisearch.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("lisearch ")
