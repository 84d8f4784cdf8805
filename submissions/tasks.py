"""Celery tasks for submissions: thin wrappers around services."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.contrib.auth import get_user_model

from challenges.models import Phase, Team
from core.exceptions import DomainError
from core.services import audit_record
from core.tasks import heldout_task
from submissions import services
from submissions.uploads import stage_existing


@heldout_task()
def expire_uploads() -> None:
    """Beat: free the disk that abandoned resumable uploads hold."""
    services.uploads_expire()


@heldout_task(name="submissions.tasks.baseline_submit")
def baseline_submit(*, phase_pk: int, team_pk: int, user_pk: int, path: str, filename: str,
                    kind: str) -> None:
    """An organiser's "Try it first" (queued by name by challenges.admin_views): the staged
    file becomes a baseline submission, scored like any other. The staged copy is removed
    once taken, so a redelivered task finds nothing and does nothing; a refusal is recorded
    in the audit trail, which the organiser's dashboard shows."""
    source = Path(path)
    if not source.is_file():
        return
    staged = stage_existing(source, filename=filename)
    shutil.rmtree(source.parent, ignore_errors=True)
    phase = Phase.objects.select_related("challenge").get(pk=phase_pk)
    user = get_user_model().objects.get(pk=user_pk)
    try:
        services.submission_create(phase=phase, team=Team.objects.get(pk=team_pk), user=user,
                                   kind=kind, staged=staged, is_baseline=True)
    except DomainError as error:
        audit_record(verb="baseline.refused", actor=user, challenge=phase.challenge,
                     target=f"phase:{phase.pk}", data={"reason": error.message})
