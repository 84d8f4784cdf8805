"""What remains of the shared host after gVisor is CPU contention: a run on hidden data that
busy-loops in a pattern slows a concurrent run that counts its own loop and prints the count
to its log (bench/bench_sandbox.py --contention recovered 24 of 24 bits at 1 bit/s). The team
reads its public (sanity) runs' logs, so a team's public run never overlaps one of its runs on
hidden data: the later lane waits for the earlier one, under the team's row lock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scoring import outcome
from scoring.models import Run
from scoring.pipeline import start_run
from submissions.models import Submission
from tests.factories import RunFactory, SubmissionFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)


def running(phase, team) -> Submission:  # type: ignore[no-untyped-def]
    return SubmissionFactory(phase=phase, team=team, status=Submission.Status.RUNNING,
                             attempts=1, started_at=timezone.now(),
                             lease_until=timezone.now() + timedelta(minutes=5))


def start_in_thread(submission: Submission, lane: str) -> tuple[threading.Thread, list[Run]]:
    started: list[Run] = []

    def go() -> None:
        try:
            started.append(start_run(submission, lane, f"test-{submission.pk}-{lane}"))
        finally:
            connection.close()

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, started


def test_a_public_run_waits_for_the_teams_run_on_hidden_data(phase, team_a) -> None:
    probing, reader = running(phase, team_a), running(phase, team_a)
    hidden = RunFactory(submission=probing, lane="hidden", attempt=1, finished_at=None)

    thread, started = start_in_thread(reader, "sanity")
    time.sleep(2.5)
    assert started == []  # still waiting: the hidden run is on
    Run.objects.filter(pk=hidden.pk).update(finished_at=timezone.now())
    thread.join(timeout=10)

    assert [run.lane for run in started] == ["sanity"]


def test_a_run_on_hidden_data_waits_for_the_teams_public_run(phase, team_a) -> None:
    reader, probing = running(phase, team_a), running(phase, team_a)
    sanity = RunFactory(submission=reader, lane="sanity", attempt=1, finished_at=None)

    thread, started = start_in_thread(probing, "hidden")
    time.sleep(2.5)
    assert started == []
    Run.objects.filter(pk=sanity.pk).update(finished_at=timezone.now())
    thread.join(timeout=10)

    assert [run.lane for run in started] == ["hidden"]


def test_runs_of_one_kind_and_of_other_teams_go_side_by_side(phase, team_a, team_c) -> None:
    RunFactory(submission=running(phase, team_a), lane="hidden", attempt=1, finished_at=None)
    RunFactory(submission=running(phase, team_c), lane="sanity", attempt=1, finished_at=None)

    assert start_run(running(phase, team_a), "hidden", "side-by-side").lane == "hidden"
    other = TeamFactory(challenge=phase.challenge, name="Team D")
    assert start_run(running(phase, other), "sanity", "other-team").lane == "sanity"


def test_a_dead_attempts_run_does_not_hold_the_team(phase, team_a) -> None:
    dead = running(phase, team_a)
    Submission.objects.filter(pk=dead.pk).update(lease_until=timezone.now() - timedelta(1))
    RunFactory(submission=dead, lane="hidden", attempt=1, finished_at=None)

    assert start_run(running(phase, team_a), "sanity", "after-a-dead-one").lane == "sanity"


def test_a_waiting_attempt_that_was_taken_over_stops(phase, team_a) -> None:
    RunFactory(submission=running(phase, team_a), lane="hidden", attempt=1, finished_at=None)
    waiting = running(phase, team_a)
    Submission.objects.filter(pk=waiting.pk).update(attempts=2)  # the sweeper moved on

    with pytest.raises(outcome.StaleAttempt):
        start_run(waiting, "sanity", "stale")
