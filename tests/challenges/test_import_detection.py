"""Importing detection bundles: lesions are checked, stored with their sha256 and audited;
a bad lesions file is refused with every problem named and nothing written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from challenges.bundles import export_challenge, import_challenge
from challenges.exceptions import BundleError
from challenges.models import Challenge, EvaluationSet
from core.storage import private_path, sha256_file
from heldout_kernel.lesions import png_size
from scoring.labels import load_labels
from tests.bundles import (
    FILM_PX,
    detection_phase_spec,
    phase_spec,
    write_bundle,
    write_detection_bundle,
)

pytestmark = pytest.mark.django_db


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _rewrite_lesions(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_detection_bundle_imports_with_its_lesions(tmp_path):
    bundle = write_detection_bundle(tmp_path / "b")
    challenge, _ = import_challenge(bundle)
    phase = challenge.phases.get()
    assert phase.is_detection and phase.task_name == "detection"
    hidden = phase.evaluation_set
    expected = _rows(bundle / "hidden/lesions.csv")
    assert hidden.n_lesions == len(expected) > 0
    assert hidden.lesion_subgroup_columns == ["size"]
    assert hidden.checksums["lesions.csv"] == sha256_file(bundle / "hidden/lesions.csv")
    assert private_path(hidden.lesions_file).read_bytes() == (
        bundle / "hidden/lesions.csv").read_bytes()
    table = load_labels(hidden)
    assert table.lesions is not None
    first = expected[0]
    film = table.ids.index(first["id"])
    assert (table.lesions.film[0], table.lesions.x[0], table.lesions.y[0]) == (
        film, float(first["x"]), float(first["y"]))
    assert phase.sanity_set.lesions_file


def test_export_and_reimport_keep_the_lesions(tmp_path):
    challenge, _ = import_challenge(write_detection_bundle(tmp_path / "b"))
    exported = export_challenge(challenge, tmp_path / "out")
    _, changed = import_challenge(exported)
    assert changed is False
    assert yaml.safe_load((exported / "challenge.yaml").read_text())["phases"][0]["task"] == (
        "detection")


def test_bad_lesions_are_refused_with_every_problem_named(tmp_path):
    bundle = write_detection_bundle(tmp_path / "b")
    path = bundle / "hidden/lesions.csv"
    rows = _rows(path)
    normal = next(r["id"] for r in _rows(bundle / "hidden/labels.csv") if r["label"] == "0")
    rows += [
        {**rows[0], "id": "nobody"},
        {**rows[0], "id": normal},
        {**rows[0], "x": str(FILM_PX + 3)},
        {**rows[0], "radius": "0"},
        {**rows[0], "y": "nan"},
    ]
    _rewrite_lesions(path, rows)
    with pytest.raises(BundleError) as refused:
        import_challenge(bundle)
    text = " ".join(refused.value.problems)
    n = len(rows) - 3  # the csv line of the first added row (the header is line 1)
    assert f"lesions line {n}: id 'nobody' is not in the labels" in text
    assert f"lesions line {n + 1}: film '{normal}' has label 0 but a lesion" in text
    assert f"outside the {FILM_PX}x{FILM_PX} image" in text
    assert "radius 0 must be more than 0" in text
    assert "must be finite numbers" in text
    assert not Challenge.objects.exists() and not EvaluationSet.objects.exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(metrics={"primary": "auroc", "secondary": ["froc"]}),
     "primary metric must be a detection metric"),
    (lambda p: p["evaluation"].pop("lesions"), "a detection phase needs lesions"),
    (lambda p: p.update(submission_kinds=["predictions", "bundle"]),
     "score models (bundle or image), not files"),
    (lambda p: p.update(score_release="boot-ladder-boot"), "boot-ladder-boot is for classif"),
    (lambda p: p.update(task="segmentation"), "task 'segmentation' is unknown"),
])
def test_detection_phase_settings_are_checked(tmp_path, change, message):
    spec = detection_phase_spec()
    change(spec)
    with pytest.raises(BundleError) as refused:
        import_challenge(write_detection_bundle(tmp_path / "b", phases=[spec]))
    assert message in " ".join(refused.value.problems)


def test_classification_phases_cannot_rank_by_froc(tmp_path):
    bundle = write_bundle(tmp_path / "b", phases=[phase_spec(
        metrics={"primary": "auroc", "secondary": ["froc"]})])
    with pytest.raises(BundleError) as refused:
        import_challenge(bundle)
    assert "froc need lesions: only detection phases can use them" in " ".join(
        refused.value.problems)


def test_a_detection_track_may_run_beside_a_classification_round(tmp_path):
    """Same films, two phases at the same time: tracks of different tasks may overlap; the
    data set named by both carries the lesions."""
    bundle = write_detection_bundle(tmp_path / "b", task="binary", phases=[
        phase_spec(evaluation={"inputs": "hidden/inputs", "labels": "hidden/labels.csv"},
                   sanity={"inputs": "sanity/inputs", "labels": "sanity/labels.csv"}),
        detection_phase_spec(),
    ])
    challenge, _ = import_challenge(bundle)
    binary, detection = challenge.phases.order_by("order")
    assert (binary.task_name, detection.task_name) == ("binary", "detection")
    assert binary.evaluation_set_id == detection.evaluation_set_id
    assert detection.evaluation_set.lesions_file


def test_png_size_reads_the_header_only(tmp_path):
    bundle = write_detection_bundle(tmp_path / "b")
    assert png_size(next((bundle / "hidden/inputs/images").iterdir())) == (FILM_PX, FILM_PX)
    (tmp_path / "x.png").write_bytes(b"not a png at all, but long enough")
    assert png_size(tmp_path / "x.png") is None
