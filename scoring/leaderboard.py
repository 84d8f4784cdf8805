"""Recomputing a phase's leaderboards from stored per-case scores.

Entries: each team's best succeeded submission on the primary metric of the public part
(so private scores never steer which entry is shown), or, where the phase asks teams to
select final entries, their selected ones (the latest N when they selected none). The
bootstrap runs here, in a task; pages only read the cached snapshot.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import transaction

from challenges.models import Phase
from scoring.labels import LabelTable, load_labels
from scoring.metrics import get_metric
from scoring.models import LeaderboardSnapshot, Result
from scoring.pipeline import from_bytes
from scoring.ranking import EntryScores, RankedEntry, rank_entries
from submissions.models import Submission


def _results(phase: Phase) -> list[Result]:
    return list(
        Result.objects.filter(
            submission__phase=phase, submission__status=Submission.Status.SUCCEEDED,
            evaluation_set=phase.evaluation_set,
        ).select_related("submission__team").order_by("submission__created_at")
    )


def _selection_score(result: Result, part: str, primary: str) -> float:
    value = (result.metrics.get(part) or result.metrics.get("all") or {}).get(primary)
    if value is None:
        return -math.inf
    return value if get_metric(primary).higher_is_better else -value


def choose_entries(phase: Phase, results: Iterable[Result], part: str) -> list[Result]:
    by_team: dict[int, list[Result]] = defaultdict(list)
    baselines = []
    for result in results:
        if result.submission.is_baseline:
            baselines.append(result)
        else:
            by_team[result.submission.team_id].append(result)
    chosen = []
    for team_results in by_team.values():
        if phase.selection_limit:
            selected = [r for r in team_results if r.submission.selected]
            chosen += selected or team_results[-phase.selection_limit:]
        else:
            chosen.append(max(team_results, key=lambda r: _selection_score(r, part, phase.primary_metric)))
    return chosen + baselines


def _entry(result: Result, mask: np.ndarray) -> EntryScores:
    submission = result.submission
    labels = None if result.case_labels is None else from_bytes(result.case_labels)[mask]
    label = submission.team.name + (f" #{submission.number}" if submission.is_baseline else "")
    return EntryScores(
        key=str(submission.uid), team=label, scores=from_bytes(result.case_scores)[mask],
        labels=labels, is_baseline=submission.is_baseline,
    )


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _entry_json(entry: RankedEntry, results: dict[str, Result], counts: dict[int, int]) -> dict[str, Any]:
    submission = results[entry.key].submission
    return {
        "key": entry.key, "team": entry.team, "team_id": submission.team_id,
        "submission": submission.number, "rank": entry.rank, "is_baseline": entry.is_baseline,
        "metrics": {k: _finite(v) for k, v in entry.metrics.items()},
        "intervals": {k: [_finite(i.low), _finite(i.high)] for k, i in entry.intervals.items()},
        "bayes_factor": None if entry.bayes_factor is None else (
            "inf" if math.isinf(entry.bayes_factor) else round(entry.bayes_factor, 2)),
        "tied_with_leader": entry.tied_with_leader,
        "entries": counts.get(submission.team_id, 0),
        "submitted_at": submission.created_at.isoformat(),
    }


def compute_board(phase: Phase, table: LabelTable, results: list[Result], part: str) -> dict[str, Any]:
    mask = np.ones(len(table.ids), dtype=bool) if part == "all" else table.split == part
    chosen = choose_entries(phase, results, "public" if table.split is not None else "all")
    counts: dict[int, int] = defaultdict(int)
    for result in results:
        counts[result.submission.team_id] += 1
    board = rank_entries(
        [_entry(r, mask) for r in chosen], table.y[mask].astype(np.int64),
        primary=phase.primary_metric, secondary=phase.secondary_metrics,
        n_resamples=phase.bootstrap_resamples, seed=phase.pk,
    )
    by_key = {str(r.submission.uid): r for r in chosen}
    return {
        "primary": phase.primary_metric, "secondary": phase.secondary_metrics,
        "part": part, "n_cases": board.n_cases, "n_resamples": board.n_resamples,
        "entries": [_entry_json(e, by_key, counts) for e in board.entries],
    }


def recompute(*, phase_pk: int) -> None:
    phase = Phase.objects.select_related("evaluation_set").get(pk=phase_pk)
    if phase.evaluation_set is None:
        return
    table = load_labels(phase.evaluation_set)
    results = _results(phase)
    parts = {"public": "public", "private": "private"} if table.split is not None else {"public": "all"}
    boards = {name: compute_board(phase, table, results, part) for name, part in parts.items()}
    with transaction.atomic():
        for name, payload in boards.items():
            LeaderboardSnapshot.objects.update_or_create(
                phase=phase, board=name, defaults={"payload": payload}
            )
