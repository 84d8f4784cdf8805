"""Challenge-as-code: importing a bundle is idempotent, export round-trips, and a bad bundle
is refused with every problem listed and nothing written."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from challenges.bundles import export_challenge, import_challenge
from challenges.exceptions import BundleError
from challenges.models import Challenge, EvaluationSet, Phase, PublicFile
from tests.bundles import phase_spec, write_bundle

pytestmark = pytest.mark.django_db

MODELS = (Challenge, Phase, EvaluationSet, PublicFile)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file below `root`: sha256 and modification time."""
    return {
        path.relative_to(root).as_posix(): (
            hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def facts(challenge: Challenge) -> dict[str, Any]:
    """What an import should reproduce, without database ids or storage folders."""
    challenge.refresh_from_db()
    phases = []
    for phase in challenge.phases.order_by("order"):
        row = {f.name: getattr(phase, f.name) for f in Phase._meta.fields
               if f.name not in ("id", "challenge", "evaluation_set", "sanity_set")}
        for which in ("evaluation_set", "sanity_set"):
            data = getattr(phase, which)
            row[which] = data and {
                "name": data.name, "is_public": data.is_public, "checksums": data.checksums,
                "n_cases": data.n_cases, "n_positive": data.n_positive,
                "has_split": data.has_split, "subgroups": data.subgroup_columns}
        phases.append(row)
    return {
        "challenge": {f: getattr(challenge, f) for f in (
            "slug", "title", "summary", "task", "description", "terms", "visibility",
            "max_team_size")},
        "public_files": [(p.name, p.sha256, p.size) for p in challenge.public_files.all()],
        "phases": phases,
    }


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


# --- importing ---------------------------------------------------------------------------


def test_it_imports_everything_the_bundle_describes(bundle, private_root) -> None:
    challenge, changed = import_challenge(bundle)

    assert changed
    assert (challenge.slug, challenge.title, challenge.task) == (
        "synthetic-test", "[SYNTHETIC] Test challenge", "binary")
    assert challenge.description.startswith("# Synthetic test challenge")
    assert challenge.terms == "Test terms.\n" and challenge.terms_version == 1
    phase = challenge.phases.get()
    assert (phase.primary_metric, phase.secondary_metrics) == ("auroc", ["auprc", "f1", "brier"])
    assert (phase.quota_per_day, phase.quota_total, phase.quota_concurrent) == (5, 100, 2)
    assert (phase.limit_cpus, phase.limit_memory_mb, phase.limit_seconds) == (1.0, 512, 60)
    hidden, sanity = phase.evaluation_set, phase.sanity_set
    assert (hidden.n_cases, hidden.n_positive, hidden.has_split) == (40, 14, True)
    assert hidden.subgroup_columns == ["sex"] and not hidden.is_public
    assert (sanity.n_cases, sanity.is_public) == (10, True)
    labels = private_root / hidden.labels_file
    assert labels.read_bytes() == (bundle / "hidden/labels.csv").read_bytes()
    assert hidden.checksums["labels.csv"] == hashlib.sha256(labels.read_bytes()).hexdigest()
    assert set(hidden.checksums) == {"labels.csv", "inputs/features.csv"}
    public = challenge.public_files.get()
    assert public.name == "train.csv"
    assert (private_root / public.path).read_bytes() == (bundle / "public/train.csv").read_bytes()


def test_a_second_import_of_the_same_bundle_changes_nothing(bundle, private_root) -> None:
    challenge, _ = import_challenge(bundle)
    before = counts()
    updated_at = Challenge.objects.get().updated_at
    files = tree(private_root)

    again, changed = import_challenge(bundle)

    assert not changed and again.pk == challenge.pk
    assert counts() == before == {"Challenge": 1, "Phase": 1, "EvaluationSet": 2,
                                  "PublicFile": 1}
    assert Challenge.objects.get().updated_at == updated_at
    assert tree(private_root) == files


def test_changed_labels_are_stored_anew_with_new_checksums(bundle, private_root) -> None:
    challenge, _ = import_challenge(bundle)
    before = EvaluationSet.objects.get(challenge=challenge, name="hidden/inputs")
    labels = bundle / "hidden/labels.csv"
    lines = labels.read_text().splitlines()
    assert lines[1].startswith("c000,1,")
    lines[1] = lines[1].replace("c000,1,", "c000,0,")
    labels.write_text("\n".join(lines) + "\n")

    _, changed = import_challenge(bundle)

    assert changed
    after = EvaluationSet.objects.get(pk=before.pk)
    assert after.checksums["labels.csv"] == hashlib.sha256(labels.read_bytes()).hexdigest()
    assert after.checksums["labels.csv"] != before.checksums["labels.csv"]
    assert after.checksums["inputs/features.csv"] == before.checksums["inputs/features.csv"]
    assert after.n_positive == before.n_positive - 1
    assert after.labels_file != before.labels_file
    assert (private_root / after.labels_file).read_bytes() == labels.read_bytes()
    assert Phase.objects.get().evaluation_set_id == before.pk


def test_a_public_file_dropped_from_the_bundle_is_withdrawn(bundle) -> None:
    import_challenge(bundle)
    document = yaml.safe_load((bundle / "challenge.yaml").read_text())
    document["public_files"] = []
    (bundle / "challenge.yaml").write_text(yaml.safe_dump(document))

    challenge, changed = import_challenge(bundle)

    assert changed and not challenge.public_files.exists()


def test_export_then_import_into_a_fresh_state_round_trips(bundle, tmp_path, settings) -> None:
    challenge, _ = import_challenge(bundle)
    expected = facts(challenge)
    exported = export_challenge(challenge, tmp_path / "export")

    Challenge.objects.all().delete()
    assert counts() == dict.fromkeys(counts(), 0)
    settings.PRIVATE_ROOT = tmp_path / "fresh-private"
    settings.PRIVATE_ROOT.mkdir()
    again, changed = import_challenge(exported)

    assert changed
    assert facts(again) == expected
    assert counts() == {"Challenge": 1, "Phase": 1, "EvaluationSet": 2, "PublicFile": 1}
    labels = settings.PRIVATE_ROOT / again.phases.get().evaluation_set.labels_file
    assert labels.read_bytes() == (bundle / "hidden/labels.csv").read_bytes()


def test_importing_an_export_over_its_source_changes_nothing(bundle, tmp_path) -> None:
    challenge, _ = import_challenge(bundle)

    exported = export_challenge(challenge, tmp_path / "export")
    again, changed = import_challenge(exported)

    assert again.pk == challenge.pk and not changed


# --- management commands -----------------------------------------------------------------


def test_the_import_command_imports_then_reports_unchanged(bundle) -> None:
    out = io.StringIO()
    call_command("import_challenge", str(bundle), stdout=out)
    call_command("import_challenge", str(bundle), stdout=out)

    assert out.getvalue().splitlines() == [
        "synthetic-test: imported (1 phases)", "synthetic-test: unchanged (1 phases)"]
    assert Challenge.objects.get().slug == "synthetic-test"


def test_the_import_command_lists_every_problem_of_a_bad_bundle(tmp_path, private_root) -> None:
    bad = write_bundle(tmp_path / "bad", slug="Not A Slug", colour="blue")

    with pytest.raises(CommandError) as raised:
        call_command("import_challenge", str(bad), stdout=io.StringIO())

    message = str(raised.value)
    assert message.startswith(f"{bad} is not a valid challenge bundle:")
    assert "  - slug 'Not A Slug' may use only" in message
    assert "  - Unknown key 'colour' in challenge.yaml." in message
    assert not Challenge.objects.exists() and not any(private_root.iterdir())


def test_the_export_command_writes_a_bundle(bundle, tmp_path) -> None:
    import_challenge(bundle)
    out = io.StringIO()

    call_command("export_challenge", "synthetic-test", str(tmp_path / "out"), stdout=out)

    assert out.getvalue().strip() == f"synthetic-test: exported to {tmp_path / 'out'}"
    document = yaml.safe_load((tmp_path / "out/challenge.yaml").read_text())
    assert document["slug"] == "synthetic-test"
    assert (tmp_path / "out/public/train.csv").read_bytes() == (
        bundle / "public/train.csv").read_bytes()


def test_the_export_command_refuses_an_unknown_challenge(tmp_path) -> None:
    with pytest.raises(CommandError, match="No challenge with slug 'nope'"):
        call_command("export_challenge", "nope", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# --- bad bundles -------------------------------------------------------------------------


def edit_yaml(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load((root / "challenge.yaml").read_text())
    change(document)
    (root / "challenge.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def without(key: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        write_bundle(root)
        edit_yaml(root, lambda d: d.pop(key))
    return apply


def edit_csv(path: Path, change: Callable[[list[list[str]]], None]) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    change(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def labels(change: Callable[[list[list[str]]], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        write_bundle(root)
        edit_csv(root / "hidden/labels.csv", change)
    return apply


def features(change: Callable[[list[list[str]]], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        write_bundle(root)
        edit_csv(root / "hidden/inputs/features.csv", change)
    return apply


def phases(*specs: dict[str, Any]) -> Callable[[Path], None]:
    return lambda root: write_bundle(root, phases=list(specs))


def set_cell(row: int, column: int, value: str) -> Callable[[list[list[str]]], None]:
    def change(rows: list[list[str]]) -> None:
        rows[row][column] = value
    return change


def only_header(rows: list[list[str]]) -> None:
    del rows[1:]


def add_label_column(rows: list[list[str]]) -> None:
    for n, row in enumerate(rows):
        row.append("label" if n == 0 else "0")


def rename_features(root: Path) -> None:
    write_bundle(root)
    (root / "hidden/inputs/features.csv").rename(root / "hidden/inputs/table.csv")


def escaping_public_file(root: Path) -> None:
    (root.parent / "outside.csv").write_text("id\nsecret\n")
    write_bundle(root, public_files=["../outside.csv"])


def escaping_inputs(root: Path) -> None:
    write_bundle(root)
    (root.parent / "elsewhere").mkdir()
    (root.parent / "elsewhere/features.csv").write_text("id,age\n")
    edit_yaml(root, lambda d: d["phases"][0]["evaluation"].update(inputs="../elsewhere"))


def phase_without_slug(root: Path) -> None:
    second = phase_spec(opens="2027-01-01T00:00:00Z", closes="2031-01-01T00:00:00Z")
    del second["slug"]
    write_bundle(root, phases=[phase_spec(), second])


WINDOW_2 = {"opens": "2030-01-01T00:00:00Z", "closes": "2031-01-01T00:00:00Z"}

BAD_BUNDLES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "missing challenge.yaml": (
        lambda root: (write_bundle(root), (root / "challenge.yaml").unlink()),
        ["challenge.yaml: not found"]),
    "invalid YAML": (
        lambda root: (write_bundle(root),
                      (root / "challenge.yaml").write_text("slug: [unclosed\n")),
        ["challenge.yaml is not valid YAML"]),
    "not a mapping": (
        lambda root: (write_bundle(root), (root / "challenge.yaml").write_text("- a\n- b\n")),
        ["challenge.yaml must be a mapping"]),
    "missing slug": (without("slug"), ["challenge.yaml needs 'slug'."]),
    "missing title": (without("title"), ["challenge.yaml needs 'title'."]),
    "missing task": (without("task"), ["challenge.yaml needs 'task'."]),
    "missing phases": (without("phases"), ["challenge.yaml needs 'phases'."]),
    "bad slug": (lambda root: write_bundle(root, slug="Bad Slug!"),
                 ["slug 'Bad Slug!' may use only lower-case letters"]),
    "slug with a trailing newline": (lambda root: write_bundle(root, slug="ok\n"),
                                     ["slug 'ok\\n' may use only lower-case letters"]),
    "unknown task": (lambda root: write_bundle(root, task="regression"),
                     ["task 'regression' is unknown"]),
    "unknown top-level key": (lambda root: write_bundle(root, colour="blue"),
                              ["Unknown key 'colour' in challenge.yaml."]),
    "unknown primary metric": (
        phases(phase_spec(metrics={"primary": "accuracy_at_k", "secondary": []})),
        ["phase 'leaderboard': unknown metric 'accuracy_at_k'"]),
    "unknown secondary metric": (
        phases(phase_spec(metrics={"primary": "auroc", "secondary": ["auprc", "vibes"]})),
        ["phase 'leaderboard': unknown metric 'vibes'"]),
    "metrics not a mapping": (phases(phase_spec(metrics="auroc")),
                              ["phase 'leaderboard': metrics must be a mapping"]),
    "missing public file": (lambda root: write_bundle(root, public_files=["public/nope.csv"]),
                            ["public_files: public/nope.csv is missing."]),
    "public file is a folder": (lambda root: write_bundle(root, public_files=["public"]),
                                ["public_files: public is not a file."]),
    "missing description file": (lambda root: write_bundle(root, description="NOPE.md"),
                                 ["description: NOPE.md is missing."]),
    "public file outside the bundle": (escaping_public_file,
                                       ["public_files: '../outside.csv' points outside"]),
    "inputs outside the bundle": (escaping_inputs, ["inputs: '../elsewhere' points outside"]),
    "labels without id": (labels(set_cell(0, 0, "case")),
                          ["labels file needs an `id` and a `label` column"]),
    "labels without label": (labels(set_cell(0, 1, "outcome")),
                             ["labels file needs an `id` and a `label` column"]),
    "labels are a folder": (
        phases(phase_spec(evaluation={"inputs": "hidden/inputs", "labels": "hidden/inputs"})),
        ["evaluation labels: hidden/inputs is not a file."]),
    "inputs are a file": (
        phases(phase_spec(evaluation={"inputs": "hidden/labels.csv",
                                      "labels": "hidden/labels.csv"})),
        ["evaluation inputs: hidden/labels.csv is not a folder."]),
    "labels without rows": (labels(only_header), ["labels file has no rows"]),
    "duplicate ids in labels": (labels(lambda rows: rows.append(list(rows[1]))),
                                ["duplicate id 'c000' in labels"]),
    "label value 2": (labels(set_cell(1, 1, "2")), ["label '2' on line 2 is not 0 or 1"]),
    "split other than public/private": (labels(set_cell(1, 2, "test")),
                                        ["split 'test' on line 2 is not public/private"]),
    "inputs without features.csv or manifest.csv": (
        rename_features, ["inputs need features.csv or manifest.csv"]),
    "input ids differ from label ids": (
        features(lambda rows: rows.pop()),
        ["input ids and label ids differ (1 labelled ids have no input, 0 inputs have no"]),
    "labels leaking into inputs": (features(add_label_column),
                                   ["features.csv contains a `label` column"]),
    "overlapping phase windows": (
        phases(phase_spec(), phase_spec(slug="final", opens="2029-01-01T00:00:00Z",
                                        closes="2031-01-01T00:00:00Z")),
        ["phase windows overlap: 'leaderboard' and 'final'."]),
    "closes before opens": (
        phases(phase_spec(opens="2027-01-01T00:00:00Z", closes="2026-06-01T00:00:00Z")),
        ["phase 'leaderboard': closes must be after opens."]),
    "timestamp without a time zone": (phases(phase_spec(opens="2026-01-01T00:00:00")),
                                      ["phase 'leaderboard' opens: '2026-01-01T00:00:00' is "
                                       "not an ISO date-time with a time zone."]),
    "duplicate phase slugs": (phases(phase_spec(), phase_spec(**WINDOW_2)),
                              ["phase slug 'leaderboard' is used more than once."]),
    "overlapping phases, one without a slug": (
        phase_without_slug, ["phase 1: needs a slug", "phase windows overlap"]),
    "unknown submission kind": (phases(phase_spec(submission_kinds=["notebook"])),
                                ["submission_kinds must be a list from"]),
    "negative quota": (phases(phase_spec(quota={"per_day": -1})),
                       ["phase 'leaderboard' quota: per_day must be a non-negative number."]),
    "zero cpus": (phases(phase_spec(limits={"cpus": 0})),
                  ["phase 'leaderboard' limits: cpus must be more than 0."]),
    "negative selection limit": (phases(phase_spec(selection_limit=-1)),
                                 ["phase 'leaderboard': selection_limit must be a whole number"]),
    "bootstrap resamples not a number": (
        phases(phase_spec(bootstrap_resamples="many")),
        ["phase 'leaderboard': bootstrap_resamples must be a whole number"]),
    "show_logs not true or false": (phases(phase_spec(show_logs="no")),
                                    ["phase 'leaderboard': show_logs must be true or false."]),
    "missing evaluation data": (phases(phase_spec(evaluation=None)),
                                ["evaluation: needs inputs (a folder) and labels"]),
    "empty phases list": (lambda root: write_bundle(root, phases=[]),
                          ["phases must be a non-empty list."]),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_a_bad_bundle_is_refused_and_nothing_is_written(case, tmp_path, private_root) -> None:
    make, expected = BAD_BUNDLES[case]
    root = tmp_path / "bundle"
    make(root)

    with pytest.raises(BundleError) as raised:
        import_challenge(root)

    problems = raised.value.problems
    for needle in expected:
        assert any(needle in problem for problem in problems), (needle, problems)
    assert str(raised.value) == "; ".join(problems)
    assert Challenge.objects.count() == 0
    assert counts() == dict.fromkeys(counts(), 0)
    evaluation = Path(settings.PRIVATE_ROOT) / "evaluation"
    assert not evaluation.exists() or not any(evaluation.iterdir())
    assert list(private_root.rglob("*")) == []


def test_a_bad_bundle_changes_nothing_in_an_imported_challenge(bundle, private_root) -> None:
    challenge, _ = import_challenge(bundle)
    files = tree(private_root)
    before = facts(challenge)
    edit_yaml(bundle, lambda d: d.update(title="Renamed", task="regression"))

    with pytest.raises(BundleError):
        import_challenge(bundle)

    assert facts(challenge) == before
    assert tree(private_root) == files


def test_every_problem_of_a_bundle_is_reported_together(tmp_path) -> None:
    root = write_bundle(tmp_path / "bundle", slug="Bad Slug", colour="blue", phases=[
        phase_spec(metrics={"primary": "vibes"}, quota={"per_day": -2}),
        phase_spec(slug="final", opens="2029-01-01T00:00:00Z", closes="2031-01-01T00:00:00Z"),
    ])
    edit_csv(root / "hidden/labels.csv", set_cell(3, 1, "2"))

    with pytest.raises(BundleError) as raised:
        import_challenge(root)

    problems = raised.value.problems
    for needle in ("Unknown key 'colour'", "slug 'Bad Slug'", "unknown metric 'vibes'",
                   "per_day must be a non-negative number", "label '2' on line 4",
                   "phase windows overlap"):
        assert sum(needle in problem for problem in problems) >= 1, (needle, problems)
    assert len(problems) >= 6
    assert Challenge.objects.count() == 0
