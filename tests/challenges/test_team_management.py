"""What a captain does with the team in the browser (rename it, cancel and copy
invitations) and how an invitee gets from the invitation link into the team: signing up
returns to the invitation, and accepting the terms and joining is one step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from challenges import services
from challenges.exceptions import InvitationInvalid, NotCaptain, TeamError, TermsNotAccepted
from challenges.models import Invitation, Membership, Team, TermsAcceptance
from core.models import AuditEvent
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def events(challenge: Any, verb: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(challenge_id=challenge.pk, verb=verb))


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def invitation(team_a, alice) -> Invitation:  # type: ignore[no-untyped-def]
    return services.invitation_create(team=team_a, user=alice)


# --- cancelling invitations --------------------------------------------------------------


def test_it_cancels_an_unused_invitation_and_audits_it(invitation, team_a, alice, dave) -> None:
    services.invitation_cancel(invitation_pk=invitation.pk, team=team_a, user=alice)

    invitation.refresh_from_db()
    assert invitation.expires_at <= timezone.now() and invitation.used_at is None
    [event] = events(team_a.challenge, "invitation.cancelled")
    assert event.actor_id == alice.pk and event.data["invitation"] == invitation.pk
    with pytest.raises(InvitationInvalid, match="was cancelled or has expired"):
        services.invitation_accept(token=invitation.token, user=dave)
    assert not Membership.objects.filter(user=dave).exists()


def test_only_the_captain_cancels_and_only_unused_invitations(
        invitation, team_a, alice, bob, dave) -> None:
    with pytest.raises(NotCaptain):
        services.invitation_cancel(invitation_pk=invitation.pk, team=team_a, user=bob)
    services.terms_accept(challenge=team_a.challenge, user=dave)
    services.invitation_accept(token=invitation.token, user=dave)
    with pytest.raises(TeamError, match="already been used"):
        services.invitation_cancel(invitation_pk=invitation.pk, team=team_a, user=alice)
    assert events(team_a.challenge, "invitation.cancelled") == []


def test_a_captain_cannot_cancel_another_teams_invitation(invitation, team_c, carol) -> None:
    with pytest.raises(TeamError, match="no such invitation"):
        services.invitation_cancel(invitation_pk=invitation.pk, team=team_c, user=carol)
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now()


def test_the_team_page_cancels_an_invitation_and_its_link_says_so(
        client, invitation, team_a, alice, dave) -> None:
    client.force_login(alice)
    page = client.get(team_a.get_absolute_url()).content.decode()
    link = f"http://testserver{invitation.get_absolute_url()}"
    assert f'data-copy="{link}"' in page and "Copy link" in page  # the clipboard button
    assert f'href="{link}"' in page  # the plain link when there is no clipboard

    cancel = reverse("challenges:invitation_cancel", args=[team_a.challenge.slug, team_a.pk,
                                                           invitation.pk])
    response = client.post(cancel, follow=True)
    assert "Invitation cancelled: its link no longer works." in messages_of(response)
    assert link not in response.content.decode()  # no longer listed as open

    client.force_login(dave)
    services.terms_accept(challenge=team_a.challenge, user=dave)
    shown = client.get(invitation.get_absolute_url()).content.decode()
    assert "This invitation was cancelled or has expired" in shown
    assert "accept-invitation" not in shown
    refused = client.post(invitation.get_absolute_url(), follow=True)
    assert "This invitation was cancelled or has expired; ask the team's captain for a new one." \
        in messages_of(refused)
    assert not Membership.objects.filter(user=dave).exists()


def test_a_team_mate_cannot_cancel_through_the_page(client, invitation, team_a, bob) -> None:
    client.force_login(bob)
    cancel = reverse("challenges:invitation_cancel", args=[team_a.challenge.slug, team_a.pk,
                                                           invitation.pk])
    response = client.post(cancel, follow=True)
    assert "Only the team captain can do that." in messages_of(response)
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now()


# --- renaming ------------------------------------------------------------------------------


def test_the_captain_renames_the_team_and_it_is_audited(team_a, alice) -> None:
    services.team_rename(team=team_a, user=alice, name="  Alpha  ")

    assert Team.objects.get(pk=team_a.pk).name == "Alpha"
    [event] = events(team_a.challenge, "team.renamed")
    assert event.data == {"from": "Team A", "to": "Alpha"} and event.actor_id == alice.pk


def test_a_rename_keeps_names_unique_ignoring_case(team_a, team_c, alice) -> None:
    with pytest.raises(TeamError, match="A team called “team c” already exists"):
        services.team_rename(team=team_a, user=alice, name="team c")
    assert Team.objects.get(pk=team_a.pk).name == "Team A"
    assert events(team_a.challenge, "team.renamed") == []


def test_a_name_may_repeat_in_another_challenge(team_a, alice, alice_elsewhere) -> None:
    services.team_rename(team=team_a, user=alice, name=alice_elsewhere.name)
    assert Team.objects.get(pk=team_a.pk).name == alice_elsewhere.name


@pytest.fixture
def alice_elsewhere(db):  # type: ignore[no-untyped-def]
    return TeamFactory(name="Elsewhere United")


def test_only_the_captain_renames(team_a, bob) -> None:
    with pytest.raises(NotCaptain):
        services.team_rename(team=team_a, user=bob, name="Bob's team")


def test_the_team_page_renames_and_explains_a_taken_name(client, team_a, team_c, alice) -> None:
    client.force_login(alice)
    url = reverse("challenges:team_rename", args=[team_a.challenge.slug, team_a.pk])

    taken = client.post(url, {"name": "TEAM C"}, follow=True)
    assert "A team called “TEAM C” already exists in this challenge." in messages_of(taken)

    renamed = client.post(url, {"name": "Alpha"}, follow=True)
    assert "The team is now called “Alpha”." in messages_of(renamed)
    assert "<h1>Alpha</h1>" in renamed.content.decode()

    too_long = client.post(url, {"name": "x" * 81}, follow=True)
    assert "Give your team a name of at most 80 characters." in messages_of(too_long)


def test_the_rename_form_is_for_the_captain_only(client, team_a, bob) -> None:
    client.force_login(bob)
    assert "rename-form" not in client.get(team_a.get_absolute_url()).content.decode()


# --- from the invitation link into the team ---------------------------------------------


def test_the_invitation_page_sends_sign_up_and_log_in_back_to_it(client, invitation) -> None:
    html = client.get(invitation.get_absolute_url()).content.decode()
    back = f"?next=/invitations/{invitation.token}/"
    assert f'href="{reverse("account_signup")}{back}"' in html
    assert f'href="{reverse("account_login")}{back}"' in html


def test_after_signing_up_the_first_landing_returns_to_the_invitation(
        client, invitation, dave) -> None:
    # With mandatory e-mail verification the `next` link is lost on the way (mail, then the
    # login form), and a login lands on the challenge list: that sends the invitee back once.
    client.get(invitation.get_absolute_url())
    client.force_login(dave)

    response = client.get(reverse("challenges:list"))
    assert response.status_code == 302 and response.url == invitation.get_absolute_url()
    assert client.get(reverse("challenges:list")).status_code == 200  # once only


def test_an_ended_invitation_does_not_pull_the_user_back(client, invitation, team_a, alice,
                                                         dave) -> None:
    client.get(invitation.get_absolute_url())
    services.invitation_cancel(invitation_pk=invitation.pk, team=team_a, user=alice)
    client.force_login(dave)
    assert client.get(reverse("challenges:list")).status_code == 200


def test_one_button_accepts_the_terms_and_joins(client, invitation, team_a, dave) -> None:
    client.force_login(dave)
    html = client.get(invitation.get_absolute_url()).content.decode()
    assert "Accept the terms and join" in html
    assert team_a.challenge.terms in html  # the terms are on the page, not behind a link

    response = client.post(invitation.get_absolute_url(),
                           {"terms_version": team_a.challenge.terms_version}, follow=True)

    assert f"Welcome to team {team_a.name}!" in messages_of(response)
    assert Membership.objects.filter(user=dave, team=team_a).exists()
    assert TermsAcceptance.objects.filter(user=dave, challenge=team_a.challenge,
                                          version=team_a.challenge.terms_version).exists()
    verbs = list(AuditEvent.objects.filter(actor_id=dave.pk).order_by("id")
                 .values_list("verb", flat=True))
    assert verbs == ["terms.accepted", "team.joined"]


def test_a_refused_join_leaves_no_terms_acceptance_behind(team_a, alice, dave) -> None:
    team_a.challenge.max_team_size = 2  # Alice and Bob: full
    team_a.challenge.save(update_fields=["max_team_size"])
    invitation = services.invitation_create(team=team_a, user=alice)

    with pytest.raises(TeamError, match="is full"):
        services.invitation_accept_with_terms(token=invitation.token, user=dave,
                                              terms_version=team_a.challenge.terms_version)

    assert not TermsAcceptance.objects.filter(user=dave).exists()
    assert events(team_a.challenge, "terms.accepted") == []


def test_terms_changed_while_reading_are_not_accepted(invitation, team_a, dave) -> None:
    with pytest.raises(TermsNotAccepted, match="terms changed"):
        services.invitation_accept_with_terms(
            token=invitation.token, user=dave,
            terms_version=team_a.challenge.terms_version - 1)
    assert not Membership.objects.filter(user=dave).exists()
    assert not TermsAcceptance.objects.filter(user=dave).exists()


def test_an_expired_invitation_is_refused_with_the_terms_untouched(invitation, dave) -> None:
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(InvitationInvalid):
        services.invitation_accept_with_terms(token=invitation.token, user=dave)
    assert not TermsAcceptance.objects.filter(user=dave).exists()
