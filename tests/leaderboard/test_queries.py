"""The leaderboard pages cost the same number of queries for 5 teams as for 50."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leaderboards.compute import recompute
from tests.leaderboard.conftest import many_teams

# Session + user (2), challenge and phase (2), organiser check, membership, snapshot; the
# phase page adds terms, quota counts and the team's own history (one result query per own
# submission: submissions.selectors.team_submissions does not prefetch results); a signed-in
# reader's pages ask for the challenge's announcement banners (one query when there are none);
# the phase page runs the upload's own checks to say why the form is closed (two more).
BUDGET = {"board": 9, "live": 7, "phase": 19}


def count_queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("user", ["anonymous", "alice", "olga"])
def test_page_queries_do_not_grow_with_the_number_of_teams(
    user, phase, cast, add_result, model_scores, client, alice, olga,
    django_assert_max_num_queries,
):
    if user != "anonymous":
        client.force_login({"alice": alice, "olga": olga}[user])
    args = [phase.challenge.slug, phase.slug, "public"]
    urls = {"board": reverse("leaderboards:board", args=args),
            "live": reverse("leaderboards:board_live", args=args),
            "phase": phase.get_absolute_url()}
    counts = {}
    for teams in (5, 50):
        many_teams(phase, add_result, model_scores, teams - len(counts) * 5)
        recompute(phase_pk=phase.pk)
        counts[teams] = {name: count_queries(client, url) for name, url in urls.items()}
    assert counts[5] == counts[50], counts
    for name, url in urls.items():
        with django_assert_max_num_queries(BUDGET[name]):
            client.get(url)
