"""API test fixtures: token clients for the cast, a queued submission of Team A, runs and
results, a public file and leaderboard snapshots. No container runs: scoring is never
queued (the seam `core.dispatch.evaluate_submission` is patched)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import token_create
from challenges.models import PublicFile
from core.storage import sha256_file
from leaderboards.models import LeaderboardSnapshot
from scoring.models import Run
from submissions.models import Submission
from submissions.services import submission_create
from submissions.uploads import stage_chunks
from tests.factories import EvaluationSetFactory, ResultFactory, RunFactory
from tests.factories.submissions import told_finish

CSV = b"id,score\nc001,0.9\nc002,0.1\nc003,0.5\n"
ROLES = ("member", "other_team", "organiser", "anonymous")


@pytest.fixture(autouse=True)
def enqueue() -> Iterator[mock.MagicMock]:
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


@pytest.fixture(autouse=True)
def fresh_throttles() -> Iterator[None]:
    """Throttle counters live in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


def token_client(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        key = token_create(user=user, name="tests").key
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api() -> Callable[[Any], APIClient]:
    """api(user) -> a client sending that user's fresh token; api(None) -> anonymous."""
    return token_client


@pytest.fixture
def role_user(alice, carol, olga, team_a, team_c) -> Callable[[str], Any]:  # type: ignore[no-untyped-def]
    """member: Alice (captain of Team A); other_team: Carol (Team C); organiser: Olga (no
    team); anonymous: no credentials."""
    users = {"member": alice, "other_team": carol, "organiser": olga, "anonymous": None}
    return users.__getitem__


def submit(phase, team, user, content: bytes = CSV, kind: str = "predictions") -> Submission:  # type: ignore[no-untyped-def]
    staged = stage_chunks([content], filename="predictions.csv", max_bytes=10 * 1024**2)
    return submission_create(phase=phase, team=team, user=user, kind=kind, staged=staged)


@pytest.fixture
def submission_a(phase, team_a, alice) -> Submission:  # type: ignore[no-untyped-def]
    return submit(phase, team_a, alice)


def finish(
    submission: Submission, metrics: dict[str, dict[str, float]] | None = None
) -> Submission:
    """Record a scored outcome the way the pipeline stores it (status, runs, result)."""
    now = told_finish()  # a past outcome, told to its team
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.SUCCEEDED, attempts=1, started_at=now, finished_at=now)
    submission.refresh_from_db()
    for lane, log in ((Run.Lane.SANITY, "sanity: loaded 10 rows"),
                      (Run.Lane.HIDDEN, "hidden: secret-looking output")):
        RunFactory(submission=submission, lane=lane, exit_code=0, log_tail=log, duration_s=1.5,
                   finished_at=now)
    ResultFactory(submission=submission, metrics=metrics or {"all": {"auroc": 0.8, "auprc": 0.6}})
    return submission


@pytest.fixture
def evaluation_set(phase):  # type: ignore[no-untyped-def]
    # Published inputs: these phases score predictions files (never allowed on hidden inputs).
    phase.evaluation_set = EvaluationSetFactory(challenge=phase.challenge, inputs_public=True)
    phase.save(update_fields=["evaluation_set"])
    return phase.evaluation_set


@pytest.fixture
def scored_a(submission_a, evaluation_set) -> Submission:  # type: ignore[no-untyped-def]
    return finish(submission_a)


@pytest.fixture
def public_file(challenge, private_root) -> PublicFile:  # type: ignore[no-untyped-def]
    path = private_root / "public" / "train.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"id,age,label\nc001,70,1\n")
    return PublicFile.objects.create(challenge=challenge, name="train.csv",
                                     path="public/train.csv", sha256=sha256_file(path),
                                     size=path.stat().st_size)


def board_payload(team_a, team_c) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    def entry(team, rank: int, auroc: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        return {"key": f"uid-{team.pk}", "team": team.name, "team_id": team.pk, "submission": 1,
                "rank": rank, "is_baseline": False, "metrics": {"auroc": auroc},
                "intervals": {"auroc": [auroc - 0.05, auroc + 0.05]},
                "bayes_factor": None if rank == 1 else 4.2, "tied_with_leader": False,
                "entries": 1, "submitted_at": timezone.now().isoformat()}

    return {"primary": "auroc", "secondary": ["auprc"], "part": "public", "n_cases": 40,
            "n_resamples": 100, "entries": [entry(team_a, 1, 0.81), entry(team_c, 2, 0.7)]}


@pytest.fixture
def boards(phase, team_a, team_c) -> None:  # type: ignore[no-untyped-def]
    for board in ("public", "private"):
        LeaderboardSnapshot.objects.create(phase=phase, board=board,
                                           payload=board_payload(team_a, team_c))


def close(phase) -> None:  # type: ignore[no-untyped-def]
    phase.opens_at = timezone.now() - timedelta(days=10)
    phase.closes_at = timezone.now() - timedelta(minutes=1)
    phase.save(update_fields=["opens_at", "closes_at"])


def v1(path: str) -> str:
    return "/api/v1/" + path.lstrip("/")
