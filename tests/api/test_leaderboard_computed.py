"""The leaderboard endpoint over boards computed by leaderboards.compute from real stored
results of a (synthetic, labelled as such) evaluation set with a public/private split."""

from __future__ import annotations

import numpy as np
import pytest

from challenges.bundles import import_challenge
from challenges.services import team_create
from heldout_kernel.scores import score_predictions
from leaderboards.compute import recompute
from scoring.labels import load_labels
from submissions.models import Submission
from tests.api.conftest import close, v1
from tests.bundles import write_bundle
from tests.factories import ResultFactory, accept_terms


@pytest.fixture
def split_phase(db, tmp_path, olga):  # type: ignore[no-untyped-def]
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    challenge.organisers.add(olga)
    return challenge.phases.get()


def scored(phase, team, user, scores: np.ndarray) -> Submission:  # type: ignore[no-untyped-def]
    table = load_labels(phase.evaluation_set)
    result = score_predictions(table, scores, None, metrics=[phase.primary_metric],
                               primary=phase.primary_metric)
    return ResultFactory(
        submission__phase=phase, submission__team=team, submission__created_by=user,
        submission__kind="predictions",
        metrics=result.metrics, subgroups=result.subgroups, scores=scores,
    ).submission


@pytest.fixture
def computed(split_phase, alice, carol):  # type: ignore[no-untyped-def]
    challenge = split_phase.challenge
    table = load_labels(split_phase.evaluation_set)
    truth = table.y.astype(float)
    noise = np.random.default_rng(7).random(len(truth))
    submissions = {}
    for user, name, weight in ((alice, "Alpha", 0.8), (carol, "Gamma", 0.3)):
        accept_terms(challenge, user)
        team = team_create(challenge=challenge, user=user, name=name)
        submissions[name] = scored(split_phase, team, user, weight * truth + (1 - weight) * noise)
    recompute(phase_pk=split_phase.pk)
    return submissions


def board_of(api, user, phase, board: str = "public"):  # type: ignore[no-untyped-def]
    url = v1(f"challenges/{phase.challenge.slug}/phases/{phase.slug}/leaderboard/")
    response = api(user).get(url, {"board": board})
    assert response.status_code == 200, response.content
    return response.json()


def test_it_serves_the_computed_public_board(api, carol, split_phase, computed):  # type: ignore[no-untyped-def]
    body = board_of(api, None, split_phase)
    assert (body["visible"], body["primary"], body["n_cases"]) == (True, "auroc", 20)
    assert [(e["rank"], e["team"]) for e in body["entries"]][0] == (1, "Alpha")
    assert {e["team"] for e in body["entries"]} == {"Alpha", "Gamma"}
    for entry in body["entries"]:
        low, high = entry["intervals"]["auroc"]
        assert low <= entry["metrics"]["auroc"] <= high


def test_it_opens_the_computed_private_board_at_close(api, alice, olga, split_phase, computed):  # type: ignore[no-untyped-def]
    assert board_of(api, alice, split_phase, "private")["entries"] == []
    assert len(board_of(api, olga, split_phase, "private")["entries"]) == 2
    close(split_phase)
    assert len(board_of(api, alice, split_phase, "private")["entries"]) == 2


def test_it_shows_the_team_only_its_public_scores_before_close(api, alice, split_phase, computed):  # type: ignore[no-untyped-def]
    mine = computed["Alpha"]
    metrics = api(alice).get(v1(f"submissions/{mine.uid}/")).json()["metrics"]
    assert set(metrics) == {"public"}
    assert metrics["public"]["auroc"] == mine.result.metrics["public"]["auroc"]
    close(split_phase)
    metrics = api(alice).get(v1(f"submissions/{mine.uid}/")).json()["metrics"]
    assert set(metrics) == {"all", "public", "private"}
