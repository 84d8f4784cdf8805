"""The team's own pages for its submissions: notes on a submission (page, history, API),
final-entry selection from the history table, and "being added to the leaderboard" while
the board has not caught up with a result."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import token_create
from challenges.models import Phase
from core.models import AuditEvent
from leaderboards.models import LeaderboardSnapshot
from scoring.services import notify_team
from submissions import services
from submissions.exceptions import NotAMember, NoteTooLong, QuotaExceeded
from submissions.models import NOTE_MAX_LENGTH, Submission
from tests.factories import ResultFactory, SubmissionFactory
from tests.factories.submissions import told_finish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue() -> Any:
    with mock.patch("core.dispatch.refresh_leaderboard", autospec=True) as patched:
        yield patched


def succeeded(phase: Phase, team: Any, *, finished_at: Any = None) -> Submission:
    submission = SubmissionFactory(phase=phase, team=team, status=Submission.Status.SUCCEEDED,
                                   attempts=1, finished_at=finished_at or told_finish())
    ResultFactory(submission=submission)
    return submission


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t').key}")
    return client


# --- notes ---------------------------------------------------------------------------------


def test_a_team_mate_writes_a_note_and_clears_it(phase, team_a, bob) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)

    services.submission_note(submission=submission, user=bob, note="  gradient boosting v2 ")
    assert Submission.objects.get(pk=submission.pk).note == "gradient boosting v2"
    services.submission_note(submission=submission, user=bob, note="")
    assert Submission.objects.get(pk=submission.pk).note == ""


def test_a_note_is_for_the_team_and_short(phase, team_a, alice, carol, olga) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)
    for outsider in (carol, olga):
        with pytest.raises(NotAMember):
            services.submission_note(submission=submission, user=outsider, note="mine")
    with pytest.raises(NoteTooLong, match=f"at most {NOTE_MAX_LENGTH} characters"):
        services.submission_note(submission=submission, user=alice,
                                 note="x" * (NOTE_MAX_LENGTH + 1))
    assert Submission.objects.get(pk=submission.pk).note == ""


def test_the_note_shows_on_the_submission_page_and_in_the_history(
        client, phase, team_a, bob, olga) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)
    client.force_login(bob)

    response = client.post(reverse("submissions:note", args=[submission.uid]),
                           {"note": "logistic regression, age + prior visits"}, follow=True)

    assert "Note saved." in messages_of(response)
    assert "logistic regression, age + prior visits" in response.content.decode()
    history = client.get(phase.get_absolute_url()).content.decode()
    assert "logistic regression, age + prior visits" in history
    client.force_login(olga)  # organisers read it, without a form to change it
    organiser_page = client.get(submission.get_absolute_url()).content.decode()
    assert "logistic regression, age + prior visits" in organiser_page
    assert 'name="note"' not in organiser_page


def test_a_too_long_note_from_the_page_is_refused_with_a_message(client, phase, team_a,
                                                                 alice) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)
    client.force_login(alice)
    response = client.post(reverse("submissions:note", args=[submission.uid]),
                           {"note": "y" * 501}, follow=True)
    assert any("at most 500 characters" in m for m in messages_of(response))


def test_another_team_cannot_post_a_note(client, phase, team_a, carol) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)
    client.force_login(carol)
    response = client.post(reverse("submissions:note", args=[submission.uid]), {"note": "x"})
    assert response.status_code == 404


def test_the_api_sets_a_note_and_shows_it_in_the_detail(phase, team_a, alice, carol) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a)
    url = f"/api/v1/submissions/{submission.uid}/note/"

    response = api(alice).post(url, {"note": "baseline + calibration"}, format="json")
    assert (response.status_code, response.json()["note"]) == (200, "baseline + calibration")
    detail = api(alice).get(f"/api/v1/submissions/{submission.uid}/").json()
    assert detail["note"] == "baseline + calibration"

    too_long = api(alice).post(url, {"note": "z" * 501}, format="json")
    assert (too_long.status_code, too_long.json()["code"]) == (400, "invalid_input")
    assert api(carol).post(url, {"note": "x"}, format="json").status_code == 404


def test_the_note_endpoint_is_in_the_schema(client) -> None:
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/submissions/{id}/note/"]["post"]
    assert operation["summary"] == "Set or clear your team's note on a submission"
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    note = schema["components"]["schemas"][body.rsplit("/", 1)[-1]]["properties"]["note"]
    assert note["maxLength"] == NOTE_MAX_LENGTH


# --- final-entry selection in the browser ---------------------------------------------------


@pytest.fixture
def selecting_phase(phase) -> Phase:  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(selection_limit=1)
    phase.refresh_from_db()
    return phase


def select_url(submission: Submission) -> str:
    return reverse("submissions:select", args=[submission.uid])


def test_the_history_offers_select_buttons_for_succeeded_submissions_only(
        client, selecting_phase, team_a, alice) -> None:
    scored = succeeded(selecting_phase, team_a)
    queued = SubmissionFactory(phase=selecting_phase, team=team_a)
    client.force_login(alice)

    html = client.get(selecting_phase.get_absolute_url()).content.decode()

    assert f"Select #{scored.number}" in html and f"Select #{queued.number}" not in html
    assert "Select up to 1 final entry for the leaderboard (selected: 0)" in html


def test_no_select_buttons_without_a_selection_limit(client, phase, team_a, alice) -> None:
    scored = succeeded(phase, team_a)
    client.force_login(alice)
    html = client.get(phase.get_absolute_url()).content.decode()
    assert f"Select #{scored.number}" not in html and "Final entry" not in html


def test_a_member_selects_and_unselects_from_the_history(
        client, selecting_phase, team_a, bob, no_queue, django_capture_on_commit_callbacks
) -> None:
    scored = succeeded(selecting_phase, team_a)
    client.force_login(bob)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(select_url(scored), {"selected": "1"}, follow=True)
    assert f"Submission #{scored.number} is selected as a final entry." in messages_of(response)
    assert Submission.objects.get(pk=scored.pk).selected
    html = response.content.decode()
    assert f"Unselect #{scored.number}" in html and "(selected: 1)" in html
    no_queue.assert_called_with(selecting_phase.pk)  # the board ranks the selection

    response = client.post(select_url(scored), {"selected": "0"}, follow=True)
    assert f"Submission #{scored.number} is no longer a final entry." in messages_of(response)
    assert not Submission.objects.get(pk=scored.pk).selected
    verbs = AuditEvent.objects.filter(target=f"submission:{scored.pk}").values_list("verb",
                                                                                  flat=True)
    assert list(verbs.order_by("id")) == ["submission.selected", "submission.unselected"]


def test_refusals_are_shown_as_messages(client, selecting_phase, team_a, alice) -> None:
    first, second = succeeded(selecting_phase, team_a), succeeded(selecting_phase, team_a)
    services.submission_select(submission=first, user=alice, selected=True)
    client.force_login(alice)

    response = client.post(select_url(second), {"selected": "1"}, follow=True)
    assert "Your team has already selected 1 final entries (the limit)." in messages_of(response)
    assert not Submission.objects.get(pk=second.pk).selected
    with pytest.raises(QuotaExceeded):  # the same rule as the API's
        services.submission_select(submission=second, user=alice, selected=True)

    selecting_phase.closes_at = timezone.now() - timedelta(minutes=1)
    selecting_phase.opens_at = timezone.now() - timedelta(days=2)
    selecting_phase.save(update_fields=["opens_at", "closes_at"])
    closed = client.post(select_url(first), {"selected": "0"}, follow=True)
    assert "Final entries can only be changed while the phase is open." in messages_of(closed)
    assert "Unselect #" not in closed.content.decode()  # no buttons once it closed


def test_another_team_cannot_select(client, selecting_phase, team_a, carol) -> None:
    scored = succeeded(selecting_phase, team_a)
    client.force_login(carol)
    assert client.post(select_url(scored), {"selected": "1"}).status_code == 404
    assert not Submission.objects.get(pk=scored.pk).selected


# --- being added to the leaderboard -------------------------------------------------------


def snapshot(phase: Phase, as_of: Any) -> None:
    LeaderboardSnapshot.objects.update_or_create(
        phase=phase, board="public",
        defaults={"payload": {"as_of": as_of.isoformat(), "entries": [], "primary": "auroc",
                              "secondary": []}})


@pytest.mark.parametrize("url_name", ["submissions:detail", "submissions:status"])
def test_a_result_newer_than_the_board_is_being_added(client, phase, team_a, alice,
                                                      url_name) -> None:
    submission = succeeded(phase, team_a)
    snapshot(phase, submission.finished_at - timedelta(seconds=5))
    client.force_login(alice)

    html = client.get(reverse(url_name, args=[submission.uid])).content.decode()

    assert "being added to the" in html
    assert "data-final" not in html  # the status part keeps polling
    if url_name == "submissions:detail":
        assert f'data-poll-url="{reverse("submissions:status", args=[submission.uid])}"' in html


def test_without_any_board_yet_the_result_is_being_added(client, phase, team_a, alice) -> None:
    submission = succeeded(phase, team_a)
    client.force_login(alice)
    assert "being added to the" in client.get(submission.get_absolute_url()).content.decode()


def test_once_the_board_caught_up_the_page_stops_polling(client, phase, team_a, alice) -> None:
    submission = succeeded(phase, team_a)
    snapshot(phase, submission.finished_at + timedelta(seconds=1))
    client.force_login(alice)

    html = client.get(submission.get_absolute_url()).content.decode()
    status = client.get(reverse("submissions:status", args=[submission.uid])).content.decode()

    assert "being added" not in html and "data-poll-url" not in html
    assert 'data-final="1"' in status


def test_nothing_is_being_added_to_a_board_the_team_cannot_see(client, phase, team_a,
                                                               alice) -> None:
    Phase.objects.filter(pk=phase.pk).update(score_visibility=Phase.ScoreVisibility.AFTER_CLOSE)
    submission = succeeded(phase, team_a)
    client.force_login(alice)
    html = client.get(submission.get_absolute_url()).content.decode()
    assert "being added" not in html and "data-poll-url" not in html


def test_a_failed_submission_is_never_being_added(client, phase, team_a, alice) -> None:
    submission = SubmissionFactory(phase=phase, team=team_a, status=Submission.Status.FAILED,
                                   error_class="timeout", finished_at=told_finish())
    client.force_login(alice)
    assert "being added" not in client.get(submission.get_absolute_url()).content.decode()


# --- the notification e-mail ----------------------------------------------------------------


def test_the_notification_carries_an_absolute_link(settings, phase, team_a) -> None:
    settings.HELDOUT_SITE_URL = "https://heldout.example.org/"
    submission = succeeded(phase, team_a)

    notify_team(submission_pk=submission.pk)

    link = f"https://heldout.example.org/submissions/{submission.uid}/"
    assert f"Details: {link}" in mail.outbox[-1].body
