"""The foundation flow in a real browser: two people sign up (with mandatory e-mail
verification), accept a challenge's terms and end up in one team through an invitation.

Screenshots land in test-artifacts/browser/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core.mail import EmailMessage
from playwright.sync_api import BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from challenges.models import Challenge, Invitation, Membership, Team, TermsAcceptance

PASSWORD = "Rounded-Heron-42!"
# --bg in static/heldout.css; the browser's default would be white.
STYLED_BACKGROUND = "rgb(247, 248, 250)"


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"{name}.png", full_page=True)


def assert_styled(page: Page) -> None:
    """heldout.css reached the browser (served by the live server's static handler)."""
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == STYLED_BACKGROUND, f"heldout.css did not apply on {page.url}"


def confirmation_link(outbox: list[EmailMessage], email: str) -> str:
    mails = [m for m in outbox if email in m.to and "Confirm Your Email" in m.subject]
    assert len(mails) == 1, f"expected one verification mail to {email}, got {len(mails)}"
    match = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mails[0].body)
    assert match, mails[0].body
    return match.group(0)


def sign_up_and_log_in(page: Page, outbox: list[EmailMessage], *, username: str,
                       email: str, from_invitation: bool = False) -> None:
    """Sign up on the form (opened from an invitation's "sign up" link when
    `from_invitation`, else directly), confirm the address and log in."""
    if not from_invitation:
        page.goto("/accounts/signup/")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text(f"Confirmation email sent to {email}.")

    page.goto(confirmation_link(outbox, email))
    expect(page.locator("main")).to_contain_text(
        f"Please confirm that {email} is an email address for user {username}.")
    page.get_by_role("button", name="Confirm").click()
    # Mandatory verification: confirming does not log in, it leads to the login form.
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.locator(".messages")).to_contain_text(f"You have confirmed {email}.")

    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    if not from_invitation:
        expect(page.get_by_role("heading", name="Challenges", level=1)).to_be_visible()
    expect(page.locator("header nav")).to_contain_text(username)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def expect_final_team(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha")
    expect(page.get_by_role("heading", name="Members (2 of 3)")).to_be_visible()
    members = page.locator("ul.members > li")
    expect(members).to_have_count(2)
    expect(members.nth(0)).to_contain_text("alice")
    expect(members.nth(0).locator(".badge")).to_have_text("captain")
    expect(members.nth(1)).to_contain_text("bob")
    expect(members.nth(1).locator(".badge")).to_have_count(0)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_takes_alice_and_bob_from_sign_up_into_one_team(
    new_context: Callable[..., BrowserContext], live_server: LiveServer,
    mailoutbox: list[EmailMessage], synthetic_challenge: Challenge, artifacts: Path,
) -> None:
    challenge = synthetic_challenge
    detail_url = live_server.url + challenge.get_absolute_url()

    # 1. Alice signs up, verifies her address and logs in.
    alice = new_context().new_page()
    sign_up_and_log_in(alice, mailoutbox, username="alice", email="alice@example.org")
    assert_styled(alice)
    shot(alice, artifacts, "01-alice-challenge-list")

    # 2. She must accept the terms before she can form a team.
    alice.get_by_role("link", name=challenge.title).click()
    expect(alice).to_have_url(detail_url)
    my_team = alice.locator("#my-team")
    expect(my_team).to_contain_text("Accept the data-use terms to download data and form a team.")
    expect(my_team.get_by_role("button", name="Create team")).to_have_count(0)
    expect(alice.locator("tbody tr").first).to_contain_text("open")
    shot(alice, artifacts, "02-alice-challenge-terms-required")

    my_team.get_by_role("link", name="Read and accept the terms").click()
    expect(alice.get_by_role("heading", level=1)).to_have_text(
        f"Data-use terms: {challenge.title}")
    expect(alice.locator(".prose")).to_contain_text("Test terms.")
    alice.get_by_role("button", name=re.compile(r"^I accept these terms")).click()
    expect(alice).to_have_url(detail_url)
    expect(alice.locator(".messages")).to_contain_text("you accepted the data-use terms")
    expect(alice.get_by_text(f"You accepted the terms (version {challenge.terms_version}).")
           ).to_be_visible()

    alice.get_by_label("Team name").fill("Alpha")
    alice.get_by_role("button", name="Create team").click()
    expect(alice.get_by_role("heading", level=1)).to_have_text("Alpha")
    expect(alice.locator(".messages")).to_contain_text("Team “Alpha” created; you are its captain.")

    # 3. She invites Bob by e-mail; the link appears on the team page.
    alice.get_by_label("E-mail", exact=True).fill("bob@example.org")
    alice.get_by_role("button", name="Create invitation").click()
    expect(alice.locator(".messages")).to_contain_text(
        "Invitation created and sent to bob@example.org.")
    link_box = alice.get_by_label("Invitation link")
    expect(link_box).to_have_count(1)
    invitation_url = link_box.input_value()
    assert re.fullmatch(re.escape(live_server.url) + r"/invitations/[\w-]+/", invitation_url)
    expect(alice.locator("ul.invitations > li")).to_contain_text("bob@example.org")
    shot(alice, artifacts, "03-alice-team-with-invitation")
    invitation_mails = [m for m in mailoutbox if m.to == ["bob@example.org"]]
    assert len(invitation_mails) == 1
    assert invitation_url in invitation_mails[0].body

    # 4. Bob, in his own browser, follows the link, signs up from it and comes back to it
    #    (through the mandatory e-mail confirmation and the login form).
    bob = new_context().new_page()
    bob.goto(invitation_url)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Join team Alpha")
    shot(bob, artifacts, "04-bob-invitation-anonymous")
    bob.locator("main").get_by_role("link", name="sign up", exact=True).click()
    expect(bob).to_have_url(re.compile(r"/accounts/signup/\?next=/invitations/"))
    sign_up_and_log_in(bob, mailoutbox, username="bob", email="bob@example.org",
                       from_invitation=True)
    expect(bob).to_have_url(invitation_url)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Join team Alpha")

    # 5. There he reads the terms and accepts them and joins with one button.
    expect(bob.locator("#invitation-terms")).to_contain_text("Test terms.")
    expect(bob.get_by_role("button", name="Join Alpha")).to_have_count(0)
    shot(bob, artifacts, "05-bob-invitation-terms-and-join")
    bob.get_by_role("button", name="Accept the terms and join").click()
    expect(bob.locator(".messages")).to_contain_text("Welcome to team Alpha!")
    expect_final_team(bob)
    expect(bob.get_by_role("button", name="Leave team")).to_be_visible()
    assert_styled(bob)
    shot(bob, artifacts, "06-team-page-final")

    # Alice's view: same team, and the used invitation is no longer open.
    alice.reload()
    expect_final_team(alice)
    expect(alice.locator("ul.invitations")).to_have_count(0)
    shot(alice, artifacts, "07-team-page-captain-view")

    team = Team.objects.get(challenge=challenge, name="Alpha")
    assert team.captain.username == "alice"
    assert set(Membership.objects.filter(team=team).values_list("user__username", flat=True)) \
        == {"alice", "bob"}
    assert set(TermsAcceptance.objects.filter(
        challenge=challenge, version=challenge.terms_version
    ).values_list("user__username", flat=True)) == {"alice", "bob"}
    invitation = Invitation.objects.get(team=team)
    assert invitation.used_by is not None and invitation.used_by.username == "bob"
    assert set(EmailAddress.objects.filter(verified=True).values_list("email", flat=True)) \
        == {"alice@example.org", "bob@example.org"}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_fits_the_challenge_page_on_a_phone(
    new_context: Callable[..., BrowserContext], synthetic_challenge: Challenge, artifacts: Path,
) -> None:
    # is_mobile makes Chromium honour the viewport meta tag as a phone does; without the tag
    # it would lay the page out 980 px wide.
    page = new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                       has_touch=True, device_scale_factor=2).new_page()
    page.goto(synthetic_challenge.get_absolute_url())
    expect(page.locator("main > h1")).to_have_text(synthetic_challenge.title)
    expect(page.get_by_role("link", name="Leaderboard round")).to_be_visible()
    assert_styled(page)
    # The phases table collapses into labelled rows below 760 px.
    expect(page.locator(".table thead")).to_be_hidden()

    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    shot(page, artifacts, "phone-challenge-page")
    assert widths["inner"] == 390, widths
    assert widths["scroll"] <= widths["inner"], f"the page scrolls sideways: {widths}"
