"""Leaderboards on real data, without containers.

The evaluation set is the readmission bundle built from the real Diabetes 130-US hospitals
file (3,000 held-out encounters, split public/private by patient, subgroup columns sex,
age_band and race). Entries are scikit-learn logistic regressions fitted on the bundle's
public/train.csv, predicting the hidden cases; their scores are stored as `Result` rows with
the platform's own scoring code, exactly what the pipeline would store.

One extra subgroup column, `site`, is added to the hidden labels for the small-cell tests
(it is synthetic and says so in its values): among the public cases, `test-site-19` holds 19
cases (10 of them positive), `test-site-9pos` 40 cases with 9 positives, and `test-site-20`
exactly 20 cases with exactly 10 positives (the smallest cell that may be shown).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from challenges.bundles import import_challenge
from challenges.models import Phase, Team
from demo.bundles import build_readmission_bundle
from heldout_kernel.scores import score_predictions
from scoring.labels import LabelTable, load_labels
from submissions.models import Submission
from tests.conftest import SHARED_DATA
from tests.factories import (
    ResultFactory,
    SubmissionFactory,
    TeamFactory,
    UserFactory,
    add_member,
)
from tests.factories.submissions import told_finish

N_TEST = 3000
B = 200

MODELS: dict[str, tuple[str, ...]] = {
    "five": ("time_in_hospital", "num_lab_procedures", "num_medications",
             "number_inpatient", "number_emergency"),
    "visits": ("number_inpatient", "number_emergency", "number_outpatient"),
    "inpatient": ("number_inpatient",),
    "stay": ("time_in_hospital", "num_medications"),
    "labs": ("num_lab_procedures",),
    "diagnoses": ("number_diagnoses",),
}  # fmt: skip

SITE_CELLS = {"test-site-19": (10, 9), "test-site-9pos": (9, 31), "test-site-20": (10, 10)}


def _add_site_column(labels_csv: Path) -> None:
    frame = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    frame["site"] = "main"
    public = frame.index[frame["split"] == "public"]
    positives = [i for i in public if frame.at[i, "label"] == "1"]
    negatives = [i for i in public if frame.at[i, "label"] == "0"]
    for name, (n_pos, n_neg) in SITE_CELLS.items():
        chosen = positives[:n_pos] + negatives[:n_neg]
        positives, negatives = positives[n_pos:], negatives[n_neg:]
        frame.loc[chosen, "site"] = name
    frame.to_csv(labels_csv, index=False, lineterminator="\n")


@pytest.fixture(scope="session")
def readmission_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"The real data sets are required at {SHARED_DATA}")
    built = build_readmission_bundle(
        tmp_path_factory.mktemp("bundle") / "readmission", data_dir=SHARED_DATA, n_test=N_TEST
    )
    assert not built.synthetic
    root = tmp_path_factory.mktemp("bundle-site") / "readmission"
    shutil.copytree(built.path, root)
    _add_site_column(root / "hidden" / "labels.csv")
    return root


@pytest.fixture(scope="session")
def model_scores(readmission_bundle: Path) -> dict[str, np.ndarray]:
    """Each model's probability for every hidden case, in sorted-id order (as stored)."""
    train = pd.read_csv(readmission_bundle / "public" / "train.csv", low_memory=False)
    hidden = pd.read_csv(readmission_bundle / "hidden" / "inputs" / "features.csv",
                         low_memory=False, dtype={"id": str})
    with (readmission_bundle / "hidden" / "labels.csv").open() as handle:
        ids = sorted(row["id"] for row in csv.DictReader(handle))
    hidden = hidden.set_index("id").loc[ids]
    out = {}
    for name, features in MODELS.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(train[list(features)].to_numpy(float), train["label"].to_numpy())
        scores = model.predict_proba(hidden[list(features)].to_numpy(float))[:, 1]
        out[name] = np.round(scores, 4)  # as a predictions CSV would carry them
    return out


@pytest.fixture
def phase(db, readmission_bundle: Path, olga) -> Phase:  # type: ignore[no-untyped-def]
    challenge, _ = import_challenge(readmission_bundle)
    challenge.organisers.add(olga)
    item = challenge.phases.get()
    # Exact scores: these tests are about boards and who sees them; the demo bundle's score
    # release policy is tested in tests/scoring/test_release_flow.py.
    Phase.objects.filter(pk=item.pk).update(bootstrap_resamples=B, score_release="exact")
    item.refresh_from_db()
    return item


@pytest.fixture
def table(phase: Phase) -> LabelTable:
    return load_labels(phase.evaluation_set)


@pytest.fixture
def team_a(phase, alice, bob) -> Team:  # type: ignore[no-untyped-def]
    team = TeamFactory(challenge=phase.challenge, name="Team A", captain=alice)
    add_member(team, bob)
    return team


@pytest.fixture
def team_c(phase, carol) -> Team:  # type: ignore[no-untyped-def]
    return TeamFactory(challenge=phase.challenge, name="Team C", captain=carol)


@pytest.fixture
def organisers_team(phase, olga) -> Team:  # type: ignore[no-untyped-def]
    return TeamFactory(challenge=phase.challenge, name="Organisers", captain=olga,
                       is_organiser_team=True)


AddResult = Callable[..., Submission]


@pytest.fixture
def add_result(phase: Phase, table: LabelTable) -> AddResult:
    """Store a succeeded submission and its result, scored by the platform's own code."""

    def add(team: Team, scores: np.ndarray, *, labels: np.ndarray | None = None,
            minutes_ago: float = 0, baseline: bool = False, selected: bool = False,
            user: Any = None) -> Submission:
        submission = SubmissionFactory(
            phase=phase, team=team, created_by=user or team.captain,
            status=Submission.Status.SUCCEEDED, is_baseline=baseline, selected=selected,
            finished_at=told_finish(),
            created_at=timezone.now() - timedelta(minutes=minutes_ago),
        )
        names = [phase.primary_metric, *phase.secondary_metrics]
        scored = score_predictions(table, scores, labels, metrics=names,
                                   primary=phase.primary_metric)
        ResultFactory(submission=submission, metrics=scored.metrics, subgroups=scored.subgroups,
                      scores=scores, labels=labels)
        return submission

    return add


@dataclass(frozen=True)
class Cast:
    """Team A: two submissions (the five-feature model is its best); Team C: the visits
    model; a one-feature organisers' baseline."""

    a_best: Submission
    a_other: Submission
    c_best: Submission
    baseline: Submission


@pytest.fixture
def cast(add_result, model_scores, team_a, team_c, organisers_team) -> Cast:  # type: ignore[no-untyped-def]
    a_other = add_result(team_a, model_scores["labs"], minutes_ago=90)
    a_best = add_result(team_a, model_scores["five"], minutes_ago=60)
    c_best = add_result(team_c, model_scores["visits"], minutes_ago=30)
    baseline = add_result(organisers_team, model_scores["diagnoses"], minutes_ago=120,
                          baseline=True)
    return Cast(a_best, a_other, c_best, baseline)


def close_phase(phase: Phase) -> None:
    Phase.objects.filter(pk=phase.pk).update(
        opens_at=timezone.now() - timedelta(days=30),
        closes_at=timezone.now() - timedelta(minutes=1),
    )
    phase.refresh_from_db()


def many_teams(phase: Phase, add_result: AddResult, scores: dict[str, np.ndarray],
               count: int) -> None:
    """`count` extra teams, each with one submission of a differently noised model."""
    rng = np.random.default_rng(count)
    base = scores["five"]
    for i in range(count):
        user = UserFactory(username=f"member-{count}-{i}")
        team = TeamFactory(challenge=phase.challenge, name=f"Crowd {count}-{i:03d}", captain=user)
        noisy = np.clip(base + rng.normal(0, 0.05, base.size), 0, 1).round(4)
        add_result(team, noisy, minutes_ago=i)
