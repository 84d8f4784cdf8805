"""Celery tasks: thin, keyword-only, idempotent wrappers around scoring services."""

from __future__ import annotations

from core.tasks import heldout_task
from scoring import pipeline, services


@heldout_task()
def evaluate_submission(*, submission_pk: int) -> None:
    pipeline.evaluate(submission_pk)


@heldout_task()
def notify_team(*, submission_pk: int) -> None:
    services.notify_team(submission_pk=submission_pk)


@heldout_task()
def sweep_stuck_runs() -> None:
    services.sweep_stuck_runs()
