"""The example models scored end to end on the real data sets of ../shared/data, through
the real import path, the real Docker engine and trusted scoring; the stored scores give
exactly scikit-learn's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from challenges.bundles import import_challenge
from challenges.services import team_create
from demo.bundles import build_demo_bundles
from demo.examples import mammography_model, readmission_bundle
from scoring.arrays import from_bytes
from scoring.labels import load_labels
from scoring.pipeline import evaluate
from tests.conftest import REPO, SHARED_DATA
from tests.factories import accept_terms

pytestmark = [pytest.mark.docker, pytest.mark.django_db]
CACHE = REPO / "var" / "test-cache"


@pytest.fixture(scope="session")
def real_bundles() -> dict[str, Path]:
    assert SHARED_DATA.is_dir(), f"the real data sets are required at {SHARED_DATA}"
    built = build_demo_bundles(CACHE / "bundles", data_dir=SHARED_DATA)
    assert not any(bundle.synthetic for bundle in built)
    return {bundle.slug: bundle.path for bundle in built}


def _team_phase(bundle: Path, user):  # type: ignore[no-untyped-def]
    challenge, _ = import_challenge(bundle)
    accept_terms(challenge, user)
    team = team_create(challenge=challenge, user=user, name="Alpha")
    return challenge.phases.get(slug="leaderboard"), team


def _scored(submission):  # type: ignore[no-untyped-def]
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "succeeded", (submission.error_class, submission.error_message)
    return submission


def test_readmission_logistic_regression_bundle_on_real_data(
    real_bundles, alice, submit, runtime_image
):
    bundle = real_bundles["readmission-30d"]
    phase, team = _team_phase(bundle, alice)
    model = readmission_bundle(bundle, CACHE / "models")
    submission = _scored(submit(phase, team, alice, model, kind="bundle"))
    table = load_labels(phase.evaluation_set)
    scores = from_bytes(submission.result.case_scores)
    assert len(scores) == len(table.ids) > 20_000
    metrics = submission.result.metrics["all"]
    assert metrics["auroc"] == pytest.approx(roc_auc_score(table.y, scores), abs=1e-12)
    assert metrics["auprc"] == pytest.approx(average_precision_score(table.y, scores), abs=1e-12)
    assert metrics["brier"] == pytest.approx(brier_score_loss(table.y, scores), abs=1e-12)
    assert 0.6 < metrics["auroc"] < 0.8  # a real but modest signal, as published for this task
    public = table.split == "public"
    assert submission.result.metrics["public"]["auroc"] == pytest.approx(
        roc_auc_score(table.y[public], scores[public]), abs=1e-12)
    assert set(submission.result.subgroups) == {"sex", "age_band", "race"}


def test_mammography_image_archive_on_real_films(real_bundles, alice, submit, runtime_image):
    bundle = real_bundles["mammography-screening"]
    phase, team = _team_phase(bundle, alice)
    archive = mammography_model(bundle, CACHE / "models", kind="image")
    submission = _scored(submit(phase, team, alice, archive, kind="image"))
    assert submission.image_id.startswith("sha256:")
    table = load_labels(phase.evaluation_set)
    scores = from_bytes(submission.result.case_scores)
    assert submission.result.metrics["all"]["auroc"] == pytest.approx(
        roc_auc_score(table.y, scores), abs=1e-12)
    assert list(submission.runs.values_list("lane", flat=True)) == ["sanity", "hidden"]
