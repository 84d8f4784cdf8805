"""The one place a station job's status is written by a conditional UPDATE (as
`Submission.update_status` is for submissions): a job moves only from the states named in
`where`, so two racing writers cannot both move it."""

from __future__ import annotations

from typing import Any

from scoring.models import StationJob


def move(*, to: str, where: dict[str, Any], **fields: Any) -> int:
    """Move the jobs matching `where` to status `to`; returns how many moved."""
    return StationJob.objects.filter(**where).update(status=to, **fields)
