"""Which results are stale, for organisers (the admin's column and filters, the dashboard).

A result is stale when it was computed against hidden labels or inputs since replaced, or
metrics the phase no longer names: `Result.is_stale` says so for one result. Until that
property exists every result reads as fresh (getattr), so these pages work either way.
The property is evaluated row by row: an organiser's challenge holds thousands of results
at most, and the admin asks only on request (a filter, the dashboard).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from scoring.models import Result


def is_stale(result: Result) -> bool:
    return bool(getattr(result, "is_stale", False))


def stale_result_ids(results: QuerySet[Result]) -> list[int]:
    """The ids of the stale results among `results` (already scoped to the user)."""
    rows = results.select_related("evaluation_set", "submission__phase__evaluation_set").defer(
        "case_scores", "case_labels", "resamples", "case_detections")
    return [result.pk for result in rows.iterator(chunk_size=500) if is_stale(result)]


def stale_count(*, challenge: Any) -> int:
    return len(stale_result_ids(Result.objects.filter(submission__phase__challenge=challenge)))
