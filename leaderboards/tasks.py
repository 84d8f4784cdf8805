"""Celery tasks for leaderboards: thin, keyword-only, idempotent wrappers around services."""

from __future__ import annotations

from datetime import datetime

from core.tasks import heldout_task
from leaderboards import services


@heldout_task()
def refresh_leaderboard(*, phase_pk: int) -> None:
    """A new or re-scored result landed: request a (coalesced) recomputation."""
    services.leaderboard_request(phase_pk=phase_pk)


@heldout_task()
def recompute_leaderboard(*, phase_pk: int, requested_at: str) -> None:
    """Recompute the phase's boards unless a newer snapshot covers `requested_at`."""
    services.leaderboard_refresh(phase_pk=phase_pk,
                                 requested_at=datetime.fromisoformat(requested_at))


@heldout_task()
def refresh_closed_leaderboards() -> None:
    """Beat: final boards for phases that closed since their last computation."""
    services.leaderboard_refresh_closed()
