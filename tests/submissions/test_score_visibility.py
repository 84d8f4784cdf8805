"""A team sees only public-part scores until the private board is visible."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import ResultFactory

PUBLIC, PRIVATE, ALL = "0.6111", "0.9222", "0.7333"


@pytest.fixture
def scored(phase, team_a):  # type: ignore[no-untyped-def]
    result = ResultFactory(
        submission__phase=phase, submission__team=team_a,
        metrics={"all": {"auroc": 0.73333}, "public": {"auroc": 0.61111},
                 "private": {"auroc": 0.92222}})
    return result.submission


def _page(client, user, submission) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client.get(reverse("submissions:detail", args=[submission.uid])).content.decode()


@pytest.mark.django_db
def test_during_the_phase_the_team_sees_only_the_public_part(client, alice, scored):
    page = _page(client, alice, scored)
    assert PUBLIC in page
    assert PRIVATE not in page and ALL not in page


@pytest.mark.django_db
def test_the_phase_page_history_shows_the_public_part(client, alice, scored, phase):
    client.force_login(alice)
    page = client.get(phase.get_absolute_url()).content.decode()
    assert PRIVATE not in page and ALL not in page


@pytest.mark.django_db
def test_the_organiser_sees_every_part(client, olga, scored):
    page = _page(client, olga, scored)
    assert PUBLIC in page and PRIVATE in page and ALL in page


@pytest.mark.django_db
def test_after_close_the_team_sees_every_part(client, alice, scored, phase):
    phase.opens_at = timezone.now() - timedelta(days=10)
    phase.closes_at = timezone.now() - timedelta(days=1)
    phase.save()
    page = _page(client, alice, scored)
    assert PUBLIC in page and PRIVATE in page and ALL in page
