"""House rules that keep the code easy to carry on: short functions, a docstring on everything public, and no
document pointing at a `make` target that does not exist. Static checks: no Spark, no data."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from lisearch.config import SOURCE_ROOT

CODE = sorted([*(SOURCE_ROOT / "lisearch").rglob("*.py"), *(SOURCE_ROOT / "jobs").glob("*.py")])
LONG_ALLOWED = {"build_parser"}  # the argparse table: one line per option reads better than split helpers
MAX_LINES = 60


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_function_is_longer_than_sixty_lines():
    long = [
        f"{p.relative_to(SOURCE_ROOT)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for p in CODE
        for f in _functions(p)
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > MAX_LINES and f.name not in LONG_ALLOWED
    ]
    assert not long, "split these into named steps:\n" + "\n".join(long)


def test_every_public_function_and_class_has_a_docstring():
    missing = []
    for path in CODE:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            members = [node, *(node.body if isinstance(node, ast.ClassDef) else [])]
            for item in members:
                if not isinstance(item, (ast.FunctionDef, ast.ClassDef)) or item.name.startswith("_"):
                    continue
                if not ast.get_docstring(item):
                    missing.append(f"{path.relative_to(SOURCE_ROOT)}:{item.lineno} {item.name}")
    assert not missing, "\n".join(missing)


def test_documents_name_only_make_targets_that_exist():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (SOURCE_ROOT / "Makefile").read_text(), re.MULTILINE))
    texts = [SOURCE_ROOT / "README.md", *(SOURCE_ROOT / "docs").glob("*.md"), *(SOURCE_ROOT / "conf").glob("*.toml")]
    texts += CODE
    named = {
        (path.relative_to(SOURCE_ROOT), target)
        for path in texts
        for target in re.findall(r"`make ([a-z][a-z-]*)`", path.read_text())
    }
    unknown = sorted(f"{path}: make {t}" for path, t in named if t not in targets)
    assert named and not unknown, unknown
