"""Writes for leaderboards: requesting, coalescing and storing recomputations.

Coalescing: every scored submission *requests* a refresh, which enqueues the computation
`LEADERBOARD_COALESCE_SECONDS` later, carrying the request time. A computation reads the
clock before reading results (the snapshot's `as_of`), so a request made at or before a
snapshot's `as_of` is already covered and its task returns at once: a burst of results
within the delay costs one bootstrap. A cache lock keeps two workers from computing the same
phase at once (a request arriving meanwhile is deferred, not dropped); the snapshot write
itself refuses to replace newer data, so correctness never depends on the lock (a per-process
cache only makes the lock per-process).
"""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from core import dispatch
from leaderboards import compute
from leaderboards.selectors import phases_due_at_close, snapshot_as_of

RECOMPUTE_TASK = "leaderboards.tasks.recompute_leaderboard"

LEADERBOARD_COALESCE_SECONDS = 5
LEADERBOARD_LOCK_SECONDS = 10 * 60


def leaderboard_request(
    *, phase_pk: int, requested_at: datetime | None = None,
    countdown: float = LEADERBOARD_COALESCE_SECONDS,
) -> None:
    """Ask for the phase's boards to be recomputed soon from data as of `requested_at`."""
    at = requested_at or timezone.now()
    # By name: this module is the task's body, so importing the task would be a cycle.
    dispatch.send(RECOMPUTE_TASK, countdown=countdown, phase_pk=phase_pk,
                  requested_at=at.isoformat())


def leaderboard_refresh(*, phase_pk: int, requested_at: datetime | None = None) -> bool:
    """Recompute the phase's boards unless a snapshot already covers `requested_at`.
    Returns whether a computation ran here."""
    if requested_at is not None:
        as_of = snapshot_as_of(phase_pk=phase_pk)
        if as_of is not None and as_of >= requested_at:
            return False
    lock = f"heldout:leaderboard:{phase_pk}"
    if not cache.add(lock, "1", timeout=LEADERBOARD_LOCK_SECONDS):
        leaderboard_request(phase_pk=phase_pk, requested_at=requested_at or timezone.now())
        return False
    try:
        compute.recompute(phase_pk=phase_pk)
    finally:
        cache.delete(lock)
    return True


def leaderboard_refresh_closed(*, now: datetime | None = None) -> list[int]:
    """Request a final computation for every phase that closed since its boards were
    computed (the beat runs this every minute). Returns the phases' primary keys."""
    now = now or timezone.now()
    due = list(phases_due_at_close(now=now).values_list("pk", flat=True))
    for phase_pk in due:
        leaderboard_request(phase_pk=phase_pk, requested_at=now, countdown=0)
    return due
