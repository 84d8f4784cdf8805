"""The attacks an ordinary team account tried on the hidden lane, on the real engine: a model
that encodes a hidden value in its exit code, or in how long it runs. What the team can read
(API, page, e-mail) says one of a few words; organisers still see everything; and the failed
probe costs quota like any other submission."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from heldout_kernel.contract import HIDDEN_LANE_MESSAGES
from scoring.pipeline import evaluate
from scoring.services import notify_team
from submissions import selectors
from tests.factories.submissions import a_period_later
from tests.pipeline.test_e2e import PREAMBLE, _hidden_ages

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

EXIT_WITH_AGE = PREAMBLE + """
if HIDDEN:
    sys.exit(int(rows[0]["age"]))
write_predictions()
"""
SLEEP_FOR_AGE = PREAMBLE + """
import time
if HIDDEN:
    time.sleep(int(rows[0]["age"]) / 20)
write_predictions()
"""


def api_body(user, submission) -> dict:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/submissions/{submission.uid}/")
    assert response.status_code == 200
    return response.json()


def page(client, user, submission) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client.get(reverse("submissions:detail", args=[submission.uid])).content.decode()


def test_the_exit_code_attack_learns_the_error_class_only(
    synthetic_phase, team, alice, olga, submit, runtime_image, client
) -> None:
    age = dict(_hidden_ages(synthetic_phase))["c000"]
    submission = submit(synthetic_phase, team, alice, EXIT_WITH_AGE)

    evaluate(submission.pk)
    a_period_later()  # the team is told the outcome
    notify_team(submission_pk=submission.pk)
    submission.refresh_from_db()

    assert (submission.status, submission.error_class) == ("failed", "nonzero_exit")
    assert submission.error_message == HIDDEN_LANE_MESSAGES["nonzero_exit"]
    body = api_body(alice, submission)
    hidden = next(run for run in body["runs"] if run["lane"] == "hidden")
    assert hidden == {**hidden, "exit_code": None, "duration_s": None, "started_at": None,
                      "error_class": "nonzero_exit", "log": None}
    assert f"code {age}" not in json.dumps(body) and f"code {age}" not in page(
        client, alice, submission)
    assert f"code {age}" not in mail.outbox[-1].body
    organiser = next(run for run in api_body(olga, submission)["runs"] if run["lane"] == "hidden")
    assert organiser["exit_code"] == age  # organisers debug with the details
    quota = selectors.quota_status(phase=synthetic_phase, team=team)
    assert quota.used_today == 1  # the probe was not free


def test_the_timing_attack_sees_no_run_time(
    synthetic_phase, team, alice, olga, submit, runtime_image
) -> None:
    age = dict(_hidden_ages(synthetic_phase))["c000"]
    submission = submit(synthetic_phase, team, alice, SLEEP_FOR_AGE)

    evaluate(submission.pk)
    a_period_later()  # the team is told the outcome
    submission.refresh_from_db()

    assert submission.status == "succeeded", submission.error_message
    body = api_body(alice, submission)
    hidden = next(run for run in body["runs"] if run["lane"] == "hidden")
    assert (hidden["duration_s"], hidden["started_at"], hidden["finished_at"]) == (None,) * 3
    for stamp in (body["started_at"], body["finished_at"]):
        assert stamp.endswith(":00Z")  # to the minute, not the microsecond
    organiser = next(run for run in api_body(olga, submission)["runs"] if run["lane"] == "hidden")
    assert organiser["duration_s"] >= age / 20
