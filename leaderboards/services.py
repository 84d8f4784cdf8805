"""Writes for leaderboards: recomputing a phase's boards as soon as asked, coalescing
requests that arrive while a computation runs.

A new result asks for a recomputation at once (core.dispatch sends the recompute task
directly, with the time of the request). A computation reads the clock before reading
results (the snapshot's `as_of`), so a request made at or before a snapshot's `as_of` is
already covered and returns at once. While one worker computes a phase (a cache lock, on
Redis when there is one), requests for that phase only set a "pending" flag: when the
computation ends it runs once more if the flag was set, so any number of requests during a
computation cost one follow-up. A busy request also queues a late safety check, which is a
no-op unless the computing worker died. The snapshot write itself refuses to replace newer
data, so correctness never depends on the lock.
"""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from core import dispatch
from leaderboards import compute
from leaderboards.selectors import phases_due_at_close, snapshot_as_of

RECOMPUTE_TASK = "leaderboards.tasks.recompute_leaderboard"

LEADERBOARD_LOCK_SECONDS = 5 * 60


def _keys(phase_pk: int) -> tuple[str, str]:
    return f"heldout:leaderboard:{phase_pk}", f"heldout:leaderboard:{phase_pk}:pending"


def leaderboard_request(
    *, phase_pk: int, requested_at: datetime | None = None, countdown: float = 0,
) -> None:
    """Ask for the phase's boards to be recomputed soon from data as of `requested_at`."""
    at = requested_at or timezone.now()
    # By name: this module is the task's body, so importing the task would be a cycle.
    dispatch.send(RECOMPUTE_TASK, countdown=countdown, phase_pk=phase_pk,
                  requested_at=at.isoformat())


def leaderboard_refresh(*, phase_pk: int, requested_at: datetime | None = None) -> bool:
    """Recompute the phase's boards unless a snapshot already covers `requested_at`, or fold
    the request into the computation in progress. Returns whether it computed here."""
    if requested_at is not None:
        as_of = snapshot_as_of(phase_pk=phase_pk)
        if as_of is not None and as_of >= requested_at:
            return False
    lock, pending = _keys(phase_pk)
    if not cache.add(lock, "1", timeout=LEADERBOARD_LOCK_SECONDS):
        cache.set(pending, "1", timeout=LEADERBOARD_LOCK_SECONDS)
        leaderboard_request(phase_pk=phase_pk, requested_at=requested_at or timezone.now(),
                            countdown=LEADERBOARD_LOCK_SECONDS)
        return False
    try:
        _compute_until_quiet(phase_pk, pending)
    finally:
        cache.delete(lock)
    if cache.get(pending):  # arrived between the last look and the release of the lock
        leaderboard_request(phase_pk=phase_pk)
    return True


def _compute_until_quiet(phase_pk: int, pending: str) -> None:
    while True:
        cache.delete(pending)
        compute.recompute(phase_pk=phase_pk)
        if not cache.get(pending):
            return


def leaderboard_refresh_closed(*, now: datetime | None = None) -> list[int]:
    """Request a final computation for every phase that closed since its boards were
    computed (the beat runs this every minute). Returns the phases' primary keys."""
    now = now or timezone.now()
    due = list(phases_due_at_close(now=now).values_list("pk", flat=True))
    for phase_pk in due:
        leaderboard_request(phase_pk=phase_pk, requested_at=now)
    return due
