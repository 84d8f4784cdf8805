"""Issue #21, item 7 (c) and item 3's admin side: the organisers' dashboard refreshes its live
parts by itself, leads to the boards, the submissions and the failures (by error class) of
its challenge only, and says how many results are stale, with the way to re-score them."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from unittest import mock

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from core.models import AuditEvent
from core.services import audit_record
from scoring.models import Result
from submissions.models import Submission
from tests.factories import (
    ChallengeFactory,
    EvaluationSetFactory,
    PhaseFactory,
    ResultFactory,
    SubmissionFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


class World:
    """Olga's challenge (failures of two classes, two results) and Oscar's (the same)."""

    def __init__(self, challenge: Any, team: Any) -> None:
        self.challenge = challenge
        self.oscar = UserFactory(username="oscar", is_staff=True)
        self.theirs = ChallengeFactory(slug="theirs", title="Their secret")
        self.theirs.organisers.add(self.oscar)
        their_team = TeamFactory(challenge=self.theirs, name="Their team")
        self.rows: dict[str, dict[str, Any]] = {}
        for key, owner, on in (("mine", challenge, team), ("theirs", self.theirs, their_team)):
            data = EvaluationSetFactory(challenge=owner, n_cases=4)
            phase = PhaseFactory(challenge=owner, slug="round-1", evaluation_set=data)
            self.rows[key] = {
                "phase": phase,
                "timeout": SubmissionFactory(phase=phase, team=on, status="failed",
                                             error_class="timeout"),
                "oom": SubmissionFactory(phase=phase, team=on, status="failed",
                                         error_class="out_of_memory"),
                "fresh": ResultFactory(submission__phase=phase, submission__team=on),
                "stale": ResultFactory(submission__phase=phase, submission__team=on),
            }


@pytest.fixture
def world(challenge, team_a) -> World:
    built = World(challenge, team_a)
    for owner in (challenge, built.theirs):
        audit_record(verb="test.event", challenge=owner)
    return built


def dashboard(challenge: Any) -> str:
    return reverse("admin:challenges_challenge_dashboard", args=[challenge.pk])


def live(challenge: Any) -> str:
    return reverse("admin:challenges_challenge_dashboard_live", args=[challenge.pk])


def links(html: str) -> dict[str, str]:
    """Link text (tags stripped) -> href, for the links of a page."""
    found = {}
    content = html[html.index('id="content-main"'):]  # not the admin's own menu
    for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', content, re.S):
        found[" ".join(re.sub(r"<[^>]+>", " ", text).split())] = unescape(href)
    return found


def listed(client: Any, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    assert "?e=1" not in response.get("Location", ""), url  # an unknown filter
    return {row.pk for row in response.context["cl"].result_list}


def stale_results(*results: Result) -> Any:
    """Result.is_stale true for `results`, false for any other. Where results record what
    they were scored with, staleness follows that record (scoring.staleness asks once per
    phase and record), so these results get a record of their own."""
    ids = {result.pk for result in results}
    if any(f.name == "scored_with" for f in Result._meta.concrete_fields):
        Result.objects.filter(pk__in=ids).update(scored_with="labels since replaced")
        stale = property(lambda r: r.scored_with == "labels since replaced")
    else:
        stale = property(lambda r: r.pk in ids)
    return mock.patch.object(Result, "is_stale", stale, create=True)


def test_the_dashboard_leads_to_her_submissions_failures_and_boards(client, world, olga):
    mine = world.rows["mine"]
    client.force_login(olga)

    page = client.get(dashboard(world.challenge)).content.decode()
    found = links(page)

    everything = {mine["timeout"].pk, mine["oom"].pk, mine["fresh"].submission.pk,
                  mine["stale"].submission.pk}
    assert listed(client, found["Submissions"]) == everything
    assert listed(client, found["failures"]) == {mine["timeout"].pk, mine["oom"].pk}
    assert listed(client, found["timeout The model ran out of time"]) == {mine["timeout"].pk}
    assert listed(client, found["out_of_memory The model ran out of memory"]) == {
        mine["oom"].pk}
    for board in ("public", "private"):
        url = reverse("leaderboards:board", args=[world.challenge.slug, "round-1", board])
        assert url in found.values()
    assert client.get(found["public"]).status_code == 200
    events = listed(client, found["all of this challenge's events"])
    assert events and events == set(AuditEvent.objects.filter(
        challenge_id=world.challenge.pk).values_list("pk", flat=True))
    assert found["post an announcement"].endswith(f"?challenge={world.challenge.pk}")
    assert 'id="export-bundle"' in page
    assert "Their secret" not in page


def test_the_dashboard_refreshes_its_live_part_by_itself(client, world, olga, team_a):
    client.force_login(olga)
    page = client.get(dashboard(world.challenge)).content.decode()

    assert f'data-poll-url="{live(world.challenge)}"' in page
    assert 'data-poll-interval="15000"' in page and "heldout.js" in page
    before = client.get(live(world.challenge))
    SubmissionFactory(phase=world.rows["mine"]["phase"], team=team_a)  # queued meanwhile
    after = client.get(live(world.challenge))

    assert before.status_code == after.status_code == 200
    assert "no-store" in after["Cache-Control"]
    text = after.content.decode()
    assert "<html" not in text and 'id="queue"' in text and 'id="failures"' in text
    assert "0 queued" in before.content.decode() and "1 queued" in text


def test_the_live_part_is_only_for_the_challenges_organisers(client, world, alice):
    for user, statuses in ((world.oscar, {403}), (alice, {302}), (None, {302})):
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.get(live(world.challenge))
        assert response.status_code in statuses, (user, response.status_code)
        assert b"queued" not in response.content


def test_stale_results_are_counted_listed_and_re_scored_from_the_dashboard(
        client, world, olga, django_capture_on_commit_callbacks):
    mine, theirs = world.rows["mine"], world.rows["theirs"]
    client.force_login(olga)

    with stale_results(mine["stale"], theirs["stale"]):
        page = client.get(dashboard(world.challenge)).content.decode()
        found = links(page)
        assert "1 result is stale" in page
        assert listed(client, found["See them"]) == {mine["stale"].pk}
        rescore_list = found["re-score them"]
        assert listed(client, rescore_list) == {mine["stale"].submission.pk}
        results = client.get(reverse("admin:scoring_result_changelist")).content.decode()
        assert results.count('alt="True"') == 1  # the Stale column, one row of hers

        with mock.patch("core.dispatch.send", autospec=True) as sent, \
                django_capture_on_commit_callbacks(execute=True):
            response = client.post(rescore_list, {
                "action": "rescore",
                helpers.ACTION_CHECKBOX_NAME: [mine["stale"].submission.pk]})

    assert response.status_code == 302
    assert Submission.objects.get(pk=mine["stale"].submission.pk).status == "queued"
    assert Submission.objects.get(pk=theirs["stale"].submission.pk).status == "succeeded"
    (name,), kwargs = sent.call_args
    assert name == "scoring.tasks.evaluate_submission"
    assert kwargs["submission_pk"] == mine["stale"].submission.pk


def test_with_no_stale_result_the_dashboard_says_nothing_of_them(client, world, olga):
    client.force_login(olga)

    page = client.get(dashboard(world.challenge)).content.decode()

    assert "stale-results" not in page
    url = reverse("admin:scoring_result_changelist") + "?stale=yes"
    assert listed(client, url) == set()
    assert listed(client, reverse("admin:scoring_result_changelist") + "?stale=no") == {
        world.rows["mine"]["fresh"].pk, world.rows["mine"]["stale"].pk}
