"""reference/api.md and reference/openapi.yaml: the REST API's operations, generated from
drf-spectacular's schema (the one /api/schema/ serves), rendered with the same helpers as
the server's own reference page at /api/docs/ (core.api)."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from docs.gen.django_setup import setup
from docs.gen.markdown import cell, table


@cache  # one schema per build: api.md and openapi.yaml
def schema() -> dict[str, Any]:
    setup()
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call,no-any-return]


def schema_yaml() -> str:
    return str(yaml.safe_dump(schema(), sort_keys=False, allow_unicode=True))


def operations(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """tag -> its operations, as core.api's reference page groups them."""
    from core.api import _operation  # the /api/docs/ page's reading of one operation

    components = spec.get("components", {}).get("schemas", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for url, item in spec["paths"].items():
        for method, operation in item.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_operation(url, method, operation, components))
    return groups


def _operation_lines(op: dict[str, Any]) -> list[str]:
    lines = ["", f"### `{op['method']} {op['path']}`", "", cell(op["summary"])
             + ("" if op["auth"] else " (no login needed)")]
    if op["description"] and op["description"] != op["summary"]:
        lines += ["", op["description"]]
    if op["parameters"]:
        lines += ["", *table(("parameter", "in", "type", ""), [
            (f"`{p['name']}`" + (" (required)" if p["required"] else ""), p["in"], p["type"],
             cell(p["description"])) for p in op["parameters"]])]
    if op["body"]:
        fields = ", ".join(f"`{name}`" for name in op["body"]["fields"])
        lines += ["", f"Request body ({op['body']['media']}): {fields}"]
    answers = "; ".join(f"**{code}** {cell(text).rstrip('.')}" for code, text in op["responses"])
    errors = ", ".join(op["errors"])
    lines += ["", f"Returns {answers}. [Errors](errors.md): {errors}."]
    return lines


def render() -> str:
    spec = schema()
    info = spec["info"]
    lines = [
        f"# {info['title']} {info['version']}",
        "",
        "Generated from the OpenAPI 3 schema the server serves at `/api/schema/` "
        "(drf-spectacular): every operation of `/api/v1/`. The same schema as a file: "
        "[openapi.yaml](openapi.yaml); a running server also renders it at `/api/docs/`. "
        "How to use it: [Team scripts: the REST API](../team-scripts/rest-api.md).",
        "",
        cell(info.get("description", "")),
    ]
    for tag, ops in operations(spec).items():
        lines += ["", f"## {tag}"]
        for op in ops:
            lines += _operation_lines(op)
    return "\n".join(lines + _schema_lines(spec)) + "\n"


def _schema_lines(spec: dict[str, Any]) -> list[str]:
    """Each component schema's fields (`?` optional, `|null` nullable), or its values."""
    from core.api import _fields  # as /api/docs/ lists them

    components = spec.get("components", {}).get("schemas", {})
    lines = ["", "## Schemas", ""]
    lines += table(("schema", "fields or values"), [
        (f"`{name}`", cell(", ".join(f"`{f}`" for f in _fields(item))
                           or ", ".join(f"`{v}`" for v in item.get("enum", []))))
        for name, item in sorted(components.items())])
    return lines
