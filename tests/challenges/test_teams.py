"""Teams: creating, inviting, asking to join, leaving and handing over the captaincy.

The rules that races could break (a size limit, one team per user per challenge) are
checked here with real concurrent transactions on the real database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from challenges import services
from challenges.exceptions import (
    AlreadyInTeam,
    InvitationInvalid,
    NotCaptain,
    TeamError,
    TeamFull,
    TermsNotAccepted,
)
from challenges.models import Invitation, JoinRequest, Membership, Team
from core.models import AuditEvent
from tests.factories import (
    ChallengeFactory,
    PhaseFactory,
    SubmissionFactory,
    UserFactory,
    accept_terms,
    add_member,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="erin")


def members(team: Team) -> set[str]:
    return set(Membership.objects.filter(team=team).values_list("user__username", flat=True))


def verbs(challenge: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(challenge_id=challenge.pk).order_by("at", "pk")
        .values_list("verb", flat=True)
    )


def race(*actions: Callable[[], Any]) -> list[Any]:
    """Run each action in its own thread and connection, released at the same moment."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = actions[i]()
        except Exception as error:  # noqa: BLE001 - each outcome is asserted by the caller
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return outcomes


# --- creating a team ---------------------------------------------------------------------


def test_it_makes_the_creator_captain_and_first_member(challenge, dave) -> None:
    accept_terms(challenge, dave)

    team = services.team_create(challenge=challenge, user=dave, name="  Dave's Team  ")

    team.refresh_from_db()
    assert team.name == "Dave's Team"
    assert team.captain == dave
    assert team.challenge == challenge
    assert members(team) == {"dave"}
    event = AuditEvent.objects.get(verb="team.created")
    assert (event.actor_id, event.challenge_id, event.target) == (
        dave.pk, challenge.pk, f"team:{team.pk}")


def test_it_refuses_a_blank_team_name(challenge, dave) -> None:
    accept_terms(challenge, dave)

    with pytest.raises(TeamError, match="Give your team a name"):
        services.team_create(challenge=challenge, user=dave, name="   ")
    assert not Team.objects.filter(challenge=challenge).exists()


def test_team_names_are_unique_per_challenge_ignoring_case(challenge, team_a, dave) -> None:
    accept_terms(challenge, dave)

    with pytest.raises(TeamError, match="A team called “TEAM a” already exists"):
        services.team_create(challenge=challenge, user=dave, name="TEAM a")

    assert Team.objects.filter(challenge=challenge).count() == 1
    assert not Membership.objects.filter(user=dave).exists()  # nothing half-created


def test_the_same_team_name_is_fine_in_another_challenge(team_a, dave) -> None:
    other = ChallengeFactory()
    accept_terms(other, dave)

    team = services.team_create(challenge=other, user=dave, name="Team A")

    assert team.challenge == other and members(team) == {"dave"}


def test_a_user_cannot_create_a_second_team_in_a_challenge(challenge, team_a, bob) -> None:
    with pytest.raises(AlreadyInTeam):
        services.team_create(challenge=challenge, user=bob, name="Bob's own")
    assert list(Team.objects.filter(challenge=challenge)) == [team_a]


def test_the_database_forbids_a_second_membership_in_one_challenge(
    challenge, team_a, team_c, bob
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(team=team_c, user=bob, challenge=challenge)
    assert members(team_c) == {"carol"}


def test_a_user_may_be_in_teams_of_different_challenges(team_a, bob) -> None:
    other = ChallengeFactory()
    accept_terms(other, bob)

    services.team_create(challenge=other, user=bob, name="Elsewhere")

    assert Membership.objects.filter(user=bob).count() == 2


# --- invitations -------------------------------------------------------------------------


def test_only_the_captain_invites(team_a, bob) -> None:
    with pytest.raises(NotCaptain):
        services.invitation_create(team=team_a, user=bob)
    assert not Invitation.objects.exists()


def test_a_link_invitation_adds_the_member_once_and_is_then_used_up(
    challenge, team_a, alice, dave, erin
) -> None:
    accept_terms(challenge, dave)
    accept_terms(challenge, erin)
    invitation = services.invitation_create(team=team_a, user=alice)
    assert invitation.email == ""
    assert invitation.expires_at > timezone.now() + timedelta(days=6)

    membership = services.invitation_accept(token=invitation.token, user=dave)

    assert membership.team == team_a and membership.challenge == challenge
    invitation.refresh_from_db()
    assert invitation.used_by == dave and invitation.used_at is not None
    with pytest.raises(InvitationInvalid, match="already been used"):
        services.invitation_accept(token=invitation.token, user=erin)
    assert members(team_a) == {"alice", "bob", "dave"}


def test_an_expired_invitation_is_refused(challenge, team_a, alice, dave) -> None:
    accept_terms(challenge, dave)
    invitation = services.invitation_create(team=team_a, user=alice)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(InvitationInvalid, match="expired"):
        services.invitation_accept(token=invitation.token, user=dave)
    assert members(team_a) == {"alice", "bob"}


def test_an_email_invitation_is_only_for_that_address(challenge, team_a, alice, dave, erin) -> None:
    accept_terms(challenge, dave)
    accept_terms(challenge, erin)
    invitation = services.invitation_create(team=team_a, user=alice, email=" Erin@Example.org ")
    assert invitation.email == "erin@example.org"

    with pytest.raises(InvitationInvalid, match="different e-mail address"):
        services.invitation_accept(token=invitation.token, user=dave)
    invitation.refresh_from_db()
    assert invitation.used_at is None  # still usable by its addressee

    services.invitation_accept(token=invitation.token, user=erin)
    assert members(team_a) == {"alice", "bob", "erin"}


def test_an_unknown_token_is_refused(dave) -> None:
    with pytest.raises(InvitationInvalid, match="not valid"):
        services.invitation_accept(token="no-such-token", user=dave)


def test_an_invitation_to_a_full_team_stays_unused(challenge, team_a, alice, dave, erin) -> None:
    add_member(team_a, dave)  # 3 of 3
    accept_terms(challenge, erin)
    invitation = services.invitation_create(team=team_a, user=alice)

    with pytest.raises(TeamFull, match="is full"):
        services.invitation_accept(token=invitation.token, user=erin)

    invitation.refresh_from_db()
    assert invitation.used_at is None
    assert members(team_a) == {"alice", "bob", "dave"}


def test_a_member_of_another_team_cannot_use_an_invitation(challenge, team_a, team_c, alice,
                                                           carol) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)

    with pytest.raises(AlreadyInTeam):
        services.invitation_accept(token=invitation.token, user=carol)
    invitation.refresh_from_db()
    assert invitation.used_at is None
    assert members(team_c) == {"carol"}


# --- team size ---------------------------------------------------------------------------


def test_a_team_never_grows_past_the_size_limit(challenge, team_a, alice, dave, erin) -> None:
    assert challenge.max_team_size == 3
    for user in (dave, erin):
        accept_terms(challenge, user)
    first = services.invitation_create(team=team_a, user=alice)
    second = services.invitation_create(team=team_a, user=alice)

    services.invitation_accept(token=first.token, user=dave)
    with pytest.raises(TeamFull):
        services.invitation_accept(token=second.token, user=erin)

    assert Membership.objects.filter(team=team_a).count() == 3


def test_approving_a_request_to_a_full_team_is_refused(challenge, team_a, alice, dave,
                                                       erin) -> None:
    accept_terms(challenge, erin)
    request = services.join_request_create(team=team_a, user=erin)
    add_member(team_a, dave)

    with pytest.raises(TeamFull):
        services.join_request_decide(request_pk=request.pk, user=alice, approve=True)

    request.refresh_from_db()
    assert request.status == JoinRequest.Status.PENDING
    assert "erin" not in members(team_a)


# --- races -------------------------------------------------------------------------------


@pytest.fixture
def slow_audit() -> Iterator[None]:
    """Hold each joining transaction open a moment after its insert, before it commits, so
    that a racer that did not wait for the team's lock would count a stale membership."""
    real = services.audit_record

    def slowly(**kwargs: Any) -> AuditEvent:
        time.sleep(0.3)
        return real(**kwargs)

    with mock.patch("challenges.services.audit_record", autospec=True, side_effect=slowly):
        yield


@pytest.mark.django_db(transaction=True)
def test_two_users_racing_for_the_last_seat_get_one_seat(challenge, team_a, alice, dave,
                                                         erin, slow_audit) -> None:
    for user in (dave, erin):
        accept_terms(challenge, user)
    tokens = [services.invitation_create(team=team_a, user=alice).token for _ in range(2)]

    outcomes = race(
        lambda: services.invitation_accept(token=tokens[0], user=dave),
        lambda: services.invitation_accept(token=tokens[1], user=erin),
    )

    joined = [o for o in outcomes if isinstance(o, Membership)]
    refused = [o for o in outcomes if isinstance(o, TeamFull)]
    assert (len(joined), len(refused)) == (1, 1), outcomes
    assert Membership.objects.filter(team=team_a).count() == challenge.max_team_size
    winner = joined[0].user.username
    assert members(team_a) == {"alice", "bob", winner}
    used = Invitation.objects.filter(team=team_a, used_at__isnull=False)
    assert [i.used_by.username for i in used] == [winner]


@pytest.mark.django_db(transaction=True)
def test_two_approvals_racing_for_the_last_seat_approve_one(challenge, team_a, alice, dave,
                                                            erin, slow_audit) -> None:
    for user in (dave, erin):
        accept_terms(challenge, user)
    requests = [services.join_request_create(team=team_a, user=u) for u in (dave, erin)]

    outcomes = race(*[
        (lambda pk=r.pk: services.join_request_decide(request_pk=pk, user=alice, approve=True))
        for r in requests
    ])

    approved = [o for o in outcomes if isinstance(o, JoinRequest)]
    refused = [o for o in outcomes if isinstance(o, TeamFull)]
    assert (len(approved), len(refused)) == (1, 1), outcomes
    assert Membership.objects.filter(team=team_a).count() == challenge.max_team_size
    statuses = sorted(JoinRequest.objects.values_list("status", flat=True))
    assert statuses == [JoinRequest.Status.APPROVED, JoinRequest.Status.PENDING]


@pytest.mark.django_db(transaction=True)
def test_one_user_racing_into_two_teams_ends_in_one(challenge, team_a, team_c, alice, carol,
                                                    dave) -> None:
    accept_terms(challenge, dave)
    to_a = services.invitation_create(team=team_a, user=alice).token
    to_c = services.invitation_create(team=team_c, user=carol).token

    outcomes = race(
        lambda: services.invitation_accept(token=to_a, user=dave),
        lambda: services.invitation_accept(token=to_c, user=dave),
    )

    joined = [o for o in outcomes if isinstance(o, Membership)]
    refused = [o for o in outcomes if isinstance(o, AlreadyInTeam)]
    assert (len(joined), len(refused)) == (1, 1), outcomes
    assert list(Membership.objects.filter(user=dave).values_list("team", flat=True)) == [
        joined[0].team_id]
    assert Invitation.objects.filter(used_by=dave).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_users_racing_for_one_link_get_one_membership(challenge, team_c, carol, dave,
                                                          erin) -> None:
    for user in (dave, erin):
        accept_terms(challenge, user)
    token = services.invitation_create(team=team_c, user=carol).token

    outcomes = race(
        lambda: services.invitation_accept(token=token, user=dave),
        lambda: services.invitation_accept(token=token, user=erin),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["InvitationInvalid", "Membership"]
    assert Membership.objects.filter(team=team_c).count() == 2


# --- join requests -----------------------------------------------------------------------


def test_the_captain_approves_a_request_to_join(challenge, team_c, carol, dave) -> None:
    accept_terms(challenge, dave)
    request = services.join_request_create(team=team_c, user=dave)
    assert request.status == JoinRequest.Status.PENDING

    decided = services.join_request_decide(request_pk=request.pk, user=carol, approve=True)

    assert decided.status == JoinRequest.Status.APPROVED and decided.decided_at is not None
    assert members(team_c) == {"carol", "dave"}
    event = AuditEvent.objects.get(verb="join_request.approved")
    assert (event.actor_id, event.target, event.data) == (carol.pk, f"team:{team_c.pk}",
                                                       {"user": dave.pk})


def test_the_captain_declines_a_request_to_join(challenge, team_c, carol, dave) -> None:
    accept_terms(challenge, dave)
    request = services.join_request_create(team=team_c, user=dave)

    decided = services.join_request_decide(request_pk=request.pk, user=carol, approve=False)

    assert decided.status == JoinRequest.Status.REJECTED
    assert members(team_c) == {"carol"}
    with pytest.raises(TeamError, match="already been decided"):
        services.join_request_decide(request_pk=request.pk, user=carol, approve=True)
    assert members(team_c) == {"carol"}


def test_only_the_captain_decides_a_request(challenge, team_a, bob, carol, dave) -> None:
    accept_terms(challenge, dave)
    request = services.join_request_create(team=team_a, user=dave)

    for someone in (bob, carol):  # a team-mate, and the captain of another team
        with pytest.raises(NotCaptain):
            services.join_request_decide(request_pk=request.pk, user=someone, approve=True)

    request.refresh_from_db()
    assert request.status == JoinRequest.Status.PENDING
    assert "dave" not in members(team_a)


def test_a_second_pending_request_to_the_same_team_is_refused(challenge, team_c, carol,
                                                              dave) -> None:
    accept_terms(challenge, dave)
    services.join_request_create(team=team_c, user=dave)

    with pytest.raises(TeamError, match="already asked to join"):
        services.join_request_create(team=team_c, user=dave)
    assert JoinRequest.objects.filter(team=team_c, user=dave).count() == 1


def test_asking_again_after_a_decline_is_allowed(challenge, team_c, carol, dave) -> None:
    accept_terms(challenge, dave)
    first = services.join_request_create(team=team_c, user=dave)
    services.join_request_decide(request_pk=first.pk, user=carol, approve=False)

    again = services.join_request_create(team=team_c, user=dave)

    assert again.pk != first.pk and again.status == JoinRequest.Status.PENDING


def test_a_member_of_a_team_cannot_ask_to_join_another(challenge, team_a, team_c, bob) -> None:
    with pytest.raises(AlreadyInTeam):
        services.join_request_create(team=team_c, user=bob)
    assert not JoinRequest.objects.exists()


# --- leaving and the captaincy -----------------------------------------------------------


def test_a_member_leaves(challenge, team_a, bob) -> None:
    services.team_leave(team=team_a, user=bob)

    assert members(team_a) == {"alice"}
    event = AuditEvent.objects.get(verb="team.left")
    assert (event.actor_id, event.target) == (bob.pk, f"team:{team_a.pk}")


def test_a_captain_with_team_mates_must_hand_over_first(challenge, team_a, alice, bob) -> None:
    with pytest.raises(TeamError, match="Hand the captaincy"):
        services.team_leave(team=team_a, user=alice)
    assert members(team_a) == {"alice", "bob"}

    services.captain_transfer(team=team_a, user=alice, new_captain=bob)
    services.team_leave(team=team_a, user=alice)

    team_a.refresh_from_db()
    assert team_a.captain == bob and members(team_a) == {"bob"}


def test_the_captaincy_goes_only_to_a_member(challenge, team_a, team_c, alice, carol) -> None:
    with pytest.raises(TeamError, match="must be a member"):
        services.captain_transfer(team=team_a, user=alice, new_captain=carol)
    team_a.refresh_from_db()
    assert team_a.captain == alice


def test_only_the_captain_hands_over_the_captaincy(challenge, team_a, alice, bob) -> None:
    with pytest.raises(NotCaptain):
        services.captain_transfer(team=team_a, user=bob, new_captain=bob)
    team_a.refresh_from_db()
    assert team_a.captain == alice


def test_a_non_member_cannot_leave(challenge, team_a, carol) -> None:
    with pytest.raises(TeamError, match="not a member"):
        services.team_leave(team=team_a, user=carol)


def test_the_last_member_leaving_deletes_the_empty_team(challenge, team_c, carol) -> None:
    pk = team_c.pk

    services.team_leave(team=team_c, user=carol)

    assert not Team.objects.filter(pk=pk).exists()
    assert not Membership.objects.filter(user=carol).exists()
    event = AuditEvent.objects.get(verb="team.left")
    assert (event.actor_id, event.challenge_id, event.target) == (
        carol.pk, challenge.pk, f"team:{pk}")


def test_the_last_member_of_a_team_with_submissions_cannot_leave(challenge, team_c,
                                                                 carol) -> None:
    SubmissionFactory(phase=PhaseFactory(challenge=challenge), team=team_c, created_by=carol)

    with pytest.raises(TeamError, match="ask the organisers"):
        services.team_leave(team=team_c, user=carol)
    assert members(team_c) == {"carol"}


def test_after_leaving_a_user_may_join_another_team(challenge, team_a, team_c, bob,
                                                    carol) -> None:
    services.team_leave(team=team_a, user=bob)
    request = services.join_request_create(team=team_c, user=bob)

    services.join_request_decide(request_pk=request.pk, user=carol, approve=True)

    assert members(team_c) == {"carol", "bob"}


# --- terms and the audit trail -----------------------------------------------------------


def test_joining_needs_the_terms_of_the_challenge(challenge, team_a, alice, dave) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)

    with pytest.raises(TermsNotAccepted):
        services.invitation_accept(token=invitation.token, user=dave)
    with pytest.raises(TermsNotAccepted):
        services.join_request_create(team=team_a, user=dave)
    assert "dave" not in members(team_a)


def test_team_changes_leave_an_audit_trail(challenge, dave, erin) -> None:
    for user in (dave, erin):
        services.terms_accept(challenge=challenge, user=user)
    team = services.team_create(challenge=challenge, user=dave, name="Audited")
    invitation = services.invitation_create(team=team, user=dave, email="erin@example.org")
    services.invitation_accept(token=invitation.token, user=erin)
    services.captain_transfer(team=team, user=dave, new_captain=erin)
    services.team_leave(team=team, user=dave)

    assert verbs(challenge) == [
        "terms.accepted", "terms.accepted", "team.created", "invitation.created",
        "team.joined", "team.captain_transferred", "team.left",
    ]
    events = AuditEvent.objects.filter(challenge_id=challenge.pk)
    assert {e.target for e in events if e.verb.startswith(("team.", "invitation."))} == {
        f"team:{team.pk}"}
    assert events.get(verb="invitation.created").data == {"email": "erin@example.org"}
    assert events.get(verb="team.joined").data == {"via": "invitation"}
    assert events.get(verb="team.captain_transferred").data == {"to": erin.pk}
    assert [e.actor_id for e in events.order_by("at", "pk")] == [
        u.pk for u in (dave, erin, dave, dave, erin, dave, dave)]
