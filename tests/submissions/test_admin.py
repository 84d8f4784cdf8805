from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from tests.factories import RunFactory, SubmissionFactory


@pytest.mark.django_db
def test_an_organiser_sees_the_runs_of_a_submission_in_the_admin(client, olga, phase, team_a):
    submission = SubmissionFactory(phase=phase, team=team_a, status="failed", attempts=1)
    RunFactory(submission=submission, container_name="heldout-run-marker-a1-hidden",
               log_tail="hidden log")
    client.force_login(olga)
    page = client.get(reverse("admin:submissions_submission_change", args=[submission.pk]))
    assert page.status_code == 200
    assert b"heldout-run-marker-a1-hidden" in page.content


@pytest.mark.django_db
def test_the_rescore_action_queues_finished_submissions_again(
    client, olga, phase, team_a, django_capture_on_commit_callbacks
):
    done = SubmissionFactory(phase=phase, team=team_a, status="failed", error_class="timeout")
    running = SubmissionFactory(phase=phase, team=team_a, status="running")
    client.force_login(olga)
    with (mock.patch("core.dispatch.evaluate_submission", autospec=True) as queued,
          django_capture_on_commit_callbacks(execute=True)):
        client.post(reverse("admin:submissions_submission_changelist"),
                    {"action": "rescore", "_selected_action": [done.pk, running.pk]})
    done.refresh_from_db()
    running.refresh_from_db()
    assert (done.status, done.error_class) == ("queued", "")
    assert running.status == "running"  # an active run is never started twice
    queued.assert_called_once_with(done.pk)


@pytest.mark.django_db
def test_an_action_on_ids_that_are_not_ids_is_refused_without_a_server_error(
    client, olga, phase, team_a
):
    done = SubmissionFactory(phase=phase, team=team_a, status="failed", error_class="timeout")
    client.force_login(olga)
    url = reverse("admin:submissions_submission_changelist")
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as queued:
        response = client.post(url, {"action": "rescore",
                                     "_selected_action": [done.pk, "1 OR 1=1"]}, follow=True)
    assert response.status_code == 200
    assert "not rows of this list" in response.content.decode()
    queued.assert_not_called()
    done.refresh_from_db()
    assert done.status == "failed"
