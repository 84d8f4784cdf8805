"""Challenge-as-code: read, validate, import and export challenge bundles.

A bundle is a folder with `challenge.yaml` and the files it names (format in the README).
Import validates everything first and collects every problem, so a bad bundle is reported
in one go and nothing is written. Writes happen in one transaction; hidden files are copied
into content-addressed folders under the private root, which makes re-imports idempotent.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils.dateparse import parse_datetime

from challenges.bundle_yaml import UnsafeYaml, read_challenge_yaml
from challenges.datacard import compute_data_card, provenance_entries
from challenges.exceptions import BundleError
from challenges.models import (
    DETECTION_RELEASE,
    PREDICTIONS_NEED_PUBLIC_INPUTS,
    STATION_RELEASE,
    Challenge,
    EvaluationSet,
    Phase,
    PublicFile,
    Station,
    task_problems,
)
from challenges.services import next_terms_version
from core.services import audit_record
from core.storage import checksum_tree, private_path, private_root, sha256_file
from heldout_kernel.lesions import check_lesions
from heldout_kernel.stats.metrics import DETECTION_METRICS, METRICS
from heldout_kernel.stats.release import Policy

CHALLENGE_KEYS = {
    "slug", "title", "summary", "task", "description", "terms", "max_team_size",
    "visibility", "public_files", "phases",
}
PHASE_KEYS = {
    "slug", "title", "opens", "closes", "submission_kinds", "quota", "metrics",
    "evaluation", "sanity", "limits", "scores", "show_logs", "selection_limit",
    "bootstrap_resamples", "score_release", "task",
}
QUOTA_KEYS = {"per_day", "total", "concurrent", "count_failed"}
LIMIT_KEYS = {"cpus", "memory_mb", "seconds"}
SLUG = re.compile(r"^[-a-z0-9_]+\Z")  # \Z: `$` would accept a trailing newline


def known_metrics() -> set[str]:
    return set(METRICS) | set(DETECTION_METRICS)


@dataclass
class DataSpec:
    name: str
    inputs: Path | None  # None (and labels None): the data live at data stations
    labels: Path | None
    lesions: Path | None = None
    ids: list[str] = field(default_factory=list)
    label_of: dict[str, str] = field(default_factory=dict)
    n_lesions: int = 0
    lesion_subgroups: list[str] = field(default_factory=list)
    has_split: bool = False
    subgroups: list[str] = field(default_factory=list)
    n_positive: int = 0
    public_inputs: bool = False
    sources: list[dict[str, str]] = field(default_factory=list)


@dataclass
class PhaseSpec:
    raw: dict[str, Any]
    opens: datetime
    closes: datetime
    evaluation: DataSpec
    sanity: DataSpec | None
    task: str = Challenge.Task.BINARY


@dataclass
class BundleSpec:
    root: Path
    raw: dict[str, Any]
    phases: list[PhaseSpec]


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self) -> None:
        if self.items:
            raise BundleError(self.items)


# --- reading and validation -----------------------------------------------------------


def load_bundle(root: Path) -> BundleSpec:
    """Parse and validate a bundle folder; raise BundleError listing every problem."""
    problems = _Problems()
    raw = _read_yaml(root, problems)
    problems.raise_if_any()
    _check_challenge_fields(root, raw, problems)
    task = raw.get("task", Challenge.Task.BINARY)
    phases = [
        spec for index, phase in enumerate(raw.get("phases") or [])
        if (spec := _check_phase(root, phase, index, problems, task)) is not None
    ]
    _check_windows(phases, problems)
    _check_shared_data(phases, problems)
    problems.raise_if_any()
    return BundleSpec(root=root, raw=raw, phases=phases)


def _read_yaml(root: Path, problems: _Problems) -> dict[str, Any]:
    path = root / "challenge.yaml"
    if not path.is_file():
        problems.add(f"{path}: not found (a bundle needs challenge.yaml at its root).")
        return {}
    try:
        raw = read_challenge_yaml(path)
    except UnsafeYaml as error:
        problems.add(str(error))
        return {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        problems.add(f"challenge.yaml is not valid YAML: {error}")
        return {}
    if not isinstance(raw, dict):
        problems.add("challenge.yaml must be a mapping of keys to values.")
        return {}
    return raw


def _bundle_file(
    root: Path, relative: Any, what: str, problems: _Problems, *, folder: bool = False
) -> Path | None:
    if not isinstance(relative, str) or not relative:
        problems.add(f"{what}: expected a relative file path.")
        return None
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:
        problems.add(f"{what}: {relative!r} points outside the bundle.")
        return None
    if not path.exists():
        problems.add(f"{what}: {relative} is missing.")
        return None
    if path.is_dir() != folder:
        problems.add(f"{what}: {relative} is not a {'folder' if folder else 'file'}.")
        return None
    return path


def _check_challenge_fields(root: Path, raw: dict[str, Any], problems: _Problems) -> None:
    for key in sorted(set(raw) - CHALLENGE_KEYS):
        problems.add(f"Unknown key {key!r} in challenge.yaml.")
    for key in ("slug", "title", "task", "phases"):
        if key not in raw:
            problems.add(f"challenge.yaml needs {key!r}.")
    _check_challenge_values(raw, problems)
    for key in ("description", "terms"):
        if key in raw:
            _bundle_file(root, raw[key], key, problems)
    for relative in raw.get("public_files") or []:
        _bundle_file(root, relative, "public_files", problems)
    if "phases" in raw and (not isinstance(raw["phases"], list) or not raw["phases"]):
        problems.add("phases must be a non-empty list.")


def _check_challenge_values(raw: dict[str, Any], problems: _Problems) -> None:
    if "slug" in raw and not SLUG.match(str(raw["slug"])):
        problems.add(f"slug {raw['slug']!r} may use only lower-case letters, digits, - and _.")
    if "task" in raw and raw["task"] not in Challenge.Task.values:
        problems.add(f"task {raw['task']!r} is unknown; use one of {Challenge.Task.values}.")
    if raw.get("visibility", "public") not in Challenge.Visibility.values:
        problems.add(f"visibility must be one of {Challenge.Visibility.values}.")
    size = raw.get("max_team_size", 5)
    if not isinstance(size, int) or size < 1:
        problems.add("max_team_size must be a whole number of at least 1.")


def _parse_time(value: Any, what: str, problems: _Problems) -> datetime | None:
    if isinstance(value, datetime):
        parsed: datetime | None = value
    else:
        parsed = parse_datetime(str(value)) if value is not None else None
    if parsed is None or parsed.tzinfo is None:
        problems.add(f"{what}: {value!r} is not an ISO date-time with a time zone.")
        return None
    return parsed


def _check_phase(
    root: Path, phase: Any, index: int, problems: _Problems, challenge_task: str
) -> PhaseSpec | None:
    if not isinstance(phase, dict):
        problems.add(f"phases[{index}] must be a mapping.")
        return None
    label = f"phase {phase.get('slug', index)!r}"
    for key in sorted(set(phase) - PHASE_KEYS):
        problems.add(f"{label}: unknown key {key!r}.")
    if not SLUG.match(str(phase.get("slug", ""))):
        problems.add(f"{label}: needs a slug of lower-case letters, digits, - and _.")
    _check_phase_options(phase, label, problems)
    opens = _parse_time(phase.get("opens"), f"{label} opens", problems)
    closes = _parse_time(phase.get("closes"), f"{label} closes", problems)
    if opens and closes and closes <= opens:
        problems.add(f"{label}: closes must be after opens.")
    evaluation = _check_data(root, phase.get("evaluation"), f"{label} evaluation", problems,
                             remote=True)
    sanity = None
    if phase.get("sanity") is not None:
        sanity = _check_data(root, phase["sanity"], f"{label} sanity", problems)
    if evaluation is not None and not evaluation.public_inputs and (
            Phase.Kind.PREDICTIONS in (phase.get("submission_kinds") or [])):
        problems.add(f"{label}: {PREDICTIONS_NEED_PUBLIC_INPUTS}")
    task = phase.get("task", challenge_task)
    _check_task(phase, task, label, [evaluation, sanity], problems)
    release = phase.get("score_release", "exact")
    if evaluation is not None and evaluation.sources and (
            release.get("policy") if isinstance(release, dict) else release) == "boot-ladder-boot":
        problems.add(f"{label}: {STATION_RELEASE}")
    if opens is None or closes is None or evaluation is None:
        return None
    return PhaseSpec(raw=phase, opens=opens, closes=closes, evaluation=evaluation, sanity=sanity,
                     task=task)


def _check_task(phase: dict[str, Any], task: Any, label: str,
                data: list[DataSpec | None], problems: _Problems) -> None:
    """A phase's task agrees with its metrics, its data and what it accepts."""
    if task not in Challenge.Task.values:
        problems.add(f"{label}: task {task!r} is unknown; use one of {Challenge.Task.values}.")
        return
    metrics = phase.get("metrics") if isinstance(phase.get("metrics"), dict) else {}
    names = [n for n in [metrics.get("primary"), *(metrics.get("secondary") or [])]
             if n in known_metrics()]
    for problem in task_problems(task, names):
        problems.add(f"{label}: {problem}")
    if task != Challenge.Task.DETECTION:
        return
    if Phase.Kind.PREDICTIONS in (phase.get("submission_kinds") or []):
        problems.add(f"{label}: detection phases score models (bundle or image), not files.")
    release = phase.get("score_release", "exact")
    if (release.get("policy") if isinstance(release, dict) else release) == "boot-ladder-boot":
        problems.add(f"{label}: {DETECTION_RELEASE}")
    for item, what in zip(data, ("evaluation", "sanity"), strict=True):
        if item is not None and item.lesions is None and not item.sources:
            problems.add(f"{label} {what}: a detection phase needs lesions (a CSV file with "
                         "id,x,y,radius).")


def _check_phase_options(phase: dict[str, Any], label: str, problems: _Problems) -> None:
    kinds = phase.get("submission_kinds") or []
    if not kinds or not set(kinds) <= set(Phase.Kind.values):
        problems.add(f"{label}: submission_kinds must be a list from {Phase.Kind.values}.")
    _check_numbers(phase.get("quota") or {}, QUOTA_KEYS, f"{label} quota", problems)
    _check_numbers(phase.get("limits") or {}, LIMIT_KEYS, f"{label} limits", problems,
                   positive=True)
    _check_phase_settings(phase, label, problems)
    metrics = phase.get("metrics") or {}
    if not isinstance(metrics, dict):
        problems.add(f"{label}: metrics must be a mapping with a primary and secondary list.")
        metrics = {}
    names = [metrics.get("primary")] + list(metrics.get("secondary") or [])
    for name in names:
        if name not in known_metrics():
            problems.add(
                f"{label}: unknown metric {name!r}; known: {', '.join(sorted(known_metrics()))}."
            )
    if phase.get("scores", "live") not in Phase.ScoreVisibility.values:
        problems.add(f"{label}: scores must be one of {Phase.ScoreVisibility.values}.")


def _check_phase_settings(phase: dict[str, Any], label: str, problems: _Problems) -> None:
    # Checked here, not left to int()/bool() or the database, so that a bad value is reported
    # with the others and nothing is written (bool("no") would even show logs).
    for key in ("selection_limit", "bootstrap_resamples"):
        value = phase.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.add(f"{label}: {key} must be a whole number of at least 0.")
    if not isinstance(phase.get("show_logs", False), bool):
        problems.add(f"{label}: show_logs must be true or false.")
    try:
        release_settings(phase.get("score_release", "exact"))
    except (TypeError, ValueError) as error:
        problems.add(f"{label}: score_release: {error}.")


def release_settings(raw: Any) -> dict[str, Any]:
    """`score_release: rounded` or `{policy: ladder, eta: 0.005}` -> Phase field values."""
    spec = {"policy": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict) or set(spec) - {"policy", "decimals", "eta"}:
        raise TypeError("give a policy name, or a mapping with policy, decimals and eta")
    policy = Policy(name=spec.get("policy", "exact"), decimals=spec.get("decimals", 3),
                    eta=spec.get("eta", 0.01))
    return {"score_release": policy.name, "release_decimals": policy.decimals,
            "release_eta": policy.eta}


def _check_numbers(
    values: Any, allowed: set[str], label: str, problems: _Problems, *, positive: bool = False
) -> None:
    if not isinstance(values, dict):
        problems.add(f"{label} must be a mapping.")
        return
    for key, value in values.items():
        if key not in allowed:
            problems.add(f"{label}: unknown key {key!r}.")
        elif key == "count_failed":
            if not isinstance(value, bool):
                problems.add(f"{label}: count_failed must be true or false.")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            problems.add(f"{label}: {key} must be a non-negative number.")
        elif positive and value == 0:
            problems.add(f"{label}: {key} must be more than 0.")


DATA_KEYS = {"inputs", "labels", "lesions", "public_inputs"}


def _check_data(root: Path, raw: Any, label: str, problems: _Problems,
                remote: bool = False) -> DataSpec | None:
    if remote and isinstance(raw, dict) and ({"station", "stations"} & set(raw)):
        return _check_station_data(raw, label, problems)
    if not isinstance(raw, dict) or "inputs" not in raw or "labels" not in raw:
        problems.add(f"{label}: needs inputs (a folder) and labels (a CSV file).")
        return None
    for key in sorted(set(raw) - DATA_KEYS):
        problems.add(f"{label}: unknown key {key!r}.")
    inputs = _bundle_file(root, raw["inputs"], f"{label} inputs", problems, folder=True)
    labels = _bundle_file(root, raw["labels"], f"{label} labels", problems)
    lesions = (_bundle_file(root, raw["lesions"], f"{label} lesions", problems)
               if "lesions" in raw else None)
    if inputs is None or labels is None or ("lesions" in raw and lesions is None):
        return None
    if not isinstance(raw.get("public_inputs", False), bool):
        problems.add(f"{label}: public_inputs must be true or false.")
    spec = DataSpec(name=str(raw["inputs"]).strip("/"), inputs=inputs, labels=labels,
                    lesions=lesions, public_inputs=raw.get("public_inputs") is True)
    _check_files(spec, label, problems)
    return spec


def _check_files(spec: DataSpec, label: str, problems: _Problems) -> None:
    """A set's labels, inputs and lesions, every problem listed (the bundle import and the
    admin's uploads alike). The inputs are matched against every labelled id, good row or
    not; lesions need each film's label, so they wait for a clean labels file."""
    before = len(problems.items)
    if not _check_labels(spec, label, problems):
        return
    labels_clean = len(problems.items) == before
    _check_input_ids(spec, label, problems)
    if spec.lesions is not None and labels_clean:
        _check_lesion_file(spec, label, problems)


STATION_KEYS = {"station", "dataset"}


def _check_station_data(raw: dict[str, Any], label: str, problems: _Problems) -> DataSpec | None:
    """`{station: A, dataset: X}` or `{stations: [{station: A, dataset: X}, ...]}`: hidden
    data at registered data stations (they may report their datasets later; publishing
    waits for their fingerprints)."""
    listed = raw.get("stations") if "stations" in raw else [raw]
    if set(raw) - ({"stations"} if "stations" in raw else STATION_KEYS) or not (
            isinstance(listed, list) and listed):
        problems.add(f"{label}: give station and dataset, or stations: a list of them.")
        return None
    sources = []
    for item in listed:
        if not isinstance(item, dict) or set(item) != STATION_KEYS or not all(
                isinstance(v, str) and v for v in item.values()):
            problems.add(f"{label}: each station source needs exactly station and dataset.")
            return None
        if not Station.objects.filter(name=item["station"]).exists():
            problems.add(f"{label}: station {item['station']!r} is not registered "
                         f"(python manage.py station_add {item['station']}).")
        sources.append({"station": item["station"], "dataset": item["dataset"]})
    if len({(s["station"], s["dataset"]) for s in sources}) != len(sources):
        problems.add(f"{label}: a station dataset is named twice.")
    name = "stations:" + "+".join(f"{s['station']}/{s['dataset']}" for s in sources)
    return DataSpec(name=name, inputs=None, labels=None, sources=sources)


def _check_lesion_file(spec: DataSpec, label: str, problems: _Problems) -> None:
    assert spec.lesions is not None
    checked = check_lesions(spec.lesions, inputs=spec.inputs, labels=spec.label_of)
    for problem in checked.problems:
        problems.add(f"{label}: {problem}")
    spec.n_lesions, spec.lesion_subgroups = checked.n_lesions, checked.subgroups


def _check_shared_data(phases: list[PhaseSpec], problems: _Problems) -> None:
    """Phases naming the same inputs share one data set, so they must name the same labels
    (lesions may be named by the detection phases only)."""
    seen: dict[str, DataSpec] = {}
    for item in (d for p in phases for d in (p.evaluation, p.sanity) if d is not None):
        first = seen.setdefault(item.name, item)
        lesions = {first.lesions, item.lesions} - {None}
        if first.labels != item.labels or len(lesions) > 1:
            problems.add(f"data {item.name!r} is named with different labels or lesions files "
                         "in two phases; give each its own inputs folder.")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


MAX_ROW_PROBLEMS = 20  # per labels file; a file wrong on every line names its first lines


def _label_row_problems(row: dict[str, str], line: int, seen: dict[str, int]) -> list[str]:
    found = []
    if row["id"] in seen:
        found.append(f"duplicate id {row['id']!r} in labels (line {line}, first on line "
                     f"{seen[row['id']]}).")
    if row["label"] not in ("0", "1"):
        found.append(f"label {row['label']!r} on line {line} is not 0 or 1.")
    if "split" in row and row["split"] not in ("public", "private"):
        found.append(f"split {row['split']!r} on line {line} is not public/private.")
    return found


def _check_labels(spec: DataSpec, label: str, problems: _Problems) -> bool:
    """Read the labels file into `spec`, adding every problem (the first MAX_ROW_PROBLEMS
    lines' and a count of the rest). False when its header makes the rows unreadable."""
    header = _header(spec.labels)
    if "id" not in header or "label" not in header:
        problems.add(f"{label}: labels file needs an `id` and a `label` column (has {header}).")
        return False
    seen: dict[str, int] = {}
    found: list[str] = []
    for line, row in enumerate(_rows(spec.labels), start=2):
        row_problems = _label_row_problems(row, line, seen)
        seen.setdefault(row["id"], line)
        found += row_problems
        if not row_problems:
            spec.label_of[row["id"]] = row["label"]
            spec.n_positive += row["label"] == "1"
    for problem in found[:MAX_ROW_PROBLEMS]:
        problems.add(f"{label}: {problem}")
    if len(found) > MAX_ROW_PROBLEMS:
        problems.add(f"{label}: {len(found) - MAX_ROW_PROBLEMS} more problems in the labels "
                     "file (the first are listed above).")
    if not seen:
        problems.add(f"{label}: labels file has no rows.")
    spec.ids = list(seen)
    spec.has_split = "split" in header
    spec.subgroups = [c for c in header if c not in ("id", "label", "split")]
    return True


def _check_input_ids(spec: DataSpec, label: str, problems: _Problems) -> None:
    index = next(
        (spec.inputs / name for name in ("features.csv", "manifest.csv")
         if (spec.inputs / name).is_file()),
        None,
    )
    if index is None:
        problems.add(f"{label}: inputs need features.csv or manifest.csv with an `id` column.")
        return
    if "id" not in _header(index):
        problems.add(f"{label}: {index.name} has no `id` column.")
        return
    if "label" in _header(index):
        problems.add(f"{label}: {index.name} contains a `label` column; labels must not be inputs.")
    input_ids = [row["id"] for row in _rows(index)]
    missing = set(spec.ids) - set(input_ids)
    extra = set(input_ids) - set(spec.ids)
    if len(input_ids) != len(set(input_ids)):
        problems.add(f"{label}: {index.name} lists some ids more than once.")
    if missing or extra:
        problems.add(
            f"{label}: input ids and label ids differ ({len(missing)} labelled ids have no input,"
            f" {len(extra)} inputs have no label)."
        )


def _check_windows(phases: list[PhaseSpec], problems: _Problems) -> None:
    """Rounds of one task follow each other; tracks of different tasks (classification and
    detection on the same films) may run side by side."""
    ordered = sorted(phases, key=lambda p: (p.task, p.opens))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.task != after.task:
            continue
        if after.opens < before.closes:
            problems.add(
                f"phase windows overlap: {before.raw.get('slug')!r} and"
                f" {after.raw.get('slug')!r}."
            )
    slugs = [p.raw.get("slug") for p in phases]
    for slug in {s for s in slugs if slugs.count(s) > 1}:
        problems.add(f"phase slug {slug!r} is used more than once.")


# --- writing ---------------------------------------------------------------------------


def import_challenge(
    root: Path, *, actor: Any = None, draft: bool = False
) -> tuple[Challenge, bool]:
    """Create or update the challenge a bundle describes. Returns (challenge, changed).
    Every import is an audit event naming the bundle's and the hidden labels' sha256.

    A new challenge is published unless `draft` (the admin's import creates drafts); a
    re-import keeps the challenge's status. `actor` becomes one of its organisers."""
    spec = load_bundle(root)
    with transaction.atomic():
        tracker = _ChangeTracker()
        challenge = _save_challenge(spec, tracker, draft=draft)
        if actor is not None and getattr(actor, "pk", None):
            challenge.organisers.add(actor)
        _save_public_files(spec, challenge, tracker)
        sets: dict[str, EvaluationSet] = {}
        _adopt_lesions(spec.phases)
        for order, phase in enumerate(spec.phases):
            evaluation = _save_data(challenge, phase.evaluation, False, sets, tracker, actor)
            sanity = (_save_data(challenge, phase.sanity, True, sets, tracker, actor)
                      if phase.sanity else None)
            _save_phase(challenge, phase, order, evaluation, sanity, tracker)
        audit_record(verb="challenge.imported", actor=actor, challenge=challenge,
                     data={"changed": tracker.changed,
                           "challenge_yaml_sha256": sha256_file(root / "challenge.yaml"),
                           "evaluation_sets": {name: data.checksums.get("labels.csv", "")
                                               for name, data in sets.items()}})
    return challenge, tracker.changed


def _adopt_lesions(phases: list[PhaseSpec]) -> None:
    """A set named by a detection phase (with lesions) and by a classification phase
    (without) is one set with lesions: both phases point at it."""
    with_lesions = {d.name: d for p in phases for d in (p.evaluation, p.sanity)
                    if d is not None and d.lesions is not None}
    for phase in phases:
        phase.evaluation = with_lesions.get(phase.evaluation.name, phase.evaluation)
        if phase.sanity is not None:
            phase.sanity = with_lesions.get(phase.sanity.name, phase.sanity)


class _ChangeTracker:
    def __init__(self) -> None:
        self.changed = False

    def sync(self, obj: Any, values: dict[str, Any]) -> None:
        """Set fields and save only what differs, so a repeated import writes nothing."""
        dirty = [name for name, value in values.items() if getattr(obj, name) != value]
        for name in dirty:
            setattr(obj, name, values[name])
        if obj.pk is None:
            obj.save()
            self.changed = True
        elif dirty:
            obj.save(update_fields=dirty)
            self.changed = True


def _text(root: Path, relative: str | None) -> str:
    return (root / relative).read_text(encoding="utf-8") if relative else ""


def _save_challenge(spec: BundleSpec, tracker: _ChangeTracker, *, draft: bool) -> Challenge:
    raw = spec.raw
    challenge = Challenge.objects.filter(slug=raw["slug"]).first() or Challenge(
        slug=raw["slug"], status=Challenge.Status.DRAFT if draft else Challenge.Status.PUBLISHED)
    terms = _text(spec.root, raw.get("terms"))
    version = next_terms_version(challenge, terms)
    tracker.sync(challenge, {
        "title": raw["title"], "summary": raw.get("summary", ""), "task": raw["task"],
        "description": _text(spec.root, raw.get("description")), "terms": terms,
        "terms_version": version, "visibility": raw.get("visibility", "public"),
        "max_team_size": raw.get("max_team_size", 5),
    })
    return challenge


def _store(source: Path, destination: Path) -> None:
    """Copy a file or folder into place atomically (content-addressed: skip if present)."""
    if destination.exists():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".import-"))
    target = staging / "item"
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    _make_readable(target)
    target.rename(destination)
    staging.rmdir()


def _make_readable(path: Path) -> None:
    """Containers run as uid 65534 and read hidden inputs through a bind mount."""
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        item.chmod(0o755 if item.is_dir() else 0o644)


def _public_sources(spec: BundleSpec) -> list[tuple[str, Path]]:
    """(name, file) of every public file: those listed, and the inputs of evaluation sets
    marked public_inputs (a phase scoring predictions files must publish what it scores)."""
    listed = [(relative.removeprefix("public/"), spec.root / relative)
              for relative in spec.raw.get("public_files") or []]
    published = {data.name: data.inputs for phase in spec.phases
                 for data in (phase.evaluation,) if data.public_inputs and data.inputs}
    for name, folder in published.items():
        listed += [(f"{name}/{path.relative_to(folder).as_posix()}", path)
                   for path in sorted(folder.rglob("*")) if path.is_file()]
    return listed


def _save_public_files(spec: BundleSpec, challenge: Challenge, tracker: _ChangeTracker) -> None:
    names = []
    for name, source in _public_sources(spec):
        digest = sha256_file(source)
        stored = f"public/{challenge.slug}/{digest[:16]}/{source.name}"
        _store(source, private_root() / stored)
        names.append(name)
        item = PublicFile.objects.filter(challenge=challenge, name=name).first()
        tracker.sync(item or PublicFile(challenge=challenge, name=name),
                     {"path": stored, "sha256": digest, "size": source.stat().st_size})
    stale = challenge.public_files.exclude(name__in=names)
    if stale.exists():
        stale.delete()
        tracker.changed = True


def _save_data(
    challenge: Challenge, data: DataSpec, is_public: bool,
    cache: dict[str, EvaluationSet], tracker: _ChangeTracker, actor: Any = None,
) -> EvaluationSet:
    if data.name in cache:
        return cache[data.name]
    item = EvaluationSet.objects.filter(challenge=challenge, name=data.name).first()
    item = item or EvaluationSet(challenge=challenge, name=data.name)
    if data.sources:
        tracker.sync(item, {"is_public": False, "inputs_public": False, **remote_fields(data)})
        cache[data.name] = item
        return item
    values = stored_data_fields(challenge, data)
    if item.checksums != values["checksums"]:
        values["data_card"] = compute_data_card(inputs=data.inputs, labels=data.labels)
        values["provenance"] = [*item.provenance, *provenance_entries(
            actor=actor, source="bundle import", checksums=values["checksums"])]
    tracker.sync(item, {"is_public": is_public,
                        "inputs_public": is_public or data.public_inputs, **values})
    cache[data.name] = item
    return item


def check_data_files(inputs: Path, labels: Path, label: str,
                     lesions: Path | None = None) -> DataSpec:
    """Validate an inputs folder, a labels file and (detection) a lesions file as import
    does; raise BundleError."""
    problems = _Problems()
    spec = DataSpec(name=label, inputs=inputs, labels=labels, lesions=lesions)
    _check_files(spec, label, problems)
    problems.raise_if_any()
    return spec


def remote_fields(data: DataSpec) -> dict[str, Any]:
    """A set at data stations: where it is; its counts come from the stations' reports."""
    return {"sources": data.sources, "inputs_dir": "", "labels_file": "", "lesions_file": "",
            "checksums": {}}


def stored_data_fields(challenge: Challenge, data: DataSpec) -> dict[str, Any]:
    """Copy a checked data set into its content-addressed folder under the private root;
    return the EvaluationSet fields that describe it (paths, sha256 of every file, counts)."""
    checksums = {f"inputs/{k}": v for k, v in checksum_tree(data.inputs).items()}
    checksums["labels.csv"] = sha256_file(data.labels)
    if data.lesions is not None:
        checksums["lesions.csv"] = sha256_file(data.lesions)
    content = sha256_text(repr(sorted(checksums.items())))[:16]
    folder = f"evaluation/{challenge.slug}/{content}"
    _store(data.inputs, private_root() / folder / "inputs")
    _store(data.labels, private_root() / folder / "labels.csv")
    if data.lesions is not None:
        _store(data.lesions, private_root() / folder / "lesions.csv")
    return {
        "inputs_dir": f"{folder}/inputs", "labels_file": f"{folder}/labels.csv",
        "lesions_file": f"{folder}/lesions.csv" if data.lesions is not None else "",
        "n_lesions": data.n_lesions, "lesion_subgroup_columns": data.lesion_subgroups,
        "checksums": checksums, "n_cases": len(data.ids), "n_positive": data.n_positive,
        "has_split": data.has_split, "subgroup_columns": data.subgroups,
    }


def sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _save_phase(
    challenge: Challenge, spec: PhaseSpec, order: int, evaluation: EvaluationSet,
    sanity: EvaluationSet | None, tracker: _ChangeTracker,
) -> None:
    raw = spec.raw
    quota, limits, metrics = raw.get("quota") or {}, raw.get("limits") or {}, raw["metrics"]
    phase = Phase.objects.filter(challenge=challenge, slug=raw["slug"]).first()
    tracker.sync(phase or Phase(challenge=challenge, slug=raw["slug"]), {
        "title": raw.get("title", raw["slug"]), "order": order,
        "opens_at": spec.opens, "closes_at": spec.closes,
        "submission_kinds": list(raw["submission_kinds"]),
        "quota_per_day": quota.get("per_day", 5), "quota_total": quota.get("total", 100),
        "quota_concurrent": quota.get("concurrent", 2),
        "count_failed": quota.get("count_failed", True),
        **release_settings(raw.get("score_release", "exact")),
        "task": raw.get("task", ""), "primary_metric": metrics["primary"],
        "secondary_metrics": list(metrics.get("secondary") or []),
        "evaluation_set": evaluation, "sanity_set": sanity,
        "limit_cpus": float(limits.get("cpus", 1)),
        "limit_memory_mb": int(limits.get("memory_mb", 2048)),
        "limit_seconds": int(limits.get("seconds", 600)),
        "score_visibility": raw.get("scores", "live"), "show_logs": bool(raw.get("show_logs")),
        "selection_limit": int(raw.get("selection_limit", 0)),
        "bootstrap_resamples": int(raw.get("bootstrap_resamples", 1000)),
    })


# --- export ----------------------------------------------------------------------------


def export_challenge(challenge: Challenge, destination: Path) -> Path:
    """Write a challenge back as a bundle that import_challenge accepts unchanged."""
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "README.md").write_text(challenge.description, encoding="utf-8")
    (destination / "TERMS.md").write_text(challenge.terms, encoding="utf-8")
    public = []
    # Published evaluation inputs are public files the import derives from public_inputs.
    derived = tuple(f"{e.name}/" for e in challenge.evaluation_sets.filter(
        inputs_public=True, is_public=False))
    for item in challenge.public_files.all():
        if derived and item.name.startswith(derived):
            continue
        target = destination / "public" / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(private_root() / item.path, target)
        public.append(f"public/{item.name}")
    phases = [_export_phase(phase, destination) for phase in challenge.phases.order_by("order")]
    document = {
        "slug": challenge.slug, "title": challenge.title, "summary": challenge.summary,
        # str(): a fresh import leaves enum members (defaults) here, which YAML cannot dump
        "task": str(challenge.task), "description": "README.md", "terms": "TERMS.md",
        "max_team_size": challenge.max_team_size, "visibility": str(challenge.visibility),
        "public_files": public, "phases": phases,
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    (destination / "challenge.yaml").write_text(text, encoding="utf-8")
    return destination


ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: an unchanged challenge exports to the same bytes


def export_challenge_zip(challenge: Challenge, archive: Path) -> dict[str, Any]:
    """Write the challenge as a zipped bundle (challenge.yaml at its root), as the admin's
    "Export as bundle" and `manage.py export_challenge SLUG FILE.zip` do; import takes it
    back unchanged. Returns what the audit trail records: the zip's sha256, size and files,
    and the sha256 of each set's hidden labels it holds."""
    with tempfile.TemporaryDirectory(prefix="heldout-export-") as scratch:
        root = export_challenge(challenge, Path(scratch) / challenge.slug)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(root).as_posix(), ZIP_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as source, out.open(info, "w") as target:
                    shutil.copyfileobj(source, target, 1024 * 1024)
    return {"sha256": sha256_file(archive), "bytes": archive.stat().st_size,
            "files": len(files), "labels_sha256": exported_labels(challenge)}


def exported_labels(challenge: Challenge) -> dict[str, str]:
    """The sha256 of each hidden labels file an export holds, by set (for the audit trail:
    an export is hidden data leaving the platform)."""
    return {item.name: item.checksums.get("labels.csv", "")
            for item in challenge.evaluation_sets.order_by("name") if not item.is_remote}


def _export_data(evaluation: EvaluationSet, destination: Path) -> dict[str, Any]:
    if evaluation.is_remote:
        # Nothing to copy: the data stay at the stations. (Its inputs_dir is empty, and
        # copying the private root joined with "" would copy every challenge's hidden data.)
        sources = evaluation.sources
        return dict(sources[0]) if len(sources) == 1 else {"stations": list(sources)}
    if not (evaluation.inputs_dir and evaluation.labels_file):
        raise BundleError([f"Evaluation set {evaluation.name!r} has no stored inputs and "
                           "labels yet: nothing to export."])
    inputs = destination / evaluation.name
    labels = destination / f"{evaluation.name}.labels.csv"
    if not inputs.exists():
        shutil.copytree(private_path(evaluation.inputs_dir), inputs)
        shutil.copy2(private_path(evaluation.labels_file), labels)
    exported: dict[str, Any] = {"inputs": evaluation.name,
                                "labels": labels.relative_to(destination).as_posix()}
    if evaluation.lesions_file:
        lesions = destination / f"{evaluation.name}.lesions.csv"
        if not lesions.exists():
            shutil.copy2(private_path(evaluation.lesions_file), lesions)
        exported["lesions"] = lesions.relative_to(destination).as_posix()
    if evaluation.inputs_public and not evaluation.is_public:
        exported["public_inputs"] = True
    return exported


def _export_phase(phase: Phase, destination: Path) -> dict[str, Any]:
    if phase.evaluation_set is None:
        raise BundleError([f"Phase {phase.slug!r} has no evaluation set: nothing to export."])
    data: dict[str, Any] = {
        "slug": phase.slug, "title": phase.title,
        "opens": phase.opens_at.isoformat().replace("+00:00", "Z"),
        "closes": phase.closes_at.isoformat().replace("+00:00", "Z"),
        "submission_kinds": phase.submission_kinds,
        "quota": {"per_day": phase.quota_per_day, "total": phase.quota_total,
                  "concurrent": phase.quota_concurrent, "count_failed": phase.count_failed},
        "metrics": {"primary": phase.primary_metric, "secondary": phase.secondary_metrics},
        "evaluation": _export_data(phase.evaluation_set, destination),
        "limits": {"cpus": phase.limit_cpus, "memory_mb": phase.limit_memory_mb,
                   "seconds": phase.limit_seconds},
        "scores": phase.score_visibility, "show_logs": phase.show_logs,
        "selection_limit": phase.selection_limit,
        "bootstrap_resamples": phase.bootstrap_resamples,
        "score_release": {"policy": phase.score_release, "decimals": phase.release_decimals,
                          "eta": phase.release_eta},
    }
    if phase.sanity_set is not None:
        data["sanity"] = _export_data(phase.sanity_set, destination)
    if phase.task:
        data["task"] = phase.task
    return data
