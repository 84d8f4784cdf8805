"""Issue #21, items 2 and 7 in a real headless Chromium (its textareas post CRLF line endings,
which the old admin took for new terms): an organiser changes a quota and no one is asked to
accept the terms again; she changes the terms, is warned and confirms; she posts an
announcement, which reaches a participant by e-mail and as a banner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from allauth.account.models import EmailAddress
from celery import current_app
from django.contrib.auth import get_user_model
from django.core import mail
from playwright.sync_api import Page, expect

from challenges import selectors
from challenges.models import Challenge, Phase
from core.models import AuditEvent
from tests.factories import TeamFactory, accept_terms

pytestmark = [pytest.mark.browser]


@pytest.fixture
def eager() -> Iterator[None]:
    import challenges.tasks  # noqa: F401 - registered as a worker's autodiscovery would

    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


def _login(page: Page, path: str, username: str, password: str) -> None:
    page.goto(path)
    page.fill("input[name=username], input[name=login]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")


def test_an_organiser_edits_a_quota_then_the_terms_then_announces(
        new_context, synthetic_challenge: Challenge, eager) -> None:
    users = get_user_model().objects
    olga = users.create_user("olga", "olga@example.org", "pw-olga-123", is_staff=True)
    alice = users.create_user("alice", "alice@example.org", "pw-alice-123")
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    challenge = synthetic_challenge
    challenge.organisers.add(olga)
    accept_terms(challenge, alice)
    TeamFactory(challenge=challenge, name="Alpha", captain=alice)
    page = new_context().new_page()
    _login(page, "/admin/login/?next=/admin/", "olga", "pw-olga-123")

    page.goto(f"/admin/challenges/challenge/{challenge.pk}/change/")
    page.fill("input[name$='-0-quota_per_day']", "9")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Phase.objects.get(challenge=challenge).quota_per_day == 9
    challenge.refresh_from_db()
    assert challenge.terms_version == 1 and challenge.terms == "Test terms.\n"
    assert selectors.has_accepted_terms(challenge=challenge, user=alice)

    page.fill("#id_terms", "Test terms.\nNo re-identification.")
    page.click("input[name=_continue]")
    expect(page.locator(".field-confirm_terms")).to_contain_text(
        "ask every participant to accept the terms again: 1 person accepted version 1")
    assert Challenge.objects.get(pk=challenge.pk).terms_version == 1
    page.check("#id_confirm_terms")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("The terms are now version 2")
    assert Challenge.objects.get(pk=challenge.pk).terms_version == 2
    fields = [e.data["fields"] for e in AuditEvent.objects.filter(verb="challenge.edited")
              .order_by("id")]
    assert fields == [[], ["terms"]]

    page.click("#announce-link")
    page.fill("#id_title", "Deadline extended")
    page.fill("#id_body", "The **deadline** moves to 1 March.")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("being e-mailed")
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]

    participant = new_context().new_page()
    _login(participant, "/accounts/login/", "alice", "pw-alice-123")
    participant.goto(challenge.get_absolute_url())
    banner = participant.locator(".announcement")
    expect(banner).to_contain_text("Deadline extended")
    expect(banner.locator(".prose strong")).to_have_text("deadline")
