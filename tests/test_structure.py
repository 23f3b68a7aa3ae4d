"""The shape the code promises: no import cycle (imports inside functions count), one place per concept."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "asc_token"


def _imports(path: Path) -> Set[str]:
    """The package's modules that ``path`` imports anywhere, at module level or in a function."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def _graph() -> Dict[str, Set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    return {name: {imported for imported in _imports(path) if imported in modules} for name, path in modules.items()}


def test_no_import_cycle_counting_deferred_imports() -> None:
    graph = _graph()
    cycles: List[List[str]] = []

    def visit(module: str, trail: List[str]) -> None:
        for imported in sorted(graph[module]):
            if imported in trail:
                cycles.append([*trail[trail.index(imported) :], imported])
            elif len(trail) < len(graph):
                visit(imported, [*trail, imported])

    for module in graph:
        visit(module, [module])
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_only_apis_compares_apis() -> None:
    """`apis.Api` is the one place the two APIs differ: no other module asks which one it is."""
    for path in PACKAGE.glob("*.py"):
        if path.name == "apis.py":
            continue
        text = path.read_text(encoding="utf-8")
        for forbidden in ("is APP_STORE_CONNECT", "is not APP_STORE_CONNECT", "is ENTERPRISE", "== ENTERPRISE"):
            assert forbidden not in text, f"{path.name} compares APIs ({forbidden})"
        tree = ast.parse(text)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert "Enterprise Program API" not in node.value, f"{path.name} names an API in code"
