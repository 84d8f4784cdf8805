"""reference/settings.md: every environment variable heldout/settings.py reads through its
helpers (heldout.env: env_str, env_bool, env_int, env_list), parsed with `ast`, never
imported: its default as written there and its meaning from the comment right above the
line, expression or statement that reads it (or the docstring of the function reading it).

A setting without such a comment is listed with an empty meaning, and tests/docs fails: the
way to document a setting is a comment above it in heldout/settings.py.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docs.gen.markdown import cell, table

REPO = Path(__file__).resolve().parents[2]
SETTINGS_FILE = REPO / "heldout" / "settings.py"
HELPERS = {"env_str": "text", "env_bool": "boolean", "env_int": "whole number",
           "env_list": "comma-separated list"}
# Names of settings.py that a default may use, as a reader knows them.
KNOWN_NAMES = {"BASE_DIR": "<checkout>"}
UNITS = ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str
    default: str  # as written in settings.py (names of other settings as $VARIABLE)
    minimum: str
    meaning: str
    line: int


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _helper_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in HELPERS and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            yield node


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Python name -> `$VARIABLE` for top-level settings read from one variable (so that a
    default reads `$HELDOUT_VAR_DIR / 'private'`, not `VAR_DIR / 'private'`)."""
    found = dict(KNOWN_NAMES)
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                statement.targets[0], ast.Name):
            calls = list(_helper_calls(statement.value))
            if len(calls) == 1:
                found[statement.targets[0].id] = "$" + str(calls[0].args[0].value)  # type: ignore[attr-defined]
    return found


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Name(self.names.get(node.id, node.id))


def _size(node: ast.expr) -> str:
    """`4 * 1024**3` -> ` (4 GiB)`: constant arithmetic in a friendlier unit, if any."""
    if not all(isinstance(n, ast.Constant | ast.BinOp | ast.UnaryOp | ast.operator
                          | ast.unaryop) for n in ast.walk(node)):
        return ""
    try:
        value = eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})
    except (ArithmeticError, TypeError, ValueError):
        return ""
    for unit, name in UNITS:
        if isinstance(value, int) and value >= unit and value % unit == 0:
            return f" ({value // unit} {name})"
    return ""


def _written(node: ast.expr, names: dict[str, str]) -> str:
    if isinstance(node, ast.Constant) and node.value == "":
        return "(empty)"
    renamed = _Rename(names).visit(ast.parse(ast.unparse(node), mode="eval")).body
    return f"`{ast.unparse(renamed)}`{_size(node)}"


def _default(call: ast.Call, parents: dict[ast.AST, ast.AST], names: dict[str, str]) -> str:
    given = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "default"), None)
    if given is not None:
        return _written(given, names)
    parent = parents.get(call)
    if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or):
        rest = parent.values[parent.values.index(call) + 1:]
        if rest:
            return _written(rest[0] if len(rest) == 1 else ast.BoolOp(ast.Or(), rest), names)
    return "—"


def _minimum(call: ast.Call, names: dict[str, str]) -> str:
    given = next((k.value for k in call.keywords if k.arg == "minimum"), None)
    return "" if given is None else _written(given, names)


def _comment_above(lines: list[str], first: int) -> str:
    """The comment lines right above line `first` (1-based); section rules
    (`# --- ... ---`) are not meanings."""
    block: list[str] = []
    index = first - 2
    while index >= 0 and lines[index].lstrip().startswith("#"):
        text = lines[index].strip().lstrip("#").strip()
        if text.startswith("---"):
            break
        block.insert(0, text)
        index -= 1
    return " ".join(block)


def _meaning(call: ast.Call, parents: dict[ast.AST, ast.AST], lines: list[str]) -> str:
    """The nearest comment above the call, its enclosing expressions or statement; inside a
    function without one, the function's docstring."""
    node: ast.AST | None = call
    while node is not None:
        if isinstance(node, ast.FunctionDef):
            return (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")
        if isinstance(node, ast.expr | ast.stmt):
            found = _comment_above(lines, node.lineno)
            if found:
                return found
        if isinstance(node, ast.stmt) and isinstance(parents.get(node), ast.Module):
            return ""
        node = parents.get(node)
    return ""


def read_settings(path: Path = SETTINGS_FILE) -> list[Setting]:
    """Every variable read, once, in the order the file first reads it."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    parents, names = _parents(tree), _aliases(tree)
    found: dict[str, Setting] = {}
    for call in sorted(_helper_calls(tree), key=lambda c: (c.lineno, c.col_offset)):
        name = str(call.args[0].value)  # type: ignore[attr-defined]
        setting = Setting(
            name=name, kind=HELPERS[call.func.id],  # type: ignore[attr-defined]
            default=_default(call, parents, names), minimum=_minimum(call, names),
            meaning=_meaning(call, parents, lines), line=call.lineno)
        earlier = found.get(name)
        if earlier is None or (not earlier.meaning and setting.meaning):
            found[name] = setting if earlier is None else Setting(
                **{**earlier.__dict__, "meaning": setting.meaning})
    return list(found.values())


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def render() -> str:
    settings = read_settings()
    lines = [
        "# Settings",
        "",
        "Generated from `heldout/settings.py`: every environment variable it reads, with "
        "its default as written there (`$NAME` is another setting's value) and the comment "
        "above the lines that read it. Every process of one installation (web, workers, "
        "beat) takes the same environment; a bad value stops start-up with a message that "
        "names the variable. How to choose them: [Operators: configuration]"
        "(../operators/configuration.md).",
        "",
    ]
    lines += table(("variable", "default", "type", "meaning"), [
        (f"<span id=\"{_anchor(s.name)}\"></span>`{s.name}`", s.default,
         s.kind + (f", at least {s.minimum}" if s.minimum else ""), cell(s.meaning))
        for s in settings])
    lines += ["", f"{len(settings)} variables, read at start-up.", ""]
    return "\n".join(lines)
