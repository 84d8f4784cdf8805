"""Writes for scoring: re-scoring, the sweeper, notifications."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.services import audit_record
from scoring import outcome, station_jobs
from scoring.models import StationJob
from scoring.pipeline import container_name, get_backend, workdir_prefix
from submissions.models import Submission
from submissions.services import evaluation_dispatch, evaluations_redispatch

logger = logging.getLogger(__name__)
Status = Submission.Status

# Without a lease (a row written before leases existed), a running submission is given its
# phase's wall-clock budget and this much more before the sweeper decides it is gone.
SWEEP_GRACE = timedelta(minutes=5)
# Leftovers of killed processes (work folders, multipart temporary files) older than this
# and belonging to no live attempt are removed by the sweeper.
LEFTOVER_AGE = timedelta(hours=1)


@transaction.atomic
def submission_rescore(*, submission: Submission, actor: Any) -> bool:
    """Queue a finished submission again (organisers). Returns False if it is still active."""
    updated = Submission.update_status(
        submission.pk, to=Status.QUEUED, from_=Submission.FINAL, error_class="",
        error_message="", finished_at=None, started_at=None, dispatched_at=None,
    )
    if updated:
        audit_record(verb="submission.rescore", actor=actor,
                     challenge=submission.phase.challenge, target=f"submission:{submission.pk}")
        transaction.on_commit(lambda: evaluation_dispatch(submission_pk=submission.pk))
    return updated


def _stale(submission: Submission, now: timezone.datetime) -> bool:
    if submission.lease_until is not None:
        return submission.lease_until < now
    lanes = 2 if submission.phase.sanity_set_id else 1
    budget = timedelta(seconds=submission.phase.limit_seconds * lanes) + SWEEP_GRACE
    return submission.started_at is None or submission.started_at + budget < now


def sweep_stuck_runs(*, now: timezone.datetime | None = None) -> list[int]:
    """Take over attempts whose lease ran out (their worker died or stopped): queue them
    again, or give up with internal_error after HELDOUT_MAX_ATTEMPTS. Then kill containers
    that belong to no current attempt and remove leftovers of killed processes. Returns the
    primary keys queued again."""
    now = now or timezone.now()
    requeued = []
    station_jobs.sweep_jobs(now=now)
    station_jobs.complete_finished()
    evaluations_redispatch(now=now)
    active = Submission.objects.filter(status__in=(Status.RUNNING, Status.SCORING)).exclude(
        # waiting for data stations: their jobs hold leases of their own
        pk__in=StationJob.objects.filter(status__in=StationJob.OPEN,
                                         attempt=F("submission__attempts")).values(
            "submission_id"))
    for submission in active.select_related("phase__challenge"):
        if _stale(submission, now) and _requeue_or_fail(submission):
            requeued.append(submission.pk)
    _remove_orphans()
    remove_leftovers(now=now)
    return requeued


def _requeue_or_fail(submission: Submission) -> bool:
    attempt = submission.attempts
    if attempt >= settings.HELDOUT_MAX_ATTEMPTS:
        logger.error("submission %s failed after %s attempts", submission.pk, attempt)
        outcome.finish(
            submission=submission, attempt=attempt, status=Status.FAILED,
            error_class=Submission.ErrorClass.INTERNAL_ERROR,
            message="The evaluation was interrupted too many times; the organisers have "
            "been told. This does not count against your quota.")
        return False
    requeued = Submission.update_status(
        submission.pk, to=Status.QUEUED, from_=[submission.status], attempt=attempt,
        started_at=None, lease_until=None, dispatched_at=None)
    if requeued:
        audit_record(verb="submission.requeued", challenge=submission.phase.challenge,
                     target=f"submission:{submission.pk}", data={"attempts": attempt})
        evaluation_dispatch(submission_pk=submission.pk)
    return requeued


def live_attempts() -> list[tuple[int, int]]:
    """(submission, attempt) of every evaluation that may still be running."""
    return list(Submission.objects.filter(status__in=(Status.RUNNING, Status.SCORING))
                .values_list("pk", "attempts"))


def remove_leftovers(*, now: timezone.datetime | None = None) -> list[Path]:
    """Remove work folders of attempts that are no longer running, and multipart temporary
    files and staging files nothing has touched for LEFTOVER_AGE (a killed process's)."""
    cutoff = ((now or timezone.now()) - LEFTOVER_AGE).timestamp()
    live = {workdir_prefix(pk, attempt) for pk, attempt in live_attempts()}
    removed = []
    prefix = settings.HELDOUT_CONTAINER_PREFIX
    workdir = re.compile(re.escape(prefix) + r"\d+-a\d+-")  # pipeline.workdir_prefix
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*-a*-*"):
        dead = workdir.match(folder.name) and not any(map(folder.name.startswith, live))
        if dead and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    temp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    for path in temp.glob("*") if temp.is_dir() else []:
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _remove_orphans() -> None:
    running = Submission.objects.filter(status__in=(Status.RUNNING, Status.SCORING))
    keep = frozenset(
        container_name(s, lane) for s in running for lane in ("sanity", "hidden")
    )
    try:
        removed = get_backend().remove_orphans(
            prefix=settings.HELDOUT_CONTAINER_PREFIX, keep=keep
        )
    except Exception:
        logger.exception("could not list or remove orphaned containers")
        return
    if removed:
        logger.warning("removed orphaned containers: %s", ", ".join(removed))


def notify_team(*, submission_pk: int) -> None:
    submission = Submission.objects.select_related("phase__challenge", "team").get(
        pk=submission_pk
    )
    recipients = list(
        submission.team.memberships.exclude(user__email="").values_list("user__email", flat=True)
    )
    if not recipients:
        return
    outcome = submission.get_status_display().lower()
    if submission.error_class:
        outcome += f" ({submission.get_error_class_display().lower()})"
    send_mail(
        subject=f"[Heldout] {submission.phase.challenge.title}: submission "
        f"#{submission.number} {outcome}",
        message=f"Submission #{submission.number} of team {submission.team.name} in "
        f"“{submission.phase.title}” has {outcome}.\n\n{submission.error_message}\n\n"
        f"Details: {settings.HELDOUT_SITE_URL.rstrip('/')}{submission.get_absolute_url()}",
        from_email=None, recipient_list=recipients,
    )
