"""The board-timing attack: a model encodes a hidden value in how long it runs on hidden data;
the boards are recomputed right after each result, so whoever reads a board (anonymously: the
live partial's ETag, the page's "computed" stamp, the API) or the team's own submission could
time that run to the second. Now every reader but the organisers learns an outcome on hidden
data at the end of the release period (a minute) it ended in, and no stamp is finer: two runs
that end at different seconds of one minute look the same to everyone, at every moment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from leaderboards.compute import recompute
from submissions import selectors
from submissions.models import Submission
from tests.factories import ResultFactory, SubmissionFactory

START = datetime(2026, 12, 8, 10, 0, 0, tzinfo=UTC)
CSRF = re.compile(r'(csrfmiddlewaretoken" value=")[^"]+')  # random per page
POLLS = [START + timedelta(seconds=s) for s in range(0, 125, 5)]


class Clock:
    def __init__(self) -> None:
        self.now = START - timedelta(minutes=5)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    fake = Clock()
    with mock.patch("django.utils.timezone.now", fake):
        yield fake


class _Rollback(Exception):
    pass


def _observe(phase: Any, probe: Submission, carol: Any) -> dict[str, Any]:
    """Everything the public and the probing team can read, with the probe's identity
    written out (it differs between the two worlds compared)."""
    anonymous = Client()
    board = reverse("leaderboards:board", args=[phase.challenge.slug, phase.slug, "public"])
    live = reverse("leaderboards:board_live", args=[phase.challenge.slug, phase.slug, "public"])
    page, partial = anonymous.get(board), anonymous.get(live)
    team = APIClient()
    team.force_authenticate(carol)
    api = f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}"
    seen = {
        "page": page.content.decode(), "partial": partial.content.decode(),
        "etag": partial["ETag"],
        "api_board": APIClient().get(f"{api}/leaderboard/").content.decode(),
        "status": team.get(f"/api/v1/submissions/{probe.uid}/").content.decode(),
        "quota": team.get(f"{api}/quota/").content.decode(),
        "team_page": _as(carol).get(probe.get_absolute_url()).content.decode(),
    }
    return {k: CSRF.sub(r"\1", v.replace(str(probe.uid), "PROBE").replace(
        f"/{probe.pk}/", "/PK/").replace(probe.sha256, "SHA")) for k, v in seen.items()}


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _world(ends_after: float, *, phase, team_c, carol, model_scores, clock) -> list[dict]:  # type: ignore[no-untyped-def]
    """The probe's run on hidden data ends `ends_after` seconds into the minute and the board
    is recomputed 0.3 s later; what everyone reads at each poll, in order."""
    ended, recomputed = (START + timedelta(seconds=ends_after),
                         START + timedelta(seconds=ends_after + 0.3))
    clock.now = START - timedelta(seconds=30)
    probe = SubmissionFactory(phase=phase, team=team_c, status=Submission.Status.RUNNING,
                              attempts=1, started_at=clock.now)
    seen, board_done = [], False
    for poll in POLLS:
        if ended <= poll and probe.status == Submission.Status.RUNNING:
            clock.now = ended
            Submission.objects.filter(pk=probe.pk).update(
                status=Submission.Status.SUCCEEDED, finished_at=ended)
            probe.refresh_from_db()
            ResultFactory(submission=probe, scores=model_scores["stay"],
                          metrics=_metrics(phase, model_scores))
        if recomputed <= poll and not board_done:
            clock.now = recomputed
            board_done = recompute(phase_pk=phase.pk)
        clock.now = poll
        seen.append(_observe(phase, probe, carol))
    return seen


def _metrics(phase, model_scores) -> dict:  # type: ignore[no-untyped-def]
    from heldout_kernel.scores import score_predictions
    from scoring.labels import load_labels

    table = load_labels(phase.evaluation_set)
    return score_predictions(table, model_scores["stay"], None,
                             metrics=[phase.primary_metric, *phase.secondary_metrics],
                             primary=phase.primary_metric).metrics


def _changes(seen: list[dict]) -> list[bool]:  # type: ignore[type-arg]
    return [a["etag"] != b["etag"] for a, b in zip(seen, seen[1:], strict=False)]


def _in_rollback(run):  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    try:
        with transaction.atomic():
            seen.extend(run())
            raise _Rollback
    except _Rollback:
        pass
    return seen


def test_two_runs_ending_in_one_minute_look_alike_to_everyone_but_organisers(
    clock, phase, cast, team_c, carol, model_scores
) -> None:
    clock.now = START - timedelta(minutes=3)
    recompute(phase_pk=phase.pk)
    worlds = {when: _in_rollback(lambda when=when: _world(
        when, phase=phase, team_c=team_c, carol=carol, model_scores=model_scores, clock=clock))
        for when in (8.0, 52.0)}

    early, late = worlds[8.0], worlds[52.0]
    for poll, a, b in zip(POLLS, early, late, strict=True):
        for channel in set(a) - {"etag"}:
            assert a[channel] == b[channel], f"{channel} differs at {poll:%H:%M:%S}"
    # An ETag is a keyed name of the board's computation: all it tells is when it changes.
    assert _changes(early) == _changes(late)
    # Until the minute is over nobody but the organisers knows; then everybody does.
    before, after = early[POLLS.index(START + timedelta(seconds=55))], early[-1]
    assert '"status":"running"' in before["status"] and '"metrics":null' in before["status"]
    assert '"status":"succeeded"' in after["status"] and '"metrics":null' not in after["status"]
    assert before["api_board"] != after["api_board"] and before["etag"] != after["etag"]


def test_no_stamp_a_reader_sees_is_finer_than_the_minute(
    clock, phase, cast, team_c, carol, model_scores
) -> None:
    clock.now = START + timedelta(seconds=37.123456)
    recompute(phase_pk=phase.pk)
    clock.now = START + timedelta(minutes=2)
    seen = _observe(phase, cast.c_best, carol)

    for channel in ("page", "partial", "api_board", "status", "etag"):
        times = re.findall(r"\d\d:\d\d:(\d\d)(?:\.(\d+))?", seen[channel])
        assert all(seconds == "00" and not fraction for seconds, fraction in times), channel
    assert "37" not in seen["etag"] and "123456" not in seen["etag"]


def test_the_slot_of_an_untold_outcome_stays_taken(clock, phase, team_c) -> None:
    clock.now = START + timedelta(seconds=20)
    SubmissionFactory(phase=phase, team=team_c, status=Submission.Status.FAILED,
                      failed_lane="hidden", error_class="timeout", finished_at=clock.now)

    assert selectors.quota_status(phase=phase, team=team_c).running == 1
    clock.now = START + timedelta(seconds=60)
    assert selectors.quota_status(phase=phase, team=team_c).running == 0


def test_a_failure_on_public_data_is_told_at_once(clock, phase, team_c) -> None:
    clock.now = START + timedelta(seconds=20)
    failed = SubmissionFactory(phase=phase, team=team_c, status=Submission.Status.FAILED,
                               failed_lane="sanity", error_class="timeout",
                               finished_at=clock.now)

    assert failed.outcome_told() and failed.as_told() is failed
    assert selectors.quota_status(phase=phase, team=team_c).running == 0


def test_the_team_email_leaves_when_the_outcome_is_told(clock, phase, team_c) -> None:
    from scoring.outcome import after_finish

    clock.now = START + timedelta(seconds=20)
    done = SubmissionFactory(phase=phase, team=team_c, status=Submission.Status.SUCCEEDED,
                             finished_at=clock.now)
    with mock.patch("core.dispatch.send", autospec=True) as send:
        after_finish(done.pk, phase.pk, refresh_board=False)

    send.assert_called_once_with("scoring.tasks.notify_team", countdown=40.0,
                                 submission_pk=done.pk)
