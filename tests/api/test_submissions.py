"""Submitting through the API: the same service and rules as the page (window, kind, team,
terms, quota), Idempotency-Key retries, final-entry selection, cancelling and the quota."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from challenges.models import Challenge, Phase
from core.storage import private_path
from submissions.models import Submission
from tests.api.conftest import CSV, close, finish, submit, v1

SUBMIT = v1("challenges/readmission/phases/leaderboard/submissions/")


def post_file(client, content: bytes = CSV, kind: str = "predictions", **headers):  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile("predictions.csv", content, content_type="text/csv")
    return client.post(SUBMIT, {"file": upload, "kind": kind}, format="multipart", **headers)


def test_it_creates_a_queued_submission_and_enqueues_it_once(
    api, alice, phase, team_a, enqueue, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(api(alice))
    assert response.status_code == 202, response.content
    body = response.json()
    submission = Submission.objects.get(uid=body["id"])
    assert (body["status"], body["number"], body["team"], body["kind"]) == (
        "queued", 1, "Team A", "predictions")
    assert (body["created_by"], body["challenge"], body["phase"]) == (
        "alice", "readmission", "leaderboard")
    assert (body["error_class"], body["metrics"], body["selected"]) == (None, None, False)
    assert private_path(submission.file_path).read_bytes() == CSV
    enqueue.assert_called_once_with(submission.pk)


def test_it_returns_the_same_submission_for_a_repeated_idempotency_key(
    api, alice, phase, team_a, enqueue, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    client = api(alice)
    with django_capture_on_commit_callbacks(execute=True):
        first = post_file(client, HTTP_IDEMPOTENCY_KEY="retry-1")
        again = post_file(client, HTTP_IDEMPOTENCY_KEY="retry-1")
        other = post_file(client, HTTP_IDEMPOTENCY_KEY="retry-2")
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert Submission.objects.count() == 2
    assert enqueue.call_count == 2


def test_it_honours_an_idempotency_key_even_after_the_quota_is_used_up(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(quota_per_day=1)
    client = api(alice)
    first = post_file(client, HTTP_IDEMPOTENCY_KEY="k")
    assert post_file(client, HTTP_IDEMPOTENCY_KEY="k").json()["id"] == first.json()["id"]
    assert post_file(client).json()["code"] == "quota_exceeded"


@pytest.mark.parametrize("key", ["", "x" * 101, "has space", "naïve"])
def test_it_refuses_a_malformed_idempotency_key(api, alice, phase, team_a, key):  # type: ignore[no-untyped-def]
    response = post_file(api(alice), HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert "Idempotency-Key" in response.json()["errors"]
    assert not Submission.objects.exists()


def test_it_refuses_outside_the_window(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    close(phase)
    response = post_file(api(alice))
    assert (response.status_code, response.json()["code"]) == (409, "phase_closed")


def test_it_refuses_past_the_daily_quota(api, alice, bob, phase, team_a):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(quota_per_day=2, quota_concurrent=5)
    assert post_file(api(alice)).status_code == 202
    assert post_file(api(bob)).status_code == 202
    response = post_file(api(alice))
    assert (response.status_code, response.json()["code"]) == (429, "quota_exceeded")
    assert "resets at" in response.json()["detail"]
    assert Submission.objects.count() == 2


@pytest.mark.parametrize(("content", "kind", "code"), [
    (b"identifier,prob\nc001,0.9\n", "predictions", "invalid_upload"),
    (b"", "predictions", "invalid_upload"),
    (b"not a zip", "bundle", "invalid_upload"),
])
def test_it_refuses_an_unusable_file(api, alice, phase, team_a, content, kind, code):  # type: ignore[no-untyped-def]
    response = post_file(api(alice), content, kind)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert not Submission.objects.exists()


def test_it_refuses_a_kind_the_phase_does_not_accept(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["bundle"])
    response = post_file(api(alice))
    assert (response.status_code, response.json()["code"]) == (400, "kind_not_allowed")


def test_it_refuses_an_unknown_kind_or_a_missing_file(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    response = post_file(api(alice), kind="notebook")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")
    assert response.json()["detail"].startswith("kind:")
    response = api(alice).post(SUBMIT, {"kind": "predictions"}, format="multipart")
    assert response.json()["errors"].keys() == {"file"}


def test_it_refuses_a_member_who_has_not_accepted_new_terms(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    Challenge.objects.filter(pk=phase.challenge_id).update(terms_version=2)
    response = post_file(api(alice))
    assert (response.status_code, response.json()["code"]) == (403, "terms_not_accepted")
    assert api(alice).post(v1("challenges/readmission/terms/accept/")).json()["version"] == 2
    assert post_file(api(alice)).status_code == 202


def test_it_refuses_a_user_without_a_team(api, dave, phase):  # type: ignore[no-untyped-def]
    response = post_file(api(dave))
    assert (response.status_code, response.json()["code"]) == (403, "not_a_member")


def test_it_lists_the_teams_submissions_newest_first(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(quota_per_day=10, quota_concurrent=10)
    phase.refresh_from_db()
    for _ in range(3):
        submit(phase, team_a, alice)
    body = api(alice).get(SUBMIT).json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert [s["number"] for s in body["results"]] == [3, 2, 1]
    assert api(alice).get(SUBMIT, {"page": 9}).json()["code"] == "not_found"


def test_it_pages_long_lists(api, dave):  # type: ignore[no-untyped-def]
    from tests.factories import ChallengeFactory

    ChallengeFactory.create_batch(51)
    first = api(dave).get(v1("challenges/")).json()
    assert (first["count"], len(first["results"])) == (51, 50)
    assert len(api(dave).get(first["next"]).json()["results"]) == 1


# --- final entries ------------------------------------------------------------------------


def select(client, submission, selected: bool = True):  # type: ignore[no-untyped-def]
    return client.post(v1(f"submissions/{submission.uid}/select/"), {"selected": selected},
                       format="json")


def test_it_lets_a_team_mate_select_and_unselect_a_scored_entry(api, bob, scored_a):  # type: ignore[no-untyped-def]
    response = select(api(bob), scored_a)
    assert (response.status_code, response.json()["selected"]) == (200, True)
    assert select(api(bob), scored_a, False).json()["selected"] is False


def test_it_refuses_to_select_beyond_the_limit(api, alice, phase, team_a, scored_a, evaluation_set):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(selection_limit=1, quota_concurrent=5)
    second = finish(submit(phase, team_a, alice))
    assert select(api(alice), scored_a).status_code == 200
    response = select(api(alice), second)
    assert (response.status_code, response.json()["code"]) == (429, "quota_exceeded")


def test_it_refuses_to_select_after_close(api, alice, phase, scored_a):  # type: ignore[no-untyped-def]
    close(phase)
    response = select(api(alice), scored_a)
    assert (response.status_code, response.json()["code"]) == (409, "phase_closed")


# --- cancel and quota ------------------------------------------------------------------------


def test_it_cancels_only_a_queued_submission(api, alice, submission_a):  # type: ignore[no-untyped-def]
    url = v1(f"submissions/{submission_a.uid}/cancel/")
    assert api(alice).post(url).json()["status"] == "cancelled"
    response = api(alice).post(url)
    assert (response.status_code, response.json()["code"]) == (409, "submission_error")


def test_it_reports_the_teams_quota(api, bob, phase, submission_a):  # type: ignore[no-untyped-def]
    body = api(bob).get(v1("challenges/readmission/phases/leaderboard/quota/")).json()
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert body["resets_at"].startswith(tomorrow + "T00:00:00")
    del body["resets_at"]
    assert body == {"per_day": 5, "used_today": 1, "left_today": 4, "total": 100,
                    "used_total": 1, "left_total": 99, "concurrent": 2, "running": 1}
