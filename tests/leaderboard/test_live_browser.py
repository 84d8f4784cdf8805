"""In a real headless Chromium: an open leaderboard page picks up a new score by itself."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from leaderboards.compute import recompute
from tests.factories import TeamFactory, UserFactory

pytestmark = [pytest.mark.browser]


def test_an_open_board_shows_a_new_score_without_a_reload(
    transactional_db, phase, cast, add_result, model_scores, new_context
):
    recompute(phase_pk=phase.pk)
    page = new_context().new_page()
    page.goto(reverse("leaderboards:board", args=[phase.challenge.slug, phase.slug, "public"]))
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("svg.chart")).to_be_visible()
    newcomer = TeamFactory(challenge=phase.challenge, name="Late Team",
                           captain=UserFactory(username="late"))
    add_result(newcomer, model_scores["five"])  # ties the leader
    recompute(phase_pk=phase.pk)
    # The page polls its partial every 10 s.
    expect(rows).to_have_count(4, timeout=25_000)
    expect(page.locator("#leaderboard")).to_contain_text("Late Team")
    late = page.locator("#leaderboard tbody tr", has_text="Late Team")
    expect(late.locator(".badge.tie")).to_be_visible()  # identical to the leader: rank 1, tied
    expect(late.locator("td").first).to_have_text("1")
