"""How an evaluation attempt ends, and how it proves it is still the current one.

Every attempt is fenced: its status and result writes name the attempt (`Submission.attempts`
when it claimed the submission) and are conditional on it, so an attempt that was given up
on (its worker was stopped, the sweeper queued a new attempt) changes nothing when it wakes
up: its writes are no-ops, logged. While it runs, the attempt renews a lease on the
submission from a heartbeat thread; a submission whose lease ran out is the sweeper's.

`finish` is the one way any attempt ends (success, a model's failure, our failure, the
sweeper giving up): the audit event, the team's e-mail and the board refresh follow only
when the fenced write took effect.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import dispatch
from core.services import audit_record
from submissions.models import Submission

logger = logging.getLogger(__name__)
Status = Submission.Status
NOTIFY_TEAM = "scoring.tasks.notify_team"  # a task of this app, queued by name (no cycle)


class StaleAttempt(Exception):
    """This attempt is no longer the submission's current one; stop without writing."""


def lease_until() -> timezone.datetime:
    return timezone.now() + timedelta(seconds=settings.HELDOUT_LEASE_SECONDS)


def is_current(submission_pk: int, attempt: int) -> bool:
    return Submission.objects.filter(
        pk=submission_pk, attempts=attempt, status__in=Submission.ACTIVE).exists()


def renew_lease(submission_pk: int, attempt: int) -> bool:
    """Extend the attempt's lease; False when the attempt is no longer current."""
    return bool(Submission.objects.filter(
        pk=submission_pk, attempts=attempt, status__in=Submission.ACTIVE,
    ).update(lease_until=lease_until()))


class Heartbeat:
    """Renews an attempt's lease every HELDOUT_HEARTBEAT_SECONDS while the work runs. A lost
    lease only stops the renewals: the fenced writes are what keep a stale attempt out."""

    def __init__(self, submission_pk: int, attempt: int) -> None:
        self._key = (submission_pk, attempt)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{submission_pk}-a{attempt}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.HELDOUT_HEARTBEAT_SECONDS):
                if not renew_lease(*self._key):
                    logger.warning("submission %s attempt %s lost its lease", *self._key)
                    return
        finally:
            connection.close()  # this thread's own database connection


def finish(
    *, submission: Submission, attempt: int, status: str, error_class: str = "",
    message: str = "", lane: str = "", actor: object = None, refresh_board: bool = True,
) -> bool:
    """End attempt `attempt` of `submission` with `status`. Returns False (and changes
    nothing) when the attempt is stale or the submission already ended. `refresh_board`
    False: the caller asks for the board itself (after storing the board's statistics)."""
    with transaction.atomic():
        moved = Submission.update_status(
            submission.pk, to=status, attempt=attempt, error_class=error_class,
            error_message=message, failed_lane=lane, finished_at=timezone.now(),
            lease_until=None,
        )
        if not moved:
            logger.warning("submission %s attempt %s is stale: its %s outcome is dropped",
                           submission.pk, attempt, status)
            return False
        audit_record(verb=f"submission.{status}", actor=actor,
                     challenge=submission.phase.challenge, target=f"submission:{submission.pk}",
                     data={"error_class": error_class, "attempt": attempt, "lane": lane})
        phase_pk = submission.phase_id
        transaction.on_commit(lambda: after_finish(submission.pk, phase_pk, refresh_board))
    return True


def after_finish(submission_pk: int, phase_pk: int, refresh_board: bool = True) -> None:
    # The e-mail leaves when the team may learn the outcome (Submission.told_at), not at
    # the run's end: its arrival would time the run on hidden data.
    told_at = Submission.objects.get(pk=submission_pk).told_at()
    wait = max(0.0, (told_at - timezone.now()).total_seconds()) if told_at else 0.0
    dispatch.send(NOTIFY_TEAM, countdown=wait or None, submission_pk=submission_pk)
    if refresh_board:  # every final status can change a board (a failed re-score removes one)
        dispatch.refresh_leaderboard(phase_pk)
