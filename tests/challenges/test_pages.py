"""The participant pages: what each member of the cast sees, what outsiders of an invite-only
challenge do not, and organiser Markdown rendered without scripts."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from challenges import services
from challenges.models import Challenge, Team
from tests.factories import ChallengeFactory, PhaseFactory, accept_terms

pytestmark = pytest.mark.django_db


def page(client, url: str, status: int = 200) -> str:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


@pytest.fixture
def hidden(olga) -> Challenge:  # type: ignore[no-untyped-def]
    """An invite-only challenge that Olga organises."""
    item = ChallengeFactory(slug="hidden-ward", title="Hidden ward study",
                            visibility=Challenge.Visibility.INVITE_ONLY)
    item.organisers.add(olga)
    PhaseFactory(challenge=item, slug="round-1", title="Round one")
    return item


# --- the challenge list and page ---------------------------------------------------------


def test_the_list_shows_public_challenges_and_their_phases(client, challenge, phase) -> None:
    html = page(client, reverse("challenges:list"))

    assert "Readmission" in html and challenge.get_absolute_url() in html
    assert "Predict something clinical." in html
    assert "Leaderboard round" in html and "teams of up to 3" in html


def test_the_challenge_page_for_an_anonymous_visitor(client, challenge, phase, team_a) -> None:
    html = page(client, challenge.get_absolute_url())

    assert "<h1>Readmission</h1>" in html
    assert "to take part." in html and reverse("account_login") in html
    assert "Leaderboard round" in html and phase.get_absolute_url() in html
    assert "5/day, 100 total, 2 at once" in html
    assert "Team A" in html  # the teams list
    assert "Create team" not in html


def test_the_challenge_page_for_a_member(client, challenge, phase, team_a, alice) -> None:
    client.force_login(alice)

    html = page(client, challenge.get_absolute_url())

    assert team_a.get_absolute_url() in html and "(you are captain)" in html
    assert "You accepted the terms (version 1)." in html
    assert "Create team" not in html


def test_the_challenge_page_before_and_after_the_terms(client, challenge, phase, dave) -> None:
    client.force_login(dave)
    html = page(client, challenge.get_absolute_url())
    assert "Read and accept the terms" in html and "Create team" not in html

    accept_terms(challenge, dave)
    html = page(client, challenge.get_absolute_url())

    assert "Create team" in html and reverse("challenges:team_create",
                                             args=[challenge.slug]) in html


def test_the_challenge_page_for_its_organiser(client, challenge, phase, olga) -> None:
    client.force_login(olga)

    html = page(client, challenge.get_absolute_url())

    assert "<h1>Readmission</h1>" in html and "Leaderboard round" in html
    assert reverse("admin:index") in html  # staff get the admin link


def test_an_unknown_challenge_is_not_found(client, db) -> None:
    page(client, reverse("challenges:detail", args=["nope"]), status=404)


def test_the_terms_page(client, challenge, dave) -> None:
    Challenge.objects.filter(pk=challenge.pk).update(terms="## Rules\n\nNo **re-identification**.")
    client.force_login(dave)

    html = page(client, reverse("challenges:terms", args=[challenge.slug]))

    assert "Data-use terms: Readmission" in html
    assert "<h4>Rules</h4>" in html and "<strong>re-identification</strong>" in html
    assert "I accept these terms (version 1)" in html


# --- teams, invitations, profile ---------------------------------------------------------


def test_the_team_page_for_its_captain(client, challenge, team_a, alice) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)
    client.force_login(alice)

    html = page(client, team_a.get_absolute_url())

    assert "<h1>Team A</h1>" in html and "Members (2 of 3)" in html
    assert "alice" in html and "bob" in html and "captain" in html
    assert 'id="invite-form"' in html and invitation.get_absolute_url() in html
    assert "make captain" in html and "Leave team" in html


def test_the_team_page_mails_an_invitation_that_opens(client, challenge, team_a, alice, dave,
                                                     django_capture_on_commit_callbacks) -> None:
    client.force_login(alice)
    url = reverse("challenges:team_invite", args=[challenge.slug, team_a.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"email": "Dave@Example.org"}, follow=True)

    assert "Invitation created and sent to dave@example.org." in response.content.decode()
    [sent] = mail.outbox
    assert sent.to == ["dave@example.org"] and "Join team Team A" in sent.subject
    link = next(word for word in sent.body.split() if word.startswith("http://"))
    client.force_login(dave)
    assert "Team A" in page(client, link)


def test_a_refused_invitation_mails_nobody(client, challenge, team_a, bob,
                                           django_capture_on_commit_callbacks) -> None:
    client.force_login(bob)  # not the captain
    url = reverse("challenges:team_invite", args=[challenge.slug, team_a.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"email": "dave@example.org"}, follow=True)

    assert "Only the team captain can do that." in response.content.decode()
    assert mail.outbox == []


def test_the_team_page_for_a_team_mate(client, challenge, team_a, bob) -> None:
    client.force_login(bob)

    html = page(client, team_a.get_absolute_url())

    assert "Leave team" in html
    assert 'id="invite-form"' not in html and "make captain" not in html


def test_the_team_page_for_someone_without_a_team(client, challenge, team_a, dave) -> None:
    client.force_login(dave)

    html = page(client, team_a.get_absolute_url())

    assert "Ask to join" in html and "Leave team" not in html
    assert 'id="invite-form"' not in html


def test_the_team_page_hides_invitations_from_others(client, challenge, team_a, alice, bob,
                                                     carol) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)

    for user in (bob, carol):
        client.force_login(user)
        assert invitation.token not in page(client, team_a.get_absolute_url())
    client.logout()
    html = page(client, team_a.get_absolute_url())
    assert invitation.token not in html and "Ask to join" not in html


def test_the_invitation_page(client, challenge, team_a, alice, dave) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)
    url = invitation.get_absolute_url()

    html = page(client, url)
    assert "Join team Team A" in html and "Readmission" in html
    assert reverse("account_login") in html

    client.force_login(dave)
    # the terms come first, on the page, accepted together with joining
    assert "Accept the terms and join" in page(client, url)
    accept_terms(challenge, dave)
    assert 'id="accept-invitation"' in page(client, url)

    services.invitation_accept(token=invitation.token, user=dave)
    assert "This invitation has already been used." in page(client, url)


def test_an_unknown_invitation_is_not_found(client, db) -> None:
    page(client, reverse("challenges:invitation", args=["no-such-token"]), status=404)


def test_the_profile_page_lists_my_teams(client, challenge, team_a, bob) -> None:
    client.force_login(bob)

    html = page(client, reverse("challenges:profile"))

    assert "<h1>bob</h1>" in html and "bob@example.org" in html
    assert team_a.get_absolute_url() in html and challenge.get_absolute_url() in html


def test_the_profile_page_needs_a_login(client, db) -> None:
    response = client.get(reverse("challenges:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_bad_captain_choice_is_not_a_server_error(client, challenge, team_a, alice) -> None:
    client.force_login(alice)
    url = reverse("challenges:team_transfer", args=[challenge.slug, team_a.pk])

    assert client.post(url, {"user_id": "not-a-number"}).status_code == 404
    assert client.post(url, {}).status_code == 404
    team_a.refresh_from_db()
    assert team_a.captain == alice


# --- invite-only -------------------------------------------------------------------------


def test_an_invite_only_challenge_is_hidden_from_outsiders(client, hidden, dave) -> None:
    team = Team.objects.create(challenge=hidden, name="Insiders", captain=dave)
    for who in (None, dave):
        if who:
            client.force_login(who)
        assert "Hidden ward study" not in page(client, reverse("challenges:list"))
        page(client, hidden.get_absolute_url(), status=404)
        page(client, team.get_absolute_url(), status=404)
        assert client.get(reverse("challenges:terms", args=[hidden.slug])).status_code in (
            302, 404)  # anonymous: login first


def test_an_invite_only_challenge_is_visible_to_its_organiser(client, hidden, olga) -> None:
    client.force_login(olga)

    assert "Hidden ward study" in page(client, reverse("challenges:list"))
    html = page(client, hidden.get_absolute_url())
    assert "Round one" in html


def test_an_invite_only_challenge_is_visible_to_its_members(client, hidden, dave) -> None:
    accept_terms(hidden, dave)
    services.team_create(challenge=hidden, user=dave, name="Insiders")
    client.force_login(dave)

    assert "Hidden ward study" in page(client, reverse("challenges:list"))
    assert "Insiders" in page(client, hidden.get_absolute_url())


def test_the_list_marks_invite_only_challenges(client, hidden, olga) -> None:
    client.force_login(olga)

    assert "invite only" in page(client, reverse("challenges:list"))


def test_an_organiser_of_another_challenge_does_not_see_an_invite_only_one(
    client, hidden, challenge
) -> None:
    other_organiser = ChallengeFactory().organisers.create(username="otto", is_staff=True)
    client.force_login(other_organiser)

    page(client, hidden.get_absolute_url(), status=404)


# --- Markdown ----------------------------------------------------------------------------


def test_the_description_is_markdown_without_scripts(client, challenge) -> None:
    Challenge.objects.filter(pk=challenge.pk).update(description=(
        "# Background\n\nPredict **30-day** readmission.\n\n"
        "| col | meaning |\n|---|---|\n| age | years |\n\n"
        "<script>alert('stolen')</script>\n\n"
        "<img src=\"x.png\" onerror=\"alert('img')\">\n\n"
        "[click](javascript:alert('link'))\n"))

    html = page(client, challenge.get_absolute_url())

    assert "<h3>Background</h3>" in html
    assert "<strong>30-day</strong>" in html
    assert "<td>age</td>" in html
    assert "alert(" not in html
    assert "onerror" not in html and "javascript:" not in html
    assert html.count("<script") == html.count('<script src="/static/')  # only our own


def test_the_summary_is_plain_text(client, challenge) -> None:
    Challenge.objects.filter(pk=challenge.pk).update(summary="<b>bold</b> claim")

    html = page(client, challenge.get_absolute_url())

    assert "&lt;b&gt;bold&lt;/b&gt; claim" in html and "<b>bold</b>" not in html
