"""The few calls that go against the layer order, made by Celery task name.

Apps depend one way (accounts <- challenges <- submissions <- scoring <- leaderboards), yet a
new submission must queue its evaluation (submissions -> scoring) and a stored result must
refresh its board (scoring -> leaderboards). Those calls go through here, by the task's
registered name, so no lower app imports a higher one. Tests replace these functions at this
seam.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.utils import timezone

logger = logging.getLogger(__name__)

EVALUATE_SUBMISSION = "scoring.tasks.evaluate_submission"
RECOMPUTE_LEADERBOARD = "leaderboards.tasks.recompute_leaderboard"


def send(name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue task `name` with keyword arguments, `countdown` seconds from now. A registered
    task is called through its own object so that eager mode and its routing apply; an
    unknown one goes by name."""
    task = current_app.tasks.get(name)
    if task is None:
        current_app.send_task(name, kwargs=kwargs, countdown=countdown)
    else:
        task.apply_async(kwargs=kwargs, countdown=countdown)


def evaluate_submission(submission_pk: int) -> None:
    send(EVALUATE_SUBMISSION, submission_pk=submission_pk)


def refresh_leaderboard(phase_pk: int) -> None:
    """Recompute the phase's boards now, from data as of this moment (one hop, no delay;
    requests during a computation are coalesced by the task)."""
    send(RECOMPUTE_LEADERBOARD, phase_pk=phase_pk, requested_at=timezone.now().isoformat())


def refresh_leaderboard_here(phase_pk: int) -> None:
    """Recompute the phase's boards in this process, now: the scoring worker does so right
    after storing a result, so the entry reaches the board without a queue hop (a
    computation already running elsewhere takes the request over; the task coalesces).
    Should computing here fail, the request is queued instead: the result stands."""
    kwargs = {"phase_pk": phase_pk, "requested_at": timezone.now().isoformat()}
    task = _registered(RECOMPUTE_LEADERBOARD)
    if task is not None:
        try:
            task.run(**kwargs)
            return
        except Exception:
            logger.exception("computing the boards of phase %s here failed; queued", phase_pk)
    send(RECOMPUTE_LEADERBOARD, **kwargs)


def _registered(name: str) -> Any:
    """Task `name` of this process, importing the apps' task modules first if no worker
    did (a worker imports them at start; a script calling the pipeline may not have)."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks.get(name)
