"""Detection pages in a real headless Chromium, after a real run on the Docker engine: the
team's submission page draws its detections and the true lesions over the public sanity
films (the film images load), and the organiser's entry page draws the FROC curve. Both are
photographed at 1280 and 390 px (test-artifacts/browser/detection/) and must not scroll
sideways at 390 px."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from playwright.sync_api import BrowserContext, Page, expect

from challenges.bundles import import_challenge
from challenges.services import team_create
from leaderboards.compute import recompute
from scoring.pipeline import evaluate
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.browser.test_participant_pages import fits
from tests.bundles import detection_phase_spec, write_detection_bundle
from tests.factories import accept_terms
from tests.pipeline.conftest import make_bundle_zip, runtime_image  # noqa: F401 - a fixture
from tests.pipeline.test_detection import BRIGHTEST

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def _user(name: str, *, staff: bool = False):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user(name, f"{name}@example.org", f"pw-{name}-123",
                                                is_staff=staff)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _log_in(page: Page, name: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", name)
    page.fill("input[name=password]", f"pw-{name}-123")
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_contain_text(name)


@pytest.mark.usefixtures("runtime_image")
def test_detection_pages_show_overlays_and_the_froc(
        new_context: Callable[..., BrowserContext], artifacts: Path, tmp_path: Path,
        settings) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_SUBGROUP_MIN_CASES = 5  # the synthetic set is small; draw its FROC
    challenge, _ = import_challenge(write_detection_bundle(
        tmp_path / "bundle", n_films=60, phases=[detection_phase_spec()]))
    phase = challenge.phases.get()
    alice, olga = _user("alice"), _user("olga", staff=True)
    challenge.organisers.add(olga)
    accept_terms(challenge, alice)
    team = team_create(challenge=challenge, user=alice, name="Alpha")
    model = make_bundle_zip(tmp_path / "model.zip", BRIGHTEST)
    submission = submission_create(phase=phase, team=team, user=alice, kind="bundle",
                                   staged=stage_existing(model, filename="model.zip"))
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    recompute(phase_pk=phase.pk)
    folder = artifacts / "detection"

    page = new_context().new_page()
    _log_in(page, "alice")
    page.goto(submission.get_absolute_url())
    figures = page.locator("figure.overlay")
    expect(figures).to_have_count(6)
    expect(page.locator("figure.overlay circle.lesion").first).to_be_visible()
    expect(figures.first.locator("path.detection").first).to_be_attached()  # normal film too
    loaded = page.evaluate("""async () => Promise.all(
        [...document.querySelectorAll('figure.overlay image')].map(async (img) => {
            const response = await fetch(img.getAttribute('href'));
            return response.ok && response.headers.get('content-type') === 'image/png';
        }))""")
    assert loaded == [True] * 6
    fits(page, folder, "submission-overlays")

    organiser = new_context().new_page()
    _log_in(organiser, "olga")
    organiser.goto(f"/challenges/{challenge.slug}/phases/{phase.slug}/leaderboard/public/"
                   f"{submission.uid}/")
    chart = organiser.locator("svg[aria-label^='FROC']")
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(7)
    fits(organiser, folder, "entry-froc")
