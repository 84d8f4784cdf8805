"""When boards are recomputed: after each scored result (bursts coalesced), after a
re-score, when a phase closes; and never by a page view."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from core import dispatch
from leaderboards import compute as leaderboard
from leaderboards import services, tasks
from leaderboards.models import LeaderboardSnapshot
from scoring.arrays import to_bytes
from scoring.models import Result
from tests.leaderboard.conftest import close_phase


@pytest.fixture
def queued(monkeypatch):  # type: ignore[no-untyped-def]
    """Capture enqueued recomputations instead of sending them to a broker."""
    calls = mock.create_autospec(tasks.recompute_leaderboard.apply_async)
    monkeypatch.setattr(tasks.recompute_leaderboard, "apply_async", calls)
    return calls


@pytest.fixture
def computations():  # type: ignore[no-untyped-def]
    """Count computations of the boards; each still runs."""
    with mock.patch("leaderboards.compute.recompute", autospec=True,
                    side_effect=leaderboard.recompute) as spy:
        yield spy


def run_queued(queued) -> None:  # type: ignore[no-untyped-def]
    for call in queued.call_args_list:
        tasks.recompute_leaderboard(**call.kwargs["kwargs"])
    queued.reset_mock()


def entries(phase, board="public") -> list[dict]:
    return LeaderboardSnapshot.objects.get(phase=phase, board=board).payload["entries"]


def test_a_scored_result_asks_for_a_recomputation_at_once_in_one_hop(phase, queued):
    before = timezone.now()
    dispatch.refresh_leaderboard(phase.pk)  # what the pipeline calls on success
    (call,) = queued.call_args_list
    assert call.kwargs["countdown"] is None  # no fixed delay, no intermediate task
    assert call.kwargs["kwargs"]["phase_pk"] == phase.pk
    assert datetime.fromisoformat(call.kwargs["kwargs"]["requested_at"]) >= before


def test_the_scoring_worker_computes_the_board_itself_without_queueing(
        phase, cast, queued, computations):
    dispatch.refresh_leaderboard_here(phase.pk)  # what the pipeline calls after a result
    assert computations.call_count == 1 and not queued.called
    assert entries(phase)


def test_a_board_that_fails_in_the_scoring_worker_is_queued_instead(phase, cast, queued):
    with mock.patch("leaderboards.compute.recompute", autospec=True,
                    side_effect=RuntimeError("database went away")):
        dispatch.refresh_leaderboard_here(phase.pk)
    (call,) = queued.call_args_list
    assert call.kwargs["kwargs"]["phase_pk"] == phase.pk


def test_a_request_during_a_computation_elsewhere_is_folded_into_it(phase, cast, queued,
                                                                   computations):
    lock, pending = services._keys(phase.pk)
    cache.add(lock, "1")  # another process is computing this phase's boards
    try:
        dispatch.refresh_leaderboard_here(phase.pk)
    finally:
        cache.delete(lock)
    assert computations.call_count == 0 and cache.get(pending)


def test_a_burst_of_results_costs_one_recomputation(phase, cast, queued, computations):
    for _ in range(10):
        tasks.refresh_leaderboard(phase_pk=phase.pk)
    assert queued.call_count == 10
    run_queued(queued)
    assert computations.call_count == 1
    assert len(entries(phase)) == 3


def test_a_result_after_the_snapshot_is_not_skipped(phase, cast, queued, computations,
                                                    add_result, model_scores, team_c):
    tasks.refresh_leaderboard(phase_pk=phase.pk)
    run_queued(queued)
    newer = add_result(team_c, model_scores["five"])
    tasks.refresh_leaderboard(phase_pk=phase.pk)
    run_queued(queued)
    assert computations.call_count == 2
    assert str(newer.uid) in {e["key"] for e in entries(phase)}


def test_a_rescored_result_moves_the_board(phase, cast, queued, table):
    tasks.refresh_leaderboard(phase_pk=phase.pk)
    run_queued(queued)
    assert entries(phase)[0]["team"] == "Team A"
    # Re-scoring Team C's submission stored better predictions (its result row is updated).
    better = np.where(table.y == 1, 0.9, 0.1)
    public = table.split == "public"
    Result.objects.filter(submission=cast.c_best).update(
        case_scores=to_bytes(better), metrics={"public": {"auroc": 1.0}, "private": {}})
    tasks.refresh_leaderboard(phase_pk=phase.pk)
    run_queued(queued)
    assert entries(phase)[0]["team"] == "Team C"
    assert entries(phase)[0]["metrics"]["auroc"] == 1.0 and public.any()


def test_a_computation_never_overwrites_newer_data(phase, cast):
    leaderboard.recompute(phase_pk=phase.pk)
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    for snapshot in LeaderboardSnapshot.objects.filter(phase=phase):
        snapshot.payload = {**snapshot.payload, "as_of": future, "entries": []}
        snapshot.save()
    assert leaderboard.recompute(phase_pk=phase.pk) is False
    assert entries(phase) == []


def test_a_busy_phase_folds_requests_into_one_follow_up(phase, cast, queued):
    """Requests during a computation set a flag; the computation then runs once more."""
    calls = []

    def computing(*, phase_pk: int) -> bool:
        calls.append(phase_pk)
        if len(calls) == 1:  # three results land while the first computation runs
            for _ in range(3):
                services.leaderboard_refresh(phase_pk=phase_pk, requested_at=timezone.now())
        return real(phase_pk=phase_pk)

    real = leaderboard.recompute
    with mock.patch("leaderboards.compute.recompute", autospec=True, side_effect=computing):
        assert services.leaderboard_refresh(phase_pk=phase.pk, requested_at=timezone.now())
    assert calls == [phase.pk, phase.pk]  # the first, and one follow-up for all three
    safety_nets = [c.kwargs["countdown"] for c in queued.call_args_list]
    assert safety_nets == [services.LEADERBOARD_LOCK_SECONDS] * 3
    run_queued(queued)  # the late checks find the boards up to date
    assert len(calls) == 2


def test_a_request_for_a_busy_phase_is_not_lost_if_the_computation_dies(
    phase, cast, queued, computations
):
    cache.add(f"heldout:leaderboard:{phase.pk}", "1")  # a worker that died mid-computation
    assert services.leaderboard_refresh(phase_pk=phase.pk, requested_at=timezone.now()) is False
    assert computations.call_count == 0 and queued.call_count == 1
    cache.delete(f"heldout:leaderboard:{phase.pk}")  # its lock expired
    run_queued(queued)
    assert computations.call_count == 1


def test_the_beat_finalises_boards_of_phases_that_closed(phase, cast, queued):
    leaderboard.recompute(phase_pk=phase.pk)
    assert services.leaderboard_refresh_closed() == []  # still open
    close_phase(phase)
    tasks.refresh_closed_leaderboards()
    (call,) = queued.call_args_list
    assert call.kwargs["kwargs"]["phase_pk"] == phase.pk and not call.kwargs["countdown"]
    run_queued(queued)
    payload = LeaderboardSnapshot.objects.get(phase=phase, board="private").payload
    assert payload["final"] is True
    assert services.leaderboard_refresh_closed() == []  # nothing left to do
    assert not queued.called


def test_the_beat_schedule_runs_the_close_task(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "leaderboards.tasks.refresh_closed_leaderboards" in tasks_scheduled


def test_page_views_never_compute(phase, cast, client, computations, olga):
    leaderboard.recompute(phase_pk=phase.pk)
    computations.reset_mock()
    ran = AssertionError("a page ran the bootstrap")
    client.force_login(olga)
    base = f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/"
    key = str(cast.a_best.uid)
    with (mock.patch("leaderboards.compute.rank_vectors", autospec=True, side_effect=ran) as board,
          mock.patch("heldout_kernel.aggregates.resample_values", autospec=True,
                     side_effect=ran) as ranking):
        for path in ("", "leaderboard/public/", "leaderboard/private/live/",
                     f"leaderboard/public/{key}/", "leaderboard/private/export.csv",
                     "leaderboard/public/export.json"):
            assert client.get(base + path).status_code == 200, path
    assert computations.call_count == 0 and not board.called and not ranking.called
