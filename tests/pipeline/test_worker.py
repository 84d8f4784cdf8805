"""The queue for real: Redis broker, a Celery worker, on_commit enqueueing, the sweeper."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail
from django.utils import timezone

from heldout.celery import app
from leaderboards.models import LeaderboardSnapshot
from scoring.services import sweep_stuck_runs
from submissions.models import Submission
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.pipeline.conftest import AGE_MODEL, containers_named, make_bundle_zip

pytestmark = [pytest.mark.docker]


@pytest.fixture
def worker(transactional_db):  # type: ignore[no-untyped-def]
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test sets REDIS_URL"
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with start_worker(app, pool="solo", perform_ping_check=False,
                      queues=["scoring", "default"], shutdown_timeout=30) as running:
        yield running


def _wait_final(pk: int, seconds: float = 120) -> Submission:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        submission = Submission.objects.get(pk=pk)
        if submission.is_final:
            return submission
        time.sleep(0.5)
    raise AssertionError(f"submission {pk} still {submission.status} after {seconds} s")


def test_an_upload_is_scored_by_a_worker_through_redis(
    worker, synthetic_phase, team, alice, tmp_path, runtime_image, settings
):
    settings.HELDOUT_RELEASE_SECONDS = 3  # the team is told (e-mailed) when a period ends
    upload = make_bundle_zip(tmp_path / "model.zip", AGE_MODEL)
    submission = submission_create(
        phase=synthetic_phase, team=team, user=alice, kind="bundle",
        staged=stage_existing(upload, filename="model.zip"))
    done = _wait_final(submission.pk)
    assert done.status == "succeeded", done.error_message
    deadline = time.monotonic() + 60
    while not LeaderboardSnapshot.objects.filter(phase=synthetic_phase).exists():
        assert time.monotonic() < deadline, "the leaderboard was not refreshed"
        time.sleep(0.5)
    board = LeaderboardSnapshot.objects.get(phase=synthetic_phase, board="public").payload
    assert [entry["team"] for entry in board["entries"]] == ["Alpha"]
    deadline = time.monotonic() + 30
    while not mail.outbox:
        assert time.monotonic() < deadline, "the team was not notified"
        time.sleep(0.2)
    assert timezone.now() >= done.told_at() > done.finished_at  # not before
    assert "succeeded" in mail.outbox[0].subject
    assert set(mail.outbox[0].to) == {"alice@example.org", "bob@example.org"}


@pytest.mark.django_db
def test_the_sweeper_requeues_a_vanished_run_then_gives_up(
    synthetic_phase, team, alice, submit, enqueue, runtime_image
):
    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    long_ago = timezone.now() - timedelta(hours=3)
    Submission.objects.filter(pk=submission.pk).update(
        status="running", started_at=long_ago, attempts=1)
    assert sweep_stuck_runs() == [submission.pk]
    enqueue.assert_called_once_with(submission.pk)
    assert Submission.objects.get(pk=submission.pk).status == "queued"
    Submission.objects.filter(pk=submission.pk).update(
        status="running", started_at=long_ago, attempts=settings.HELDOUT_MAX_ATTEMPTS)
    assert sweep_stuck_runs() == []
    failed = Submission.objects.get(pk=submission.pk)
    assert (failed.status, failed.error_class) == ("failed", "internal_error")


@pytest.mark.django_db
def test_the_sweeper_leaves_fresh_runs_alone(synthetic_phase, team, alice, submit, enqueue):
    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    Submission.objects.filter(pk=submission.pk).update(
        status="running", started_at=timezone.now(), attempts=1)
    assert sweep_stuck_runs() == []
    enqueue.assert_not_called()
    assert Submission.objects.get(pk=submission.pk).status == "running"


@pytest.mark.django_db
def test_the_sweeper_removes_orphaned_containers(runtime_image):
    name = f"{settings.HELDOUT_CONTAINER_PREFIX}999999-a1-hidden"
    subprocess.run(["docker", "create", "--name", name, "--label", f"heldout.run={name}",
                    runtime_image, "true"],
                   check=True, capture_output=True)
    try:
        sweep_stuck_runs()
        assert containers_named(name) == []
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.django_db
def test_the_sweeper_keeps_containers_of_live_runs(
    synthetic_phase, team, alice, submit, runtime_image
):
    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    Submission.objects.filter(pk=submission.pk).update(
        status="running", started_at=timezone.now(), attempts=1)
    name = f"{settings.HELDOUT_CONTAINER_PREFIX}{submission.pk}-a1-hidden"
    subprocess.run(["docker", "create", "--name", name, "--label", f"heldout.run={name}",
                    runtime_image, "true"], check=True, capture_output=True)
    try:
        sweep_stuck_runs()
        assert containers_named(name) == [name]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
