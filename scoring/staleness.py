"""Which results are stale, for organisers (the admin's column and filters, the dashboard).

A result is stale when it was computed against hidden labels or inputs since replaced, or
metrics the phase no longer names: `Result.is_stale` says so for one result (until that
property exists every result reads as fresh, so these pages work either way).

The property hashes the phase's whole evaluation set each time (1,000 results of a
3,000-image set took 3.6 s), and the dashboard asks every 15 s. Where results record what
they were scored with (`scored_with`), the answer depends only on that and the phase, so it
is asked once per (phase, scored_with) pair and holds for every result of the pair.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from scoring.models import Result

HEAVY = ("case_scores", "case_labels", "resamples", "case_detections")


def is_stale(result: Result) -> bool:
    return bool(getattr(result, "is_stale", False))


def _has_scored_with() -> bool:
    return any(field.name == "scored_with" for field in Result._meta.concrete_fields)


def stale_result_ids(results: QuerySet[Result]) -> list[int]:
    """The ids of the stale results among `results` (already scoped to the user)."""
    rows = results.select_related("evaluation_set", "submission__phase__evaluation_set").defer(
        *HEAVY)
    if not _has_scored_with():
        return [result.pk for result in rows.iterator(chunk_size=500) if is_stale(result)]
    pairs = results.order_by().values_list("submission__phase_id", "scored_with").distinct()
    stale = []
    for phase_id, scored_with in pairs:
        group = rows.filter(submission__phase_id=phase_id, scored_with=scored_with)
        sample = group.first()
        if sample is not None and is_stale(sample):
            stale += list(group.values_list("pk", flat=True))
    return stale


def stale_count(*, challenge: Any) -> int:
    return len(stale_result_ids(Result.objects.filter(submission__phase__challenge=challenge)))
