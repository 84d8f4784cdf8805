from __future__ import annotations

import pytest
from django.urls import reverse

from scoring.models import Run
from submissions.models import Submission


@pytest.mark.django_db
def test_an_organiser_sees_the_runs_of_a_submission_in_the_admin(
    client, olga, phase, team_a, alice
):
    submission = Submission.objects.create(
        phase=phase, team=team_a, created_by=alice, number=1, kind="bundle",
        filename="m.zip", file_path="x", sha256="0" * 64, size=1, status="failed")
    Run.objects.create(submission=submission, lane="hidden", attempt=1,
                       container_name="heldout-run-marker-a1-hidden", log_tail="hidden log")
    client.force_login(olga)
    page = client.get(reverse("admin:submissions_submission_change", args=[submission.pk]))
    assert page.status_code == 200
    assert b"heldout-run-marker-a1-hidden" in page.content


@pytest.mark.django_db
def test_the_rescore_action_queues_finished_submissions_again(
    client, olga, phase, team_a, alice, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("scoring.services._enqueue", queued.append)
    done = Submission.objects.create(
        phase=phase, team=team_a, created_by=alice, number=1, kind="bundle", filename="m.zip",
        file_path="x", sha256="0" * 64, size=1, status="failed", error_class="timeout")
    running = Submission.objects.create(
        phase=phase, team=team_a, created_by=alice, number=2, kind="bundle", filename="m.zip",
        file_path="x", sha256="0" * 64, size=1, status="running")
    client.force_login(olga)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:submissions_submission_changelist"),
                    {"action": "rescore", "_selected_action": [done.pk, running.pk]})
    done.refresh_from_db()
    running.refresh_from_db()
    assert (done.status, done.error_class) == ("queued", "")
    assert running.status == "running"  # an active run is never started twice
    assert queued == [done.pk]
