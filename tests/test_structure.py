"""The shape the code promises, measured from the source with ``ast``: no import cycle, short import chains,
short parameter lists, no patching in tests, a package that does not grow; and one place per concept."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple, Union

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "src" / "asc_token"

MAX_CHAIN = 8  # modules in the longest run-time import chain; a -> b -> c is 3
MAX_PARAMETERS = 6  # self and cls aside; *args and **kwargs count one each
MAX_NAMING_FUNCTIONS = 8  # functions taking a `naming` parameter
# src/asc_token/*.py's line count: a change that adds no behaviour must not grow it. An issue that adds
# behaviour raises the ceiling to what it measured when it ended, recorded here.
SIZE_HISTORY = (
    ("before the second structure pass (issue 27's start)", 4679),
    ("after it (issue 27)", 4645),
    ("asc-token upload, the upload step, api --upload-file (issue 28)", 7141),
    ("gh api's -f/-F, --jq, --silent, error documents; fastlane's key JSON, ASC_TOKEN alone (issue 29)", 7851),
    ("a build upload whose ID never arrived: the calls that find and delete it (issue 28)", 7895),
    ("an interrupt never leaves a file half-made: signals held while one is created (a flaky test's cause)", 7931),
    ("the lost build upload's listing for any version: a comma's filter left out, bytes not UTF-8 escaped", 7935),
    ("held signals: every handler put back though a signal comes while they are swapped or restored", 7951),
    ("app:<bundle-id>: an app whose id is null gives an empty app-id, never None", 7952),
    ("review of issue 29's api side: a 401 to ASC_TOKEN explained as the token's (after the reviews' folds)", 7953),
)
SIZE_CEILING = SIZE_HISTORY[-1][1]
PATCHES = ("monkeypatch.setattr", "mock.patch", "patch.object", "mocker.patch")

Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]
Graph = Dict[str, Set[str]]


@cache
def _sources() -> Dict[str, str]:
    """The package's modules by name, read once for every test."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(PACKAGE.glob("*.py"))}


@cache
def _trees() -> Dict[str, ast.Module]:
    return {name: ast.parse(text) for name, text in _sources().items()}


def _guards_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, type_checking: bool = False) -> Iterator[Tuple[str, bool]]:
    """Each package module imported below ``node``, functions included, and whether only for the type checker.

    The package's ``__init__`` runs before any of its modules, so ``from . import __version__`` is no link."""
    names: List[str] = []
    if isinstance(node, ast.ImportFrom):
        absolute = node.level == 0 and (node.module or "").split(".")[0] == "asc_token"
        module = (node.module or "").partition(".")[2] if absolute else node.module or ""
        if node.level == 1 or absolute:
            names = [module.split(".")[0]] if module else [alias.name for alias in node.names]
    elif isinstance(node, ast.Import):
        names = [alias.name.split(".")[1] for alias in node.names if alias.name.startswith("asc_token.")]
    for name in names:
        yield name, type_checking
    if isinstance(node, ast.If) and _guards_type_checking(node.test):
        for statement in node.body:
            yield from _imports(statement, True)
        for statement in node.orelse:
            yield from _imports(statement, type_checking)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _imports(child, type_checking)


@cache
def _graph(with_type_checking: bool) -> Graph:
    """Which package modules each one imports; ``with_type_checking`` adds the imports under ``if TYPE_CHECKING:``."""
    trees = _trees()
    return {
        name: {
            imported for imported, hidden in _imports(tree) if imported in trees and (with_type_checking or not hidden)
        }
        for name, tree in trees.items()
    }


def _floors(graph: Graph) -> Dict[str, List[str]]:
    """For each module, the longest chain of imports starting at it (its floor), no module twice."""

    def longest(trail: List[str]) -> List[str]:
        best = trail
        for imported in sorted(graph[trail[-1]]):
            if imported not in trail:
                chain = longest([*trail, imported])
                best = chain if len(chain) > len(best) else best
        return best

    return {module: longest([module]) for module in graph}


@cache
def _functions() -> List[Tuple[str, Function]]:
    """Every function and method of the package, nested ones too, by qualified name (``module.Class.method``)."""
    found: List[Tuple[str, Function]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not isinstance(child, ast.ClassDef):
                    found.append((f"{prefix}.{child.name}", child))
                visit(child, f"{prefix}.{child.name}")
            else:
                visit(child, prefix)

    for module, tree in _trees().items():
        visit(tree, module)
    return found


def _parameters(function: Function) -> List[str]:
    given = function.args
    every = [*given.posonlyargs, *given.args, *given.kwonlyargs, given.vararg, given.kwarg]
    return [argument.arg for argument in every if argument is not None and argument.arg not in ("self", "cls")]


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _patches(path: Path) -> List[Tuple[str, int, str]]:
    """Where ``path`` patches an attribute (``monkeypatch.setattr``, ``mock.patch``...) or imports mock's patch."""
    found: Dict[Tuple[str, int], str] = {}  # one per line: ast.walk meets mock.patch.object before mock.patch
    where = str(path.relative_to(TESTS.parent))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if any(dotted == patch or dotted.endswith(f".{patch}") for patch in PATCHES):
                found.setdefault((where, node.lineno), dotted)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module in ("unittest.mock", "mock")
            and any(alias.name == "patch" for alias in node.names)
        ):
            found.setdefault((where, node.lineno), f"from {node.module} import patch")
    return [(where, line, what) for (where, line), what in found.items()]


def test_no_import_cycle_counting_deferred_and_type_checking_imports() -> None:
    graph = _graph(with_type_checking=True)
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


def test_imports_tell_type_checking_apart() -> None:
    """The helper itself: imports in functions count; those under ``if TYPE_CHECKING:`` (not its else) are marked."""
    source = "from . import a\ndef f():\n    from .b import x\nif TYPE_CHECKING:\n    from .c import y\nelse:\n    import asc_token.d\n"
    assert sorted(_imports(ast.parse(source))) == [("a", False), ("b", False), ("c", True), ("d", False)]


def test_import_chains_are_short() -> None:
    """Run-time imports only (those in functions count; those under ``if TYPE_CHECKING:`` do not)."""
    floors = _floors(_graph(with_type_checking=False))
    longest = max(floors.values(), key=len)
    too_deep = {module: len(chain) for module, chain in floors.items() if len(chain) > MAX_CHAIN}
    assert len(longest) <= MAX_CHAIN, (
        f"longest import chain is {len(longest)} modules (at most {MAX_CHAIN}): {' -> '.join(longest)}; "
        f"modules starting chains too long: {too_deep}"
    )


def test_parameter_lists_are_short() -> None:
    counts = {name: len(_parameters(function)) for name, function in _functions()}
    offenders = {name: count for name, count in counts.items() if count > MAX_PARAMETERS}
    assert not offenders, f"functions with more than {MAX_PARAMETERS} parameters (self/cls aside): {offenders}"


def test_few_functions_take_naming() -> None:
    taking = [name for name, function in _functions() if "naming" in _parameters(function)]
    assert len(taking) <= MAX_NAMING_FUNCTIONS, (
        f"{len(taking)} functions take a `naming` parameter (at most {MAX_NAMING_FUNCTIONS}): {taking}"
    )


def test_tests_do_not_patch() -> None:
    """Tests pass fakes in; they do not patch attributes of the code under test."""
    this = Path(__file__).resolve()
    found = sorted(line for path in sorted(TESTS.rglob("*.py")) if path.resolve() != this for line in _patches(path))
    assert not found, "tests patch attributes:\n" + "\n".join(f"{path}:{line} {what}" for path, line, what in found)


def test_package_does_not_grow() -> None:
    lines = {name: text.count("\n") for name, text in _sources().items()}
    total = sum(lines.values())
    largest = sorted(lines.items(), key=lambda item: -item[1])[:5]
    assert total <= SIZE_CEILING, f"src/asc_token is {total} lines (ceiling {SIZE_CEILING}); largest: {largest}"


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
