"""reference/challenge-yaml.md: every key challenge.yaml may hold, read from the bundle
importer (BUNDLES_MODULE): the keys from its key sets (CHALLENGE_KEYS, PHASE_KEYS, ...), the
defaults from the `.get(key, default)` calls of the functions that apply them.

The importer declares which keys exist but not what they mean or which are required, so
those words are kept here, in SECTIONS, and tests/docs fails when a key of the importer has
no words here or words here name a key the importer does not read.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass

from docs.gen.django_setup import setup
from docs.gen.markdown import cell, table

BUNDLES_MODULE = "challenges.bundles"
# Functions whose `.get(key, default)` calls apply the defaults a bundle's missing key gets.
DEFAULT_FUNCTIONS = ("_save_challenge", "_save_phase", "release_settings", "_check_data")
# Keys given inline in the importer rather than in a key set.
INLINE_KEYS = {"score_release": ("policy", "decimals", "eta"),
               "metrics": ("primary", "secondary")}
REQUIRED = "**required**"


@dataclass(frozen=True)
class Section:
    title: str
    where: str  # the YAML path of the mapping these keys live in
    key_set: str  # the importer's set of these keys, or an INLINE_KEYS entry
    words: dict[str, tuple[str, str]]  # key -> (required or a default override, meaning)


SECTIONS = (
    Section("The challenge", "top level", "CHALLENGE_KEYS", {
        "slug": (REQUIRED, "URL name: lower-case letters, digits, `-` and `_`; an import for "
                 "an existing slug updates that challenge."),
        "title": (REQUIRED, "Shown everywhere."),
        "summary": ("", "One line for the challenge list."),
        "task": (REQUIRED, "`binary` (classification) or `detection`; phases may override."),
        "description": ("", "A Markdown file of the bundle, rendered safely on the Overview "
                        "tab."),
        "terms": ("", "A Markdown file: the data-use terms. Participants accept them before "
                  "they see data or submit; a changed text asks everyone to accept again."),
        "max_team_size": ("", "Members per team."),
        "visibility": ("", "`public` or `invite-only`."),
        "public_files": ("", "Files of the bundle offered on the Data tab after the terms "
                         "(a leading `public/` is dropped from their names)."),
        "phases": (REQUIRED, "A non-empty list of phases (below). Phases of one task may not "
                   "overlap in time; tracks of different tasks may."),
    }),
    Section("A phase", "each item of `phases`", "PHASE_KEYS", {
        "slug": (REQUIRED, "URL name within the challenge."),
        "title": ("the slug", "Shown on the tabs and boards."),
        "opens": (REQUIRED, "ISO date-time with a time zone, e.g. `2026-01-01T00:00:00Z`."),
        "closes": (REQUIRED, "After `opens`. At the close the final (private) board is "
                   "published and every score is released exactly."),
        "task": ("the challenge's", "`binary` or `detection` for this phase."),
        "submission_kinds": (REQUIRED, "From `predictions`, `bundle`, `image`. `predictions` "
                             "needs `evaluation.public_inputs: true`; detection phases take "
                             "models only."),
        "quota": ("", "Submissions allowed (below)."),
        "metrics": (REQUIRED, "`{primary: auroc, secondary: [auprc, f1]}`: the primary metric "
                    "ranks, secondary ones break ties."),
        "evaluation": (REQUIRED, "The hidden set (below), in the bundle or at data stations."),
        "sanity": ("", "A small public set every model runs on first, whose logs the team "
                   "reads (same keys as `evaluation`, files in the bundle only)."),
        "limits": ("", "The sandbox's resources per run (below)."),
        "scores": ("", "`live`, or `after-close`: participants see no score, not even their "
                   "own, until the phase closes."),
        "show_logs": ("false", "Show teams the logs of their runs on hidden data (a channel "
                      "out of the sandbox: an organiser's deliberate choice)."),
        "selection_limit": ("", "0: a team's best submission is its entry; N: the team "
                            "selects up to N final entries (its latest N if it selects none)."),
        "bootstrap_resamples": ("", "Paired bootstrap resamples for intervals and ties."),
        "score_release": ("", "What teams see while the phase is open (below)."),
    }),
    Section("quota", "`phases[].quota`", "QUOTA_KEYS", {
        "per_day": ("", "Submissions per team per day (UTC)."),
        "total": ("", "Submissions per team in the phase."),
        "concurrent": ("", "Submissions of a team queued or running at once."),
        "count_failed": ("", "Whether failures before the hidden run (an unusable upload, the "
                         "sanity run) use quota; failures on hidden data always do."),
    }),
    Section("limits", "`phases[].limits`", "LIMIT_KEYS", {
        "cpus": ("", "CPUs per run."),
        "memory_mb": ("", "Memory per run, swap included; `/tmp` and `/output` count in it."),
        "seconds": ("", "Wall-clock limit per run, then the model is killed (`timeout`)."),
    }),
    Section("metrics", "`phases[].metrics`", "metrics", {
        "primary": (REQUIRED, "The metric that ranks: `auroc`, `auprc`, `f1`, `sensitivity`, "
                    "`specificity`, `accuracy`, `brier`, `log_loss`, `ece`; `froc` for "
                    "detection."),
        "secondary": ("", "A list of further metrics, shown and used to break ties."),
    }),
    Section("score_release", "`phases[].score_release` (or just a policy name)",
            "score_release", {
        "policy": ("", "`exact`, `rounded`, `ladder` or `boot-ladder-boot`: see "
                   "[release policies](../organisers/release-policies.md)."),
        "decimals": ("", "`rounded`: decimals shown."),
        "eta": ("", "`ladder`: the step a team must beat its shown best by."),
    }),
    Section("evaluation and sanity sets", "`phases[].evaluation`, `phases[].sanity`",
            "DATA_KEYS", {
        "inputs": (REQUIRED, "A folder of the bundle: `features.csv` with an `id` column, or "
                   "`manifest.csv` and `images/<id>.png`."),
        "labels": (REQUIRED, "`id,label` (0/1), optional `split` (`public`/`private`) and "
                   "subgroup columns."),
        "lesions": ("", "Detection: `id,x,y,radius` in pixels, origin top-left; further "
                    "columns are lesion subgroups."),
        "public_inputs": ("false", "Publish the inputs as public files (needed to score "
                          "predictions files)."),
    }),
    Section("hidden sets at data stations", "`phases[].evaluation` (instead of files)",
            "STATION_KEYS", {
        "station": (REQUIRED, "A registered station's name (`manage.py station_add NAME`)."),
        "dataset": (REQUIRED, "The dataset's folder name at that station. Several: "
                    "`stations: [{station: north, dataset: cohort}, ...]`."),
    }),
)


def _module() -> object:
    setup()  # the importer reads the apps' models
    return importlib.import_module(BUNDLES_MODULE)


def keys_of(section: Section, module: object | None = None) -> set[str]:
    """The keys the importer accepts in one section."""
    if section.key_set in INLINE_KEYS:
        return set(INLINE_KEYS[section.key_set])
    return set(getattr(module or _module(), section.key_set))


def _get_calls(function: ast.FunctionDef) -> Iterator[tuple[str, ast.expr]]:
    for node in ast.walk(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)):
            yield str(node.args[0].value), node.args[1]


def defaults(module: object | None = None) -> dict[str, str]:
    """key -> its default as the importer's writers apply it (first one found)."""
    tree = ast.parse(inspect.getsource(module or _module()))  # type: ignore[arg-type]
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in DEFAULT_FUNCTIONS:
            for key, value in _get_calls(node):
                found.setdefault(key, ast.unparse(value))
    return found


def _default(key: str, given: str, applied: dict[str, str]) -> str:
    if given:
        return given
    value = applied.get(key, "")
    return f"`{value}`" if value else ""


def render() -> str:
    module = _module()
    applied = defaults(module)
    lines = [
        "# challenge.yaml",
        "",
        f"Generated from the bundle importer (`{BUNDLES_MODULE}`): every key it accepts, "
        "with the default it applies. The import reports every unknown key and every problem "
        "at once, and writes nothing for a bad bundle. How to write a bundle: "
        "[Organisers: challenge-as-code](../organisers/bundles.md).",
        "",
        "YAML anchors and aliases are refused (with their line), and the file is limited "
        "to 256 KB and 32 levels of nesting.",
    ]
    for section in SECTIONS:
        lines += ["", f"## {section.title}", "", f"In {section.where}.", ""]
        lines += table(("key", "default", "meaning"), [
            (f"`{key}`", _default(key, section.words[key][0], applied),
             cell(section.words[key][1]))
            for key in sorted(keys_of(section, module), key=list(section.words).index)])
    return "\n".join(lines) + "\n"
