"""Template tags that let other apps' pages say what data stations a submission or a phase
is waiting for, without importing this app."""

from __future__ import annotations

from typing import Any

from django import template

from scoring import station_jobs

register = template.Library()


@register.simple_tag(takes_context=True)
def station_waits(context: dict[str, Any], submission: Any) -> list[dict[str, Any]]:
    """`{% station_waits submission as waits %}`: the stations the current attempt still
    waits for (station, dataset, status, online). Its team sees a station's finished job as
    still running until the submission's outcome is told: when one hospital finished would
    time its run on hidden data."""
    if submission.status != "running":
        return []
    rights = context.get("rights")
    organiser = rights is not None and rights.is_organiser
    return station_jobs.waiting_for(submission, finished_as_running=not organiser)


@register.simple_tag
def phase_station_waits(phase: Any) -> list[dict[str, Any]]:
    """`{% phase_station_waits phase as waits %}`: offline stations that running
    submissions of the phase wait for, with how many (no query for central phases)."""
    evaluation = phase.evaluation_set
    if evaluation is None or not evaluation.is_remote:
        return []
    return station_jobs.offline_for_phase(phase)
