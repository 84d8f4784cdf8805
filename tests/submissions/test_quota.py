"""Quotas: per UTC day, per phase, at a time; which submissions count; races between
team-mates uploading at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from challenges.models import Phase, Team
from submissions import selectors
from submissions.exceptions import QuotaExceeded
from submissions.models import Submission
from submissions.services import submission_create
from submissions.uploads import stage_chunks
from tests.factories import SubmissionFactory

CSV = b"id,score\nc001,0.9\nc002,0.1\n"
Status = Submission.Status


def upload(phase: Phase, team: Team, user: Any) -> Submission:
    staged = stage_chunks([CSV], filename="predictions.csv", max_bytes=1024**2)
    return submission_create(phase=phase, team=team, user=user, kind="predictions",
                             staged=staged)


def earlier(phase: Phase, team: Team, user: Any, *, status: str = Status.SUCCEEDED,
            error_class: str = "", at: datetime | None = None,
            is_baseline: bool = False, failed_lane: str = "") -> Submission:
    """A submission made before the test, written directly (its file does not matter)."""
    return SubmissionFactory(
        phase=phase, team=team, created_by=user, kind="predictions", filename="predictions.csv",
        size=len(CSV), status=status, error_class=error_class, is_baseline=is_baseline,
        created_at=at, failed_lane=failed_lane)


def set_quota(phase: Phase, **fields: Any) -> Phase:
    Phase.objects.filter(pk=phase.pk).update(**fields)
    phase.refresh_from_db()
    return phase


def today_start() -> datetime:
    return timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def yesterday() -> datetime:
    return today_start() - timedelta(hours=5)


def staged_files() -> list[Path]:
    folder = Path(settings.PRIVATE_ROOT) / "staging"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture(autouse=True)
def enqueue() -> Iterator[mock.MagicMock]:
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


@pytest.fixture
def roomy(phase: Phase) -> Phase:
    """Every quota generous; each test tightens the one it is about."""
    return set_quota(phase, quota_per_day=50, quota_total=50, quota_concurrent=50)


# --- per day ----------------------------------------------------------------------------


def test_it_refuses_past_the_daily_quota(roomy, team_a, alice, bob) -> None:
    phase = set_quota(roomy, quota_per_day=2)
    upload(phase, team_a, alice)
    upload(phase, team_a, bob)

    with pytest.raises(QuotaExceeded, match="all 2 submissions for today") as caught:
        upload(phase, team_a, alice)

    assert "resets at 00:00 UTC" in caught.value.message
    assert Submission.objects.count() == 2
    assert staged_files() == []


def test_the_daily_quota_resets_at_midnight_utc(roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_per_day=2)
    earlier(phase, team_a, alice, at=today_start() - timedelta(seconds=1))
    earlier(phase, team_a, alice, at=today_start() - timedelta(seconds=1))
    earlier(phase, team_a, alice, at=today_start())

    assert upload(phase, team_a, alice).number == 4  # two of three were yesterday
    with pytest.raises(QuotaExceeded):
        upload(phase, team_a, alice)


def test_the_quota_is_per_team(roomy, team_a, team_c, alice, carol) -> None:
    phase = set_quota(roomy, quota_per_day=1)
    upload(phase, team_a, alice)

    assert upload(phase, team_c, carol).number == 1


# --- per phase and at a time ------------------------------------------------------------


def test_it_refuses_past_the_total_quota(roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_total=3)
    for _ in range(3):
        earlier(phase, team_a, alice, at=yesterday() - timedelta(days=2))

    with pytest.raises(QuotaExceeded, match="all 3 submissions for this phase"):
        upload(phase, team_a, alice)


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.SCORING])
def test_it_refuses_past_the_concurrent_quota(status, roomy, team_a, alice, bob) -> None:
    phase = set_quota(roomy, quota_concurrent=1)
    first = earlier(phase, team_a, alice, status=status)

    with pytest.raises(QuotaExceeded, match="1 submission\\(s\\) being evaluated"):
        upload(phase, team_a, bob)

    Submission.objects.filter(pk=first.pk).update(status=Status.SUCCEEDED)
    assert upload(phase, team_a, bob).number == 2


# --- what counts ------------------------------------------------------------------------


@pytest.mark.parametrize(("count_failed", "lane", "allowed"), [
    (False, "sanity", True), (False, "upload", True), (True, "sanity", False),
    (True, "upload", False),
])
def test_failures_before_the_hidden_data_count_only_when_the_phase_says_so(
    count_failed, lane, allowed, roomy, team_a, alice
) -> None:
    phase = set_quota(roomy, quota_per_day=1, count_failed=count_failed)
    earlier(phase, team_a, alice, status=Status.FAILED, error_class="nonzero_exit",
            failed_lane=lane)

    if allowed:
        assert upload(phase, team_a, alice).number == 2
    else:
        with pytest.raises(QuotaExceeded):
            upload(phase, team_a, alice)


@pytest.mark.parametrize("count_failed", [False, True])
def test_failures_on_the_hidden_data_always_count(count_failed, roomy, team_a, alice) -> None:
    # Free failures on hidden data would be an unlimited probe (exit codes, timing).
    phase = set_quota(roomy, quota_per_day=1, count_failed=count_failed)
    earlier(phase, team_a, alice, status=Status.FAILED, error_class="nonzero_exit",
            failed_lane="hidden")

    with pytest.raises(QuotaExceeded):
        upload(phase, team_a, alice)


@pytest.mark.parametrize("count_failed", [False, True])
def test_internal_errors_never_count(count_failed, roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_per_day=1, quota_total=1, count_failed=count_failed)
    earlier(phase, team_a, alice, status=Status.FAILED, error_class="internal_error")

    assert upload(phase, team_a, alice).number == 2


@pytest.mark.parametrize("count_failed", [False, True])
def test_cancelled_submissions_never_count(count_failed, roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_per_day=1, quota_total=1, quota_concurrent=1,
                      count_failed=count_failed)
    earlier(phase, team_a, alice, status=Status.CANCELLED)

    assert upload(phase, team_a, alice).number == 2


def test_baselines_do_not_use_the_teams_quota(roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_per_day=1, quota_total=1, quota_concurrent=1)
    earlier(phase, team_a, alice, status=Status.QUEUED, is_baseline=True)

    assert upload(phase, team_a, alice).number == 2


# --- quota_status -----------------------------------------------------------------------


def test_quota_status_reports_what_is_used_and_left(roomy, team_a, team_c, alice, carol) -> None:
    phase = set_quota(roomy, quota_per_day=4, quota_total=10, quota_concurrent=3,
                      count_failed=False)
    earlier(phase, team_a, alice, at=yesterday())  # total only
    earlier(phase, team_a, alice, status=Status.QUEUED)  # today and running
    earlier(phase, team_a, alice, status=Status.RUNNING)  # today and running
    earlier(phase, team_a, alice)  # succeeded today
    earlier(phase, team_a, alice, status=Status.FAILED, error_class="timeout",
            failed_lane="sanity")  # free
    earlier(phase, team_a, alice, status=Status.CANCELLED)  # free
    earlier(phase, team_c, carol)  # another team's

    quota = selectors.quota_status(phase=phase, team=team_a)

    assert (quota.per_day, quota.used_today, quota.left_today) == (4, 3, 1)
    assert (quota.total, quota.used_total, quota.left_total) == (10, 4, 6)
    assert (quota.concurrent, quota.running) == (3, 2)


def test_left_today_is_capped_by_what_is_left_in_the_phase(roomy, team_a, alice) -> None:
    phase = set_quota(roomy, quota_per_day=5, quota_total=3)
    earlier(phase, team_a, alice, at=yesterday())
    earlier(phase, team_a, alice, at=yesterday())

    quota = selectors.quota_status(phase=phase, team=team_a)

    assert (quota.left_today, quota.left_total) == (1, 1)


def test_the_quota_resets_at_the_next_midnight_utc(roomy, team_a) -> None:
    quota = selectors.quota_status(phase=roomy, team=team_a)

    assert quota.resets_at == today_start() + timedelta(days=1)
    assert quota.resets_at.utcoffset() == timedelta(0)
    assert timedelta(0) < quota.resets_at - timezone.now() <= timedelta(days=1)


# --- races --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_team_mates_uploading_at_once_never_exceed_the_quota(
    phase, team_a, alice, bob, enqueue
) -> None:
    set_quota(phase, quota_per_day=3, quota_total=100, quota_concurrent=100)
    n = 6
    staged = [stage_chunks([CSV], filename="predictions.csv", max_bytes=1024**2)
              for _ in range(n)]
    barrier = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def submit(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = submission_create(
                phase=Phase.objects.get(pk=phase.pk), team=Team.objects.get(pk=team_a.pk),
                user=(alice, bob)[i % 2], kind="predictions", staged=staged[i])
        except Exception as error:  # noqa: BLE001 - each outcome is asserted below
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    created = [o for o in outcomes if isinstance(o, Submission)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert (len(created), len(refused)) == (3, 3), outcomes
    numbers = sorted(Submission.objects.filter(team=team_a).values_list("number", flat=True))
    assert numbers == [1, 2, 3]
    assert sorted(s.number for s in created) == [1, 2, 3]
    assert sorted(call.args[0] for call in enqueue.call_args_list) == sorted(
        s.pk for s in created)
    assert staged_files() == []
