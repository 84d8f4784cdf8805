"""The layout's rules, read from the code's own imports (every import, including those inside
functions): packages depend one way, no module imports itself back through others, pure
statistics need no Django, one function writes a submission's status, one module talks to
the Docker engine, and the command-line client needs nothing of the server."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

# Lowest first: a package may import only itself and packages before it. The kernel and the
# station program live in station/ (the heldout-station distribution); nothing of the
# platform imports the station program.
LAYERS = ("heldout_kernel", "core", "accounts", "challenges", "submissions", "scoring",
          "leaderboards", "heldout", "demo")
DISTRIBUTIONS = {"heldout_kernel": REPO / "station", "heldout_station": REPO / "station"}
CLIENT = REPO / "client" / "heldout_cli"
KERNEL = REPO / "station" / "heldout_kernel"
STATION = REPO / "station" / "heldout_station"


def package_dir(package: str) -> Path:
    return DISTRIBUTIONS.get(package, REPO) / package


def python_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def module_name(path: Path) -> str:
    root = REPO / "station" if path.is_relative_to(REPO / "station") else REPO
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> Iterator[str]:
    """Absolute dotted names imported by `path` (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path
            for layer in (*LAYERS, "heldout_station") for path in python_files(package_dir(layer))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(path):
            parts = imported.split(".")
            # the longest prefix that is a module: `from a import b` may name module a.b
            found = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                          if ".".join(parts[:n]) in modules), None)
            if found and found != name:
                targets.add(found)
        graph[name] = targets
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for child in graph.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other (a few hundred modules: quadratic is fine)."""
    reach = {node: reachable(graph, node) for node in graph}
    groups = {frozenset({node, *(other for other in reach[node] if node in reach[other])})
              for node in graph if node in reach[node]}
    return sorted(sorted(group) for group in groups)


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_packages_depend_only_on_lower_layers() -> None:
    upward = sorted(
        f"{source} imports {target}"
        for source, targets in import_graph().items() for target in targets
        if _upward(source.split(".")[0], target.split(".")[0])
    )
    assert upward == []


def _upward(source: str, target: str) -> bool:
    """The station program sits beside the platform on the kernel: it may import the kernel
    and itself, and nothing imports it."""
    if "heldout_station" in (source, target):
        return source != target and not (source == "heldout_station" and target == LAYERS[0])
    return LAYERS.index(target) > LAYERS.index(source)


SERVER = {"django", "rest_framework", "celery", "kombu", "psycopg", "psycopg2",
          "drf_spectacular", "allauth", *LAYERS[1:]}


@pytest.mark.parametrize("path", sorted(python_files(KERNEL)), ids=lambda p: module_name(p))
def test_the_kernel_imports_no_django_and_nothing_of_the_platform(path: Path) -> None:
    assert not [n for n in imported_names(path) if n.split(".")[0] in SERVER]


@pytest.mark.parametrize("path", sorted(python_files(STATION)), ids=lambda p: module_name(p))
def test_the_station_imports_only_the_kernel_and_itself(path: Path) -> None:
    assert not [n for n in imported_names(path) if n.split(".")[0] in SERVER]


def test_only_the_docker_backend_imports_the_docker_sdk() -> None:
    users = sorted(
        module_name(path) for path in project_modules().values()
        if any(name.split(".")[0] == "docker" for name in imported_names(path))
    )
    assert users == ["heldout_kernel.sandbox.docker"]


def status_writes(path: Path) -> Iterator[int]:
    """Lines of `.update(...)` calls that set a `status` column."""
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "update"
                and any(keyword.arg == "status" for keyword in node.keywords)):
            yield node.lineno


def knows_submissions(path: Path) -> bool:
    """Modules that can reach the Submission model (others' `status` is another model's)."""
    return module_name(path).startswith("submissions.") or any(
        name.startswith("submissions.models") for name in imported_names(path))


def test_only_the_transition_function_writes_a_submission_status() -> None:
    writers = {module_name(path): list(status_writes(path))
               for path in project_modules().values() if knows_submissions(path)}
    assert {name: lines for name, lines in writers.items() if lines} == {
        "submissions.models": [next(status_writes(REPO / "submissions" / "models.py"))]}


@pytest.mark.parametrize("path", sorted(CLIENT.rglob("*.py")), ids=lambda p: p.name)
def test_the_command_line_client_needs_nothing_of_the_server(path: Path) -> None:
    server = {"django", "rest_framework", "celery", "numpy", "docker", *LAYERS,
              "heldout_station"}
    assert not [name for name in imported_names(path) if name.split(".")[0] in server]
