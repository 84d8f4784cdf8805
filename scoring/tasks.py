"""Celery tasks: thin, keyword-only, idempotent wrappers around scoring services."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from core.tasks import heldout_task
from heldout_kernel import runtime_image as images
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


@heldout_task()
def export_runtime_image() -> None:
    """The runtime image as a download for participants' local tests, once per recipe (a
    redelivery, or a second worker, finds it made or waits on its lock)."""
    images.export_runtime_archive(directory=Path(settings.HELDOUT_RUNTIME_ARCHIVE_DIR))
