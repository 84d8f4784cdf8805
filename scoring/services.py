"""Writes for scoring: re-scoring, the sweeper, notifications."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core import dispatch
from core.services import audit_record
from scoring.pipeline import container_name, get_backend
from submissions.models import Submission

logger = logging.getLogger(__name__)
Status = Submission.Status

# How long past its phase's wall-clock limit a running submission may go unheard of
# before the sweeper decides its worker vanished.
SWEEP_GRACE = timedelta(minutes=5)


@transaction.atomic
def submission_rescore(*, submission: Submission, actor: Any) -> bool:
    """Queue a finished submission again (organisers). Returns False if it is still active."""
    updated = Submission.update_status(
        submission.pk, to=Status.QUEUED, from_=Submission.FINAL, error_class="",
        error_message="", finished_at=None, started_at=None,
    )
    if updated:
        audit_record(verb="submission.rescore", actor=actor,
                     challenge=submission.phase.challenge, target=f"submission:{submission.pk}")
        transaction.on_commit(lambda: dispatch.evaluate_submission(submission.pk))
    return updated


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
    current = {"from_": [submission.status], "attempt": submission.attempts}
    if submission.attempts >= settings.HELDOUT_MAX_ATTEMPTS:
        Submission.update_status(
            submission.pk, to=Status.FAILED, **current,
            error_class=Submission.ErrorClass.INTERNAL_ERROR,
            error_message="The evaluation was interrupted too many times; the organisers have "
            "been told. This does not count against your quota.", finished_at=timezone.now())
        logger.error("submission %s failed after %s attempts", submission.pk, submission.attempts)
        return False
    if Submission.update_status(submission.pk, to=Status.QUEUED, **current, started_at=None):
        audit_record(verb="submission.requeued", challenge=submission.phase.challenge,
                     target=f"submission:{submission.pk}", data={"attempts": submission.attempts})
        dispatch.evaluate_submission(submission.pk)
        return True
    return False


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
        f"Details: {submission.get_absolute_url()}",
        from_email=None, recipient_list=recipients,
    )
