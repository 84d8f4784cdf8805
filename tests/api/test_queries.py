"""List endpoints read in a fixed number of queries, however many rows they return."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from challenges.models import Phase
from tests.api.conftest import finish, submit, v1
from tests.factories import ChallengeFactory, PhaseFactory, add_member


def queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    # Warm up: a token's first request in a minute also records its use (and audits it).
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_it_lists_submissions_in_constant_queries(api, alice, phase, team_a, evaluation_set):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(quota_per_day=20, quota_concurrent=20)
    phase.refresh_from_db()
    client = api(alice)
    url = v1("challenges/readmission/phases/leaderboard/submissions/")
    finish(submit(phase, team_a, alice))
    one = queries(client, url)
    for _ in range(5):
        finish(submit(phase, team_a, alice))
    assert queries(client, url) == one


def test_it_lists_challenges_in_constant_queries(api, dave):  # type: ignore[no-untyped-def]
    client = api(dave)
    PhaseFactory(challenge=ChallengeFactory())
    one = queries(client, v1("challenges/"))
    for _ in range(5):
        challenge = ChallengeFactory()
        PhaseFactory.create_batch(2, challenge=challenge)
    assert queries(client, v1("challenges/")) == one


def test_it_shows_a_team_in_constant_queries(api, alice, dave, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    url = v1("challenges/readmission/teams/mine/")
    two = queries(client, url)
    add_member(team_a, dave)
    assert queries(client, url) == two
