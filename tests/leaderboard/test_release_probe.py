"""The ladder's entry-choice oracle: a team submits a model, then the same model with one hidden
case's score lifted to 1.0 (a probe that moves AUROC by less than the ladder's step). The board
used to pick the team's entry by exact score, so the probe became the entry exactly when the
case was positive: one label per submission, under the policies meant to reveal none. Now
every number and entry a team can read while the phase runs passes through the policy.

The test runs the probe twice, on a positive and on a negative public case of the real
readmission labels, through the real scoring path (predictions files on public inputs), and
compares everything the team can open: board page, live board, board API, every entry page,
both submissions' pages and API, the phase page, the quota. Nothing may differ."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import numpy as np
import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from challenges.models import EvaluationSet, Phase
from leaderboards.compute import recompute
from scoring.labels import load_labels
from scoring.pipeline import evaluate
from submissions.models import Submission
from submissions.services import submission_create
from submissions.uploads import stage_chunks
from tests.factories import accept_terms
from tests.factories.submissions import a_period_later

pytestmark = pytest.mark.django_db
STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")
CSRF = re.compile(r'(csrfmiddlewaretoken" value=")[^"]+')
HEX = re.compile(r"\b[0-9a-f]{12,64}")


class _Rollback(Exception):
    pass


@pytest.fixture
def probing_phase(phase: Phase) -> Phase:
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["predictions"],
                                             score_release="ladder", release_eta=0.01)
    EvaluationSet.objects.filter(pk=phase.evaluation_set_id).update(inputs_public=True)
    phase.refresh_from_db()
    return phase


def _predictions(ids: list[str], scores: np.ndarray) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "score"])
    writer.writerows((case, f"{score:.4f}") for case, score in zip(ids, scores, strict=True))
    return out.getvalue().encode()


def _submit(phase: Phase, team: Any, user: Any, body: bytes) -> Submission:
    staged = stage_chunks([body], filename="predictions.csv", max_bytes=10**8)
    submission = submission_create(phase=phase, team=team, user=user, kind="predictions",
                                   staged=staged)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


def _cases(phase: Phase) -> tuple[list[str], int, int]:
    """Sorted ids, and one positive and one negative case of the public part."""
    table = load_labels(phase.evaluation_set)
    public = table.split == "public"
    positive = int(np.flatnonzero(public & (table.y == 1))[0])
    negative = int(np.flatnonzero(public & (table.y == 0))[0])
    return list(table.ids), positive, negative


def _everything(phase: Phase, alice: Any, named: dict[str, str]) -> dict[str, str]:
    """Every page and API answer Team A may read, with what differs between submissions
    (ids, hashes, upload times, CSRF tokens) written out."""
    client, api = Client(), APIClient()
    client.force_login(alice)
    api.force_authenticate(alice)
    slug, ph = phase.challenge.slug, phase.slug
    base = f"/api/v1/challenges/{slug}/phases/{ph}"
    seen = {
        "board": client.get(reverse("leaderboards:board", args=[slug, ph, "public"])),
        "live": client.get(reverse("leaderboards:board_live", args=[slug, ph, "public"])),
        "board_api": api.get(f"{base}/leaderboard/"),
        "phase_page": client.get(phase.get_absolute_url()),
        "quota": api.get(f"{base}/quota/"),
    }
    for entry in api.get(f"{base}/leaderboard/").json()["entries"]:
        team = entry["team"]
        key = next(k for k, v in named.items() if v.startswith(team.replace(" ", "_")))
        seen[f"entry {team}"] = client.get(
            reverse("leaderboards:entry", args=[slug, ph, "public", key]))
    for uid, name in named.items():
        if name.startswith("Team_A"):
            seen[f"page {name}"] = client.get(f"/submissions/{uid}/")
            seen[f"api {name}"] = api.get(f"/api/v1/submissions/{uid}/")
    return {what: _normalised(answer, named) for what, answer in seen.items()}


def _normalised(answer: Any, named: dict[str, str]) -> str:
    # (an ETag is a keyed name of the board's computation: all it tells is that the board
    # changed, which the content says too)
    text = f"{answer.status_code}\n{answer.content.decode()}"
    for uid, name in named.items():
        text = text.replace(uid, name)
    return HEX.sub("SHA", STAMP.sub("TIME", CSRF.sub(r"\1", text)))


def _world(phase, team_a, team_c, alice, carol, lifted: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    ids, _, _ = _cases(phase)
    rng = np.random.default_rng(7)
    scores = np.clip(rng.normal(0.4, 0.15, len(ids)), 0.01, 0.99)
    model = _submit(phase, team_a, alice, _predictions(ids, scores))
    other = _submit(phase, team_c, carol, _predictions(ids, np.clip(scores + rng.normal(
        0, 0.1, len(ids)), 0.01, 0.99)))
    probe_scores = scores.copy()
    probe_scores[lifted] = 1.0
    probe = _submit(phase, team_a, alice, _predictions(ids, probe_scores))
    recompute(phase_pk=phase.pk)
    a_period_later()
    named = {str(model.uid): "Team_A model", str(probe.uid): "Team_A probe",
             str(other.uid): "Team_C model"}
    return _everything(phase, alice, named)


def _in_rollback(run):  # type: ignore[no-untyped-def]
    seen: dict[str, str] = {}
    try:
        with transaction.atomic():
            seen.update(run())
            raise _Rollback
    except _Rollback:
        pass
    return seen


@pytest.mark.parametrize("policy", ["ladder", "boot-ladder-boot"])
def test_a_probe_on_one_hidden_case_changes_nothing_a_team_can_read(
    policy, probing_phase, team_a, team_c, alice, carol
) -> None:
    Phase.objects.filter(pk=probing_phase.pk).update(score_release=policy)
    probing_phase.refresh_from_db()
    for user in (alice, carol):
        accept_terms(probing_phase.challenge, user)
    _, positive, negative = _cases(probing_phase)

    worlds = {case: _in_rollback(lambda case=case: _world(
        probing_phase, team_a, team_c, alice, carol, case)) for case in (positive, negative)}

    when_positive, when_negative = worlds[positive], worlds[negative]
    assert set(when_positive) == set(when_negative)
    for what in when_positive:
        assert when_positive[what] == when_negative[what], f"{what} tells the probed label"
    # and the probe itself released nothing: it reads as "no improvement" on the model
    probe_api = when_positive["api Team_A probe"]
    assert "No improvement on your best" in probe_api
    assert "Team_A model" in when_positive["board_api"] or "Team_A model" in when_positive[
        "board"]


def test_rounded_shows_every_number_to_its_decimals(probing_phase, team_a, team_c, alice,
                                                    carol) -> None:
    Phase.objects.filter(pk=probing_phase.pk).update(score_release="rounded",
                                                     release_decimals=2)
    probing_phase.refresh_from_db()
    for user in (alice, carol):
        accept_terms(probing_phase.challenge, user)
    _, positive, _ = _cases(probing_phase)
    seen = _world(probing_phase, team_a, team_c, alice, carol, positive)

    board = APIClient().get(f"/api/v1/challenges/{probing_phase.challenge.slug}/phases/"
                            f"{probing_phase.slug}/leaderboard/").json()
    numbers = [v for e in board["entries"] for v in
               [*e["metrics"].values(), *[x for pair in e["intervals"].values() for x in pair]]
               if isinstance(v, float)]
    assert numbers and all(v == round(v, 2) for v in numbers)
    decimals = re.findall(r"\b0\.(\d+)\b", seen["board"] + seen["entry Team A"])
    assert decimals and all(len(d) <= 2 for d in decimals), sorted(set(decimals))[-5:]
