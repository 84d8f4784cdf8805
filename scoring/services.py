"""Writes for scoring: re-scoring, the sweeper, notifications, leaderboard refresh."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from challenges.services import audit_record
from submissions.models import Submission

logger = logging.getLogger(__name__)
Status = Submission.Status

# How long past its phase's wall-clock limit a running submission may go unheard of
# before the sweeper decides its worker vanished.
SWEEP_GRACE = timedelta(minutes=5)


def _enqueue(submission_pk: int) -> None:
    from scoring.tasks import evaluate_submission

    evaluate_submission.delay(submission_pk=submission_pk)


@transaction.atomic
def submission_rescore(*, submission: Submission, actor: Any) -> bool:
    """Queue a finished submission again (organisers). Returns False if it is still active."""
    updated = Submission.objects.filter(pk=submission.pk, status__in=Submission.FINAL).update(
        status=Status.QUEUED, error_class="", error_message="", finished_at=None,
        started_at=None,
    )
    if updated:
        audit_record(verb="submission.rescore", actor=actor,
                     challenge=submission.phase.challenge, target=f"submission:{submission.pk}")
        transaction.on_commit(lambda: _enqueue(submission.pk))
    return bool(updated)


def _stale(submission: Submission, now: timezone.datetime) -> bool:
    lanes = 2 if submission.phase.sanity_set_id else 1
    budget = timedelta(seconds=submission.phase.limit_seconds * lanes) + SWEEP_GRACE
    return submission.started_at is None or submission.started_at + budget < now


def sweep_stuck_runs(*, now: timezone.datetime | None = None) -> list[int]:
    """Re-queue runs whose worker vanished; give up with internal_error after N attempts.
    Then remove containers that belong to no active run. Returns re-queued primary keys."""
    now = now or timezone.now()
    requeued = []
    active = Submission.objects.filter(status__in=(Status.RUNNING, Status.SCORING))
    for submission in active.select_related("phase"):
        if not _stale(submission, now):
            continue
        if _requeue_or_fail(submission):
            requeued.append(submission.pk)
    _remove_orphans()
    return requeued


def _requeue_or_fail(submission: Submission) -> bool:
    rows = Submission.objects.filter(pk=submission.pk, status=submission.status)
    if submission.attempts >= settings.HELDOUT_MAX_ATTEMPTS:
        rows.update(status=Status.FAILED, error_class=Submission.ErrorClass.INTERNAL_ERROR,
                    error_message="The evaluation was interrupted too many times; the "
                    "organisers have been told. This does not count against your quota.",
                    finished_at=timezone.now())
        logger.error("submission %s failed after %s attempts", submission.pk, submission.attempts)
        return False
    if rows.update(status=Status.QUEUED, started_at=None):
        audit_record(verb="submission.requeued", challenge=submission.phase.challenge,
                     target=f"submission:{submission.pk}", data={"attempts": submission.attempts})
        _enqueue(submission.pk)
        return True
    return False


def _remove_orphans() -> None:
    from scoring.pipeline import container_name, get_backend

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
        f"Details: {submission.get_absolute_url()}",
        from_email=None, recipient_list=recipients,
    )


# --- leaderboards -------------------------------------------------------------------------
#
# Coalescing: every scored submission *requests* a refresh, which enqueues the computation
# `LEADERBOARD_COALESCE_SECONDS` later, carrying the request time. A computation reads the
# clock before reading results (the snapshot's `as_of`), so a request made at or before a
# snapshot's `as_of` is already covered and its task returns at once: a burst of results
# within the delay costs one bootstrap. A cache lock keeps two workers from computing the same
# phase at once (a request arriving meanwhile is deferred, not dropped); the snapshot write
# itself refuses to replace newer data, so correctness never depends on the lock (a per-process
# cache only makes the lock per-process).

LEADERBOARD_COALESCE_SECONDS = 5
LEADERBOARD_LOCK_SECONDS = 10 * 60


def leaderboard_request(
    *, phase_pk: int, requested_at: datetime | None = None,
    countdown: float = LEADERBOARD_COALESCE_SECONDS,
) -> None:
    """Ask for the phase's boards to be recomputed soon from data as of `requested_at`."""
    from scoring.tasks import recompute_leaderboard

    at = requested_at or timezone.now()
    recompute_leaderboard.apply_async(
        kwargs={"phase_pk": phase_pk, "requested_at": at.isoformat()}, countdown=countdown
    )


def leaderboard_refresh(*, phase_pk: int, requested_at: datetime | None = None) -> bool:
    """Recompute the phase's boards unless a snapshot already covers `requested_at`.
    Returns whether a computation ran here."""
    from scoring.leaderboard import recompute
    from scoring.selectors import snapshot_as_of

    if requested_at is not None:
        as_of = snapshot_as_of(phase_pk=phase_pk)
        if as_of is not None and as_of >= requested_at:
            return False
    lock = f"heldout:leaderboard:{phase_pk}"
    if not cache.add(lock, "1", timeout=LEADERBOARD_LOCK_SECONDS):
        leaderboard_request(phase_pk=phase_pk, requested_at=requested_at or timezone.now())
        return False
    try:
        recompute(phase_pk=phase_pk)
    finally:
        cache.delete(lock)
    return True


def leaderboard_refresh_closed(*, now: datetime | None = None) -> list[int]:
    """Request a final computation for every phase that closed since its boards were
    computed (the beat runs this every minute). Returns the phases' primary keys."""
    from scoring.selectors import phases_due_at_close

    now = now or timezone.now()
    due = list(phases_due_at_close(now=now).values_list("pk", flat=True))
    for phase_pk in due:
        leaderboard_request(phase_pk=phase_pk, requested_at=now, countdown=0)
    return due
