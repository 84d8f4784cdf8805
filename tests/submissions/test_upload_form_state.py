"""Issue #21, item 6: the phase page's upload form says why the team cannot submit and is
disabled (its JavaScript then sends nothing) when the team has no submission left today or
in the phase, has as many running as it may, or the phase is closed; a reload after a slot
frees up shows it open again. The reasons are the upload's own checks, word for word.
tests/browser/test_issue21_participant.py runs the page's JavaScript against it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from challenges.models import Phase
from submissions.models import Submission
from tests.factories import SubmissionFactory

pytestmark = pytest.mark.django_db
Status = Submission.Status


@pytest.fixture
def page(client: Client, phase: Phase, team_a, alice):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(quota_per_day=4, quota_total=10,
                                             quota_concurrent=2)
    phase.refresh_from_db()
    client.force_login(alice)

    def load() -> str:
        response = client.get(phase.get_absolute_url())
        assert response.status_code == 200
        return response.content.decode()

    return load


def used(phase: Phase, team, n: int, *, status: str = Status.SUCCEEDED) -> list[Submission]:  # type: ignore[no-untyped-def]
    return [SubmissionFactory(phase=phase, team=team, status=status) for _ in range(n)]


def form_tag(html: str) -> str:
    match = re.search(r'<form [^>]*id="upload-form"[^>]*>', html)
    assert match, "no upload form"
    return match.group(0)


def is_blocked(html: str) -> bool:
    blocked = 'data-blocked="1"' in form_tag(html)
    assert blocked == ('<fieldset class="upload-fields" disabled>' in html)
    assert blocked == ('id="upload-blocked"' in html)
    return blocked


def test_the_form_is_open_while_the_team_has_submissions_left(page, phase, team_a) -> None:
    used(phase, team_a, 3)
    html = page()
    assert "1 of 4 left today" in html
    assert not is_blocked(html)


def test_no_submission_left_today_disables_the_form_and_says_when_it_resets(
    page, phase, team_a
) -> None:
    used(phase, team_a, 4)
    html = page()
    assert "0 of 4 left today, resets at 00:00 UTC" in html
    assert is_blocked(html)
    assert ("Your team has used all 4 submissions for today; the quota resets at 00:00 UTC."
            in html)


def test_a_used_up_phase_disables_the_form(page, phase, team_a) -> None:
    Phase.objects.filter(pk=phase.pk).update(quota_total=3)
    for n, submission in enumerate(used(phase, team_a, 3)):
        Submission.objects.filter(pk=submission.pk).update(
            created_at=timezone.now() - timedelta(days=n + 1))  # on earlier days
    html = page()
    assert is_blocked(html)
    assert "Your team has used all 3 submissions for this phase." in html


def test_as_many_running_as_allowed_disables_the_form_until_one_ends(
    page, phase, team_a
) -> None:
    running = used(phase, team_a, 2, status=Status.RUNNING)
    html = page()
    assert is_blocked(html)
    assert "already has 2 submission(s) being evaluated; the limit is 2 at a time" in html

    Submission.objects.filter(pk=running[0].pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now() - timedelta(minutes=5))
    assert not is_blocked(page())  # the reload after the slot frees up


def test_a_freed_slot_opens_the_form_again_after_a_reload(page, phase, team_a) -> None:
    rows = used(phase, team_a, 4)
    assert is_blocked(page())
    # Cancelled submissions give their slot back (the quota's own rule).
    Submission.objects.filter(pk=rows[0].pk).update(status=Status.CANCELLED)
    html = page()
    assert "1 of 4 left today" in html
    assert not is_blocked(html)


def test_a_closed_phase_disables_the_form(page, phase) -> None:
    Phase.objects.filter(pk=phase.pk).update(
        opens_at=timezone.now() - timedelta(days=10), closes_at=timezone.now() - timedelta(days=1))
    html = page()
    assert is_blocked(html)
    assert "accepts submissions from" in html


def test_terms_not_accepted_shows_no_form_but_the_terms_link(page, phase, alice) -> None:
    from challenges.models import Challenge

    Challenge.objects.filter(pk=phase.challenge_id).update(terms_version=2)
    html = page()
    assert 'id="upload-form"' not in html
    assert "Accept the data-use terms" in html

