"""Celery tasks for submissions: thin wrappers around services."""

from __future__ import annotations

from heldout.tasks import heldout_task


@heldout_task()
def expire_uploads() -> None:
    """Beat: free the disk that abandoned resumable uploads hold."""
    from submissions.services import uploads_expire

    uploads_expire()
