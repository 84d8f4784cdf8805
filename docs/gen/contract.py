"""reference/container-contract.md: what a submitted model gets and must give, read from one
module, CONTRACT_MODULE, the single place to point at the evaluation kernel's contract.

The interface: CONTRACT_MODULE names a module with these attributes. Items may be mappings
or objects with attributes of these names (dataclasses, NamedTuples); every value is text
(Markdown allowed) unless said otherwise.

    VERSION        str: the contract's version ("1").
    MOUNTS         items (path, access, holds): each folder the model sees; access is
                   "read-only" or "writable".
    ENVIRONMENT    items (name, value, meaning): the model's whole environment.
    STAGES         items (name, data, told): the runs of one submission, in order; `data`
                   says what it runs on, `told` what the team learns of it.
    OUTPUTS        items (path, header, task, rules): the files the model writes; `task`
                   is the phase task they belong to ("binary", "detection", ...).
    ERROR_CLASSES  items (code, title, sentence, quota): every error class a submission can
                   end with; `sentence` is what a team reads when the run on hidden data
                   ended so ("" when not applicable), `quota` whether it uses quota.
    LIMITS         optional; items (name, default, meaning): the resources of one run.
    SANDBOX        optional; a sequence of str, each one rule of the sandbox.

The page shows them in this order. tests/docs compares the error classes with the
submissions' own and the sentences with the judge's.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from docs.gen.markdown import cell, table

# The one place that says where the contract is described: the evaluation kernel's
# `heldout_kernel.contract` once it exists; until then an adapter over today's modules.
CONTRACT_MODULE = "heldout_kernel.contract"
REQUIRED = ("VERSION", "MOUNTS", "ENVIRONMENT", "STAGES", "OUTPUTS", "ERROR_CLASSES")


def field(item: Any, name: str) -> str:
    value = item[name] if isinstance(item, dict) else getattr(item, name)
    return str(value)


def load(module_name: str = CONTRACT_MODULE) -> ModuleType:
    """The contract module, checked for the interface above."""
    module = importlib.import_module(module_name)
    missing = [name for name in REQUIRED if not hasattr(module, name)]
    if missing:
        raise AttributeError(f"{module_name} lacks {', '.join(missing)} (docs/gen/contract.py)")
    return module


def _rows(items: Iterable[Any], names: Sequence[str]) -> list[list[str]]:
    return [[cell(field(item, name)) for name in names] for item in items]


def _code(text: str) -> str:
    """Literal values as code; words ("the phase's CPUs") as they are."""
    return f"`{text}`" if text and " " not in text else text


def _section(title: str, intro: str, header: Sequence[str], rows: list[list[str]]) -> list[str]:
    return ["", f"## {title}", "", intro, "", *table(header, rows)]


def _error_rows(module: ModuleType) -> list[list[str]]:
    return [[_code(field(e, "code")), cell(field(e, "title")), cell(field(e, "sentence")),
             cell(field(e, "quota"))] for e in module.ERROR_CLASSES]


def render(module_name: str = CONTRACT_MODULE) -> str:
    contract = load(module_name)
    lines = [
        f"# The container contract (v{contract.VERSION})",
        "",
        f"Generated from `{module_name}`. The same contract holds on the central worker and "
        "at every data station. How to build a model against it: "
        "[Participants: the container contract](../participants/container-contract.md).",
    ]
    lines += _section("Mounts", "What the model sees:", ("path", "access", "holds"), [
        [_code(field(m, "path")), cell(field(m, "access")), cell(field(m, "holds"))]
        for m in contract.MOUNTS])
    lines += _section("Environment", "Nothing else from the platform's environment reaches "
                      "the container.", ("variable", "value", "meaning"), [
        [_code(field(e, "name")), _code(field(e, "value")), cell(field(e, "meaning"))]
        for e in contract.ENVIRONMENT])
    lines += _section("Stages", "One submission's runs, in order:", ("stage", "runs on",
                      "the team learns"), _rows(contract.STAGES, ("name", "data", "told")))
    lines += _section("Output files", "What the model writes:", ("file", "header", "task",
                      "rules"), [
        [_code(field(o, "path")), _code(field(o, "header")), cell(field(o, "task")),
         cell(field(o, "rules"))] for o in contract.OUTPUTS])
    lines += _section("Error classes", "How a submission can end other than succeeded, and "
                      "the one fixed sentence a team reads when its run on hidden data ended "
                      "so (the public sanity run shows the full details):",
                      ("class", "meaning", "on hidden data the team reads", "uses quota"),
                      _error_rows(contract))
    if hasattr(contract, "LIMITS"):
        lines += _section("Limits", "Per run; organisers set the phase's own in "
                          "[challenge.yaml](challenge-yaml.md#limits).",
                          ("limit", "default", "meaning"),
                          _rows(contract.LIMITS, ("name", "default", "meaning")))
    if hasattr(contract, "SANDBOX"):
        lines += ["", "## Sandbox", "", *(f"- {rule}" for rule in contract.SANDBOX)]
    return "\n".join(lines) + "\n"
