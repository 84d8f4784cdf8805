"""No submission lost, doubled or starved, with real processes on the real engine:

- a worker stopped mid-run (SIGSTOP) whose attempt the sweeper gives to another worker, then
  resumed: its late writes are no-ops, the submission ends with one success, one result,
  one terminal event and a quota that counts it once;
- a worker killed with SIGKILL mid-run: within its lease (plus a sweep) the evaluation is
  queued again, its container is killed, and another worker scores it once; nothing is left
  behind (containers, volumes, work folders).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.models import AuditEvent
from heldout.celery import app
from scoring.models import Result
from scoring.pipeline import evaluate, workdir_prefix
from scoring.services import sweep_stuck_runs
from submissions import selectors
from submissions.models import Submission
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.conftest import REPO
from tests.pipeline.conftest import containers_named, make_bundle_zip, volumes_named

pytestmark = [pytest.mark.docker]

# Sleeps on the hidden lane only, long enough to be caught in the middle of its run.
SLOW_MODEL = """
import csv, os, time
rows = list(csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"))))
if rows[0]["id"].startswith("c"):
    time.sleep(8)
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(f"{row['id']},{int(row['age']) / 100:.6f}\\n")
"""


def child_env(**extra: str) -> dict[str, str]:
    """The test's database, broker and private root, for another process."""
    db = connection.settings_dict
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "heldout.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.CELERY_BROKER_URL, "HELDOUT_PRIVATE_ROOT": str(settings.PRIVATE_ROOT),
        **extra,
    }


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def hidden_run_started(pk: int, attempt: int) -> bool:
    return bool(containers_named(f"{settings.HELDOUT_CONTAINER_PREFIX}{pk}-a{attempt}-hidden"))


def slow_submission(phase, team, user, tmp_path: Path) -> Submission:  # type: ignore[no-untyped-def]
    upload = make_bundle_zip(tmp_path / "slow.zip", SLOW_MODEL)
    return submission_create(phase=phase, team=team, user=user, kind="bundle",
                             staged=stage_existing(upload, filename="slow.zip"))


def terminal_events(pk: int) -> list[str]:
    return list(AuditEvent.objects.filter(
        target=f"submission:{pk}", verb__in=["submission.succeeded", "submission.failed"],
    ).values_list("verb", flat=True))


def test_a_stopped_attempt_that_wakes_up_changes_nothing(
    transactional_db, synthetic_phase, team, alice, tmp_path, enqueue, runtime_image
) -> None:
    submission = slow_submission(synthetic_phase, team, alice, tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup(); "
         f"from scoring.pipeline import evaluate; evaluate({submission.pk})"],
        cwd=REPO, env=child_env())
    try:
        wait_for(lambda: hidden_run_started(submission.pk, 1), 60, "attempt 1's hidden run")
        first.send_signal(signal.SIGSTOP)
        Submission.objects.filter(pk=submission.pk).update(lease_until="2000-01-01T00:00Z")
        assert sweep_stuck_runs() == [submission.pk]  # its container is killed too
        assert not hidden_run_started(submission.pk, 1)

        second = evaluate(submission.pk)
        assert second is not None and second.status == "succeeded", second.error_message
    finally:
        first.send_signal(signal.SIGCONT)
        first.wait(timeout=120)

    done = Submission.objects.get(pk=submission.pk)
    assert (done.status, done.attempts, done.error_class) == ("succeeded", 2, "")
    assert Result.objects.filter(submission=done).count() == 1
    assert terminal_events(done.pk) == ["submission.succeeded"]
    assert selectors.quota_status(phase=synthetic_phase, team=team).used_today == 1
    assert containers_named(f"{settings.HELDOUT_CONTAINER_PREFIX}{done.pk}-") == []


@pytest.fixture
def broker() -> str:
    url = settings.CELERY_BROKER_URL
    assert url.startswith("redis://"), "make test sets REDIS_URL"
    redis.Redis.from_url(url).flushdb()
    return url


def test_a_killed_worker_is_recovered_within_its_lease_with_nothing_left(
    transactional_db, broker, synthetic_phase, team, alice, tmp_path, runtime_image
) -> None:
    lease, heartbeat = 10, 2
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "heldout", "worker", "-Q", "scoring",
         "--pool", "solo", "--concurrency", "1", "-l", "WARNING"],
        cwd=REPO, env=child_env(HELDOUT_LEASE_SECONDS=str(lease),
                                HELDOUT_HEARTBEAT_SECONDS=str(heartbeat)),
        start_new_session=True)
    try:
        submission = slow_submission(synthetic_phase, team, alice, tmp_path)
        wait_for(lambda: hidden_run_started(submission.pk, 1), 90, "attempt 1's hidden run")
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert glob_workdirs(submission.pk, 1)  # what the killed worker left behind
    lease_until = Submission.objects.get(pk=submission.pk).lease_until
    assert sweep_stuck_runs() == []  # within its lease the attempt is left alone

    def swept() -> bool:
        return sweep_stuck_runs() == [submission.pk]

    wait_for(swept, lease + 60, "the sweeper taking the attempt over")
    assert timezone.now() > lease_until  # taken over once, and only once, the lease ran out
    recovered_in = time.monotonic() - killed_at
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["scoring"],
                      shutdown_timeout=30):
        wait_for(lambda: Submission.objects.get(pk=submission.pk).is_final, 120,
                 "attempt 2 finishing")

    done = Submission.objects.get(pk=submission.pk)
    print(f"recovered {recovered_in:.1f} s after the kill (lease {lease} s)")  # a figure only
    assert (done.status, done.attempts) == ("succeeded", 2), done.error_message
    assert Result.objects.filter(submission=done).count() == 1
    assert terminal_events(done.pk) == ["submission.succeeded"]
    prefix = f"{settings.HELDOUT_CONTAINER_PREFIX}{done.pk}-"
    assert containers_named(prefix) == [] and volumes_named(prefix) == []
    assert glob_workdirs(done.pk, 1) == []


def glob_workdirs(pk: int, attempt: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{workdir_prefix(pk, attempt)}*"))
