"""Boards from stored resample vectors equal boards recomputed from every entry's per-case
scores (intervals, Bayes factors, ties, ranks), and a new result costs one entry's work."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from heldout.celery import warm_open_phases
from heldout_kernel import aggregates
from heldout_kernel.stats import ranking
from heldout_kernel.stats.ranking import EntryScores, rank_entries
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from scoring import vectors
from scoring.arrays import from_bytes
from scoring.labels import load_labels, part_mask
from scoring.models import Result
from tests.leaderboard.conftest import many_teams


def full_recomputation(phase, table, payload):  # type: ignore[no-untyped-def]
    """The board rank_entries computes from the per-case scores of the same entries."""
    mask = part_mask(table, payload["part"])
    results = {str(r.submission.uid): r for r in Result.objects.select_related("submission")}
    entries = [
        EntryScores(key=e["key"], team=e["team"], is_baseline=e["is_baseline"],
                    scores=from_bytes(results[e["key"]].case_scores)[mask])
        for e in payload["entries"]
    ]
    return rank_entries(entries, table.y[mask].astype(np.int64), primary=phase.primary_metric,
                        secondary=phase.secondary_metrics, n_resamples=phase.bootstrap_resamples,
                        seed=phase.pk)


def same(a: float | str | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a = math.inf if a == "inf" else float(a)
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("board", ["public", "private"])
def test_a_stored_vector_board_equals_a_full_recomputation(
    board, phase, table, cast, add_result, model_scores
) -> None:
    many_teams(phase, add_result, model_scores, 6)
    recompute(phase_pk=phase.pk)
    payload = LeaderboardSnapshot.objects.get(phase=phase, board=board).payload

    expected = full_recomputation(phase, table, payload)

    assert [e["key"] for e in payload["entries"]] == [e.key for e in expected.entries]
    for got, want in zip(payload["entries"], expected.entries, strict=True):
        assert (got["rank"], got["tied_with_leader"]) == (want.rank, want.tied_with_leader)
        assert same(got["bayes_factor"], want.bayes_factor)
        for name, interval in want.intervals.items():
            assert got["intervals"][name] == pytest.approx(
                [interval.low, interval.high], abs=1e-12, nan_ok=True)
            assert same(got["metrics"][name], want.metrics[name])


def test_a_new_result_costs_one_entrys_bootstrap(phase, cast, add_result, model_scores, team_c):
    recompute(phase_pk=phase.pk)
    newcomer = add_result(team_c, model_scores["five"])

    with mock.patch("heldout_kernel.aggregates.resample_values", autospec=True,
                    side_effect=aggregates.resample_values) as bootstrap:
        recompute(phase_pk=phase.pk)

    # one call per board part (public, private), all for the newcomer
    assert bootstrap.call_count == 2
    stored = Result.objects.get(submission=newcomer)
    assert stored.resample_key == vectors.stats_key(phase) and stored.resamples


def test_a_worker_draws_the_open_phases_resamples_before_its_first_result(
        transactional_db, phase) -> None:  # type: ignore[no-untyped-def]
    # phase: the readmission bundle's, open now (public and private parts)
    ranking._COUNTS.clear()
    assert phase.is_open(timezone.now())
    warm_open_phases()  # what the worker's parent does at start, before it forks
    assert connection.connection is None  # its children must not share its connection
    table = load_labels(phase.evaluation_set)
    with mock.patch("heldout_kernel.stats.ranking.bootstrap_indices",
                    side_effect=AssertionError("drawn")):
        stats = vectors.compute(phase, table, np.linspace(0, 1, table.y.size), None)
    assert set(stats) == {"public", "private"}


def test_warming_skips_phases_without_central_cases(phase) -> None:
    ranking._COUNTS.clear()
    phase.evaluation_set = None
    assert vectors.warm([phase]) == 0
    assert not ranking._COUNTS._items
