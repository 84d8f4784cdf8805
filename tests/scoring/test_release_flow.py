"""Score release policies through the platform: the released scores are stored with the
result and are all that teams and the public see (API, pages, boards) while the phase runs;
organisers see exact scores, and everyone does once the phase has closed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from challenges.bundles import import_challenge
from challenges.models import Phase
from core.models import AuditEvent
from leaderboards.compute import recompute
from scoring.pipeline import evaluate
from submissions.services import submission_create
from submissions.uploads import stage_chunks
from tests.bundles import phase_spec, write_bundle
from tests.factories import TeamFactory
from tests.factories.submissions import a_period_later

pytestmark = pytest.mark.django_db


def release_phase(tmp_path: Path, release: object) -> Phase:
    evaluation = {"inputs": "hidden/inputs", "labels": "hidden/labels.csv",
                  "public_inputs": True}
    bundle = write_bundle(tmp_path / "b", phases=[phase_spec(
        submission_kinds=["predictions"], evaluation=evaluation, score_release=release,
        sanity=None)])
    challenge, _ = import_challenge(bundle)
    return challenge.phases.get()


def submit_scores(phase, team, user, scores) -> object:  # type: ignore[no-untyped-def]
    body = "id,score\n" + "".join(f"c{i:03d},{s:.6f}\n" for i, s in enumerate(scores))
    staged = stage_chunks([body.encode()], filename="p.csv", max_bytes=10**6)
    submission = submission_create(phase=phase, team=team, user=user, kind="predictions",
                                   staged=staged)
    evaluate(submission.pk)
    a_period_later()  # its team is told the outcome
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


def api(user=None):  # type: ignore[no-untyped-def]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ages_scores() -> list[float]:
    return [(30 + n % 50) / 100 + n / 10_000 for n in range(40)]


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):  # type: ignore[no-untyped-def]
    from unittest import mock

    with mock.patch("core.dispatch.evaluate_submission", autospec=True), \
            mock.patch("core.dispatch.send", autospec=True):
        yield


def test_rounded_scores_are_what_teams_and_the_public_see(tmp_path, alice, olga) -> None:
    phase = release_phase(tmp_path, {"policy": "rounded", "decimals": 2})
    phase.challenge.organisers.add(olga)
    team = TeamFactory(challenge=phase.challenge, captain=alice, name="Alpha")
    submission = submit_scores(phase, team, alice, ages_scores())
    exact = submission.result.metrics["public"]
    assert submission.result.released == {"public": {k: round(v, 2) for k, v in exact.items()}}
    assert AuditEvent.objects.filter(verb="score.released").get().data["policy"] == "rounded"

    mine = api(alice).get(f"/api/v1/submissions/{submission.uid}/").json()["metrics"]
    assert mine == {"public": submission.result.released["public"]}
    theirs = api(olga).get(f"/api/v1/submissions/{submission.uid}/").json()["metrics"]
    assert theirs["public"] == exact and "private" in theirs

    recompute(phase_pk=phase.pk)
    url = f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}/leaderboard/"
    public = api().get(url).json()["entries"][0]
    assert public["metrics"]["auroc"] == round(exact["auroc"], 2)
    assert all(v == round(v, 2) for pair in public["intervals"].values() for v in pair)
    assert api(olga).get(url).json()["entries"][0]["metrics"]["auroc"] == exact["auroc"]

    Phase.objects.filter(pk=phase.pk).update(
        opens_at=timezone.now() - timedelta(days=2), closes_at=timezone.now() - timedelta(1))
    after = api().get(url).json()["entries"][0]
    assert after["metrics"]["auroc"] == exact["auroc"]  # the final board is exact


def test_the_ladder_repeats_the_shown_score_until_a_real_improvement(tmp_path, alice) -> None:
    phase = release_phase(tmp_path, {"policy": "ladder", "eta": 0.05})
    team = TeamFactory(challenge=phase.challenge, captain=alice)
    scores = ages_scores()
    first = submit_scores(phase, team, alice, scores)
    nudged = list(scores)
    nudged[0] += 0.2  # a small change of one case: not more than eta
    second = submit_scores(phase, team, alice, nudged)

    assert second.result.released == first.result.released
    assert second.result.released_from == first.uid
    shown = api(alice).get(f"/api/v1/submissions/{second.uid}/").json()["metrics"]
    assert shown == first.result.released
