"""A team's own pages in a real headless Chromium: the captain renames the team, copies an
invitation link (clipboard, and the fallback without one) and cancels it; a result shows
"being added to the leaderboard" until the board catches up; the team writes a note and
selects its final entry from the history table.

Every page visited (login, sign-up, profile, API tokens, team, submission, phase) is
photographed at 1280 and 390 px under test-artifacts/browser/participant/, and none may
scroll sideways at 390 px.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from challenges.models import Challenge, Invitation, Phase, Team
from leaderboards.compute import recompute
from submissions.models import Submission
from tests.factories import ResultFactory, SubmissionFactory, TeamFactory, add_member
from tests.factories.submissions import told_finish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-alice-123"


def fits(page: Page, folder: Path, name: str) -> None:
    """Photograph the page at 1280 and 390 px; at 390 px it must not scroll sideways."""
    folder.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert widths["inner"] == 390, widths
    assert widths["scroll"] <= widths["inner"], f"{name} scrolls sideways at 390 px: {widths}"


def scored(phase: Phase, team: Team, seed: int) -> Submission:
    """A succeeded submission with a stored result, as the pipeline leaves it."""
    submission = SubmissionFactory(phase=phase, team=team, status=Submission.Status.SUCCEEDED,
                                   attempts=1, started_at=timezone.now(),
                                   finished_at=told_finish())
    n = phase.evaluation_set.n_cases
    scores = np.random.default_rng(seed).random(n)
    metrics = {part: {"auroc": 0.5, "auprc": 0.3, "f1": 0.4, "brier": 0.3}
               for part in ("public", "private", "all")}
    ResultFactory(submission=submission, scores=scores, metrics=metrics)
    return submission


@pytest.fixture
def alpha(synthetic_challenge: Challenge) -> Team:
    users = get_user_model().objects
    alice = users.create_user("alice", "alice@example.org", PASSWORD)
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    team = TeamFactory(challenge=synthetic_challenge, name="Alpha", captain=alice)
    add_member(team, users.create_user("bob", "bob@example.org", "pw-bob-123"))
    return team


def log_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_contain_text("alice")


def test_the_account_pages_fit_a_phone(
    new_context: Callable[..., BrowserContext], alpha: Team, artifacts: Path,
) -> None:
    folder = artifacts / "participant"
    anonymous = new_context().new_page()
    for name, url in (("login", "/accounts/login/"), ("signup", "/accounts/signup/")):
        anonymous.goto(url)
        expect(anonymous.locator("main form")).to_be_visible()
        fits(anonymous, folder, name)

    page = new_context().new_page()
    log_in(page)
    page.goto("/accounts/profile/")
    expect(page.locator("main")).to_contain_text("Alpha")
    fits(page, folder, "profile")
    page.goto("/accounts/tokens/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    fits(page, folder, "tokens")


def test_a_captain_runs_the_team_from_its_pages(
    new_context: Callable[..., BrowserContext], alpha: Team, artifacts: Path,
) -> None:
    folder = artifacts / "participant"
    phase = alpha.challenge.phases.get()
    Phase.objects.filter(pk=phase.pk).update(selection_limit=1)
    first, second = scored(phase, alpha, 1), scored(phase, alpha, 2)
    page = new_context(permissions=["clipboard-read", "clipboard-write"]).new_page()
    log_in(page)

    # Rename; a taken name would be refused with a message (tested without a browser).
    page.goto(alpha.get_absolute_url())
    page.get_by_label("New name").fill("Alpha Prime")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator(".messages")).to_contain_text("The team is now called “Alpha Prime”.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha Prime")

    # A link invitation: copy it to the clipboard, then without a clipboard.
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_label("Invitation link").input_value()
    assert link.endswith(Invitation.objects.get(team=alpha).get_absolute_url())
    copy = page.locator("button[data-copy]")
    expect(copy).to_have_text("Copy link")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    fits(page, folder, "team")
    page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.locator("button[data-copy]").click()
    expect(page.locator("button[data-copy]")).to_have_text("Select and copy the link")
    selected = page.evaluate("(() => { const box = document.activeElement;"
                             " return box.value.slice(box.selectionStart, box.selectionEnd); })()")
    assert selected == link
    expect(page.locator("a.copy-fallback")).to_have_attribute("href", link)

    # Cancel it: the link now says so, to anyone who opens it.
    page.get_by_role("button", name="Cancel the invitation").click()
    expect(page.locator(".messages")).to_contain_text("Invitation cancelled")
    expect(page.get_by_label("Invitation link")).to_have_count(0)
    stranger = new_context().new_page()
    stranger.goto(link)
    expect(stranger.locator("#invitation-ended")).to_contain_text(
        "This invitation was cancelled or has expired")
    expect(stranger.locator("main").get_by_role("link", name="sign up")).to_have_count(0)

    # The newest result waits for the board, then the page notices by itself.
    page.goto(second.get_absolute_url())
    pending = page.locator("#board-pending")
    expect(pending).to_contain_text("being added to the leaderboard")
    page.get_by_label(re.compile("Add a note")).fill("age-only logistic model")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator(".messages")).to_contain_text("Note saved.")
    expect(page.locator("p.note")).to_have_text("age-only logistic model")
    fits(page, folder, "submission")
    assert recompute(phase_pk=phase.pk)
    expect(pending).to_have_count(0, timeout=10_000)
    expect(page.locator("#live [data-final]")).to_have_count(1)

    # The history: the note, and the final entry chosen (limit 1) with refusals as messages.
    page.goto(phase.get_absolute_url())
    history = page.locator("#history")
    expect(history.locator(f"#submission-{second.number}")).to_contain_text(
        "age-only logistic model")
    history.get_by_role("button", name=f"Select #{first.number}").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Submission #{first.number} is selected as a final entry.")
    expect(page.locator(f"#submission-{first.number} .badge")).to_have_text("selected")
    page.locator("#history").get_by_role("button", name=f"Select #{second.number}").click()
    expect(page.locator(".messages")).to_contain_text(
        "Your team has already selected 1 final entries (the limit).")
    fits(page, folder, "phase-history")
    page.locator("#history").get_by_role("button", name=f"Unselect #{first.number}").click()
    expect(page.locator(".messages")).to_contain_text("is no longer a final entry")
    assert not Submission.objects.filter(team=alpha, selected=True).exists()
