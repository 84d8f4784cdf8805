"""Celery tasks: thin, keyword-only, idempotent wrappers around scoring services."""

from __future__ import annotations

from heldout.tasks import heldout_task


@heldout_task()
def evaluate_submission(*, submission_pk: int) -> None:
    from scoring.pipeline import evaluate

    evaluate(submission_pk)


@heldout_task()
def notify_team(*, submission_pk: int) -> None:
    from scoring.services import notify_team as notify

    notify(submission_pk=submission_pk)


@heldout_task()
def refresh_leaderboard(*, phase_pk: int) -> None:
    """A new or re-scored result landed: request a (coalesced) recomputation."""
    from scoring.services import leaderboard_request

    leaderboard_request(phase_pk=phase_pk)


@heldout_task()
def recompute_leaderboard(*, phase_pk: int, requested_at: str) -> None:
    """Recompute the phase's boards unless a newer snapshot covers `requested_at`."""
    from datetime import datetime

    from scoring.services import leaderboard_refresh

    leaderboard_refresh(phase_pk=phase_pk, requested_at=datetime.fromisoformat(requested_at))


@heldout_task()
def refresh_closed_leaderboards() -> None:
    """Beat: final boards for phases that closed since their last computation."""
    from scoring.services import leaderboard_refresh_closed

    leaderboard_refresh_closed()


@heldout_task()
def sweep_stuck_runs() -> None:
    from scoring.services import sweep_stuck_runs as sweep

    sweep()
