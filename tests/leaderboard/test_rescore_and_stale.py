"""Re-scores are atomic for readers, and results scored against replaced labels or changed
metrics are marked stale until they are re-scored.

The walk-through found the public board showing one unselected entry and no baseline for
several seconds after a re-score (re-queued submissions dropped off the board until their new
result arrived), and nothing saying that results were stale after the hidden labels had been
replaced."""

from __future__ import annotations

import pytest

from challenges.models import EvaluationSet, Phase
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from scoring.models import Result
from scoring.services import submission_rescore
from scoring.vectors import scored_key
from submissions.models import Submission

pytestmark = pytest.mark.django_db


def board(phase: Phase) -> dict:  # type: ignore[type-arg]
    return LeaderboardSnapshot.objects.get(phase=phase, board="public").payload


def teams(payload: dict) -> list[str]:  # type: ignore[type-arg]
    return sorted(entry["team"] for entry in payload["entries"])


def test_a_rescore_keeps_every_entry_on_the_board_until_its_new_result(
    phase, cast, olga, django_capture_on_commit_callbacks
) -> None:
    recompute(phase_pk=phase.pk)
    before = board(phase)
    with django_capture_on_commit_callbacks(execute=False):
        for submission in (cast.a_best, cast.c_best, cast.baseline):
            assert submission_rescore(submission=submission, actor=olga)
    assert set(Submission.objects.filter(pk__in=[cast.a_best.pk, cast.baseline.pk])
               .values_list("status", flat=True)) == {"queued"}

    recompute(phase_pk=phase.pk)  # while the re-scores wait in the queue

    during = board(phase)
    assert teams(during) == teams(before)  # baseline included
    assert [e["key"] for e in during["entries"]] == [e["key"] for e in before["entries"]]


def test_a_failed_rescore_takes_its_entry_off(phase, cast, olga,
                                               django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        submission_rescore(submission=cast.c_best, actor=olga)
    Submission.objects.filter(pk=cast.c_best.pk).update(status="failed",
                                                       error_class="timeout")
    recompute(phase_pk=phase.pk)
    assert "Team C" not in teams(board(phase))


def test_results_scored_against_replaced_labels_are_stale(phase, cast, client, olga) -> None:
    Result.objects.update(scored_with=scored_key(phase))
    recompute(phase_pk=phase.pk)
    assert not any(e["stale"] for e in board(phase)["entries"])

    evaluation = phase.evaluation_set
    checksums = {**evaluation.checksums, "labels.csv": "0" * 64}  # new labels imported
    EvaluationSet.objects.filter(pk=evaluation.pk).update(checksums=checksums)
    phase.refresh_from_db()
    recompute(phase_pk=phase.pk)

    assert all(e["stale"] for e in board(phase)["entries"])
    assert Result.objects.get(submission=cast.a_best).is_stale
    page = client.get(f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/leaderboard/"
                      "public/").content.decode()
    assert page.count('class="badge stale"') == len(board(phase)["entries"])


def test_changed_metrics_make_results_stale_and_a_rescore_clears_it(phase, cast) -> None:
    Result.objects.update(scored_with=scored_key(phase))
    Phase.objects.filter(pk=phase.pk).update(secondary_metrics=["auprc"])
    phase.refresh_from_db()

    stale = Result.objects.get(submission=cast.a_best)
    assert stale.is_stale
    Result.objects.filter(pk=stale.pk).update(scored_with=scored_key(phase))  # re-scored
    assert not Result.objects.get(pk=stale.pk).is_stale
