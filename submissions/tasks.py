"""Celery tasks for submissions: thin wrappers around services."""

from __future__ import annotations

from core.tasks import heldout_task
from submissions import services


@heldout_task()
def expire_uploads() -> None:
    """Beat: free the disk that abandoned resumable uploads hold."""
    services.uploads_expire()
