"""Writes for challenges: terms, teams, invitations, join requests, audit events.

Team rules that races could break are enforced under a row lock on the team (size limit)
and by database constraints (one team per user per challenge, unique names), so two users
racing for the last seat get one success and one clear error.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from challenges import selectors
from challenges.exceptions import (
    AlreadyInTeam,
    InvitationInvalid,
    NotCaptain,
    TeamError,
    TeamFull,
    TermsNotAccepted,
)
from challenges.models import (
    Challenge,
    Invitation,
    JoinRequest,
    Membership,
    Team,
    TermsAcceptance,
)
from core.services import audit_record

INVITATION_LIFETIME = timedelta(days=7)


def normalised_text(text: str) -> str:
    """Organiser text as compared, never as stored: line endings as LF (a browser posts a
    textarea with CRLF), no trailing spaces on a line, no blank lines around the text (a
    form field strips the final newline an imported file ends with). Texts that differ only
    in these say the same thing."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def terms_change_pending(*, challenge: Challenge, terms: str) -> bool:
    """Whether saving `terms` on a saved challenge changes its terms text, so that everyone
    must accept them again. Line endings and surrounding whitespace are no change."""
    stored = Challenge.objects.filter(pk=challenge.pk).values_list("terms", flat=True).first()
    return stored is not None and normalised_text(stored) != normalised_text(terms)


def next_terms_version(challenge: Challenge, terms: str) -> int:
    """The terms version after setting `terms`: changed terms of a saved challenge get a new
    version, which everyone must accept again (import and admin edits alike)."""
    stored = Challenge.objects.filter(pk=challenge.pk).values_list(
        "terms_version", flat=True).first()
    if stored is None:
        return challenge.terms_version
    return stored + terms_change_pending(challenge=challenge, terms=terms)


TEXT_FIELDS = ("description", "terms")


def _changed_fields(challenge: Challenge, stored: Challenge | None) -> list[str]:
    """The concrete fields whose value differs from the stored row. A text that differs
    only in whitespace keeps its stored form (as the organiser wrote it) and is not listed."""
    if stored is None:
        return []
    changed = []
    for field in Challenge._meta.concrete_fields:
        name = field.attname
        new, old = getattr(challenge, name), getattr(stored, name)
        if name in TEXT_FIELDS and normalised_text(new) == normalised_text(old):
            setattr(challenge, name, old)
        elif new != old and name not in ("updated_at", "terms_version"):
            changed.append(field.name)
    return changed


@transaction.atomic
def challenge_save(*, challenge: Challenge, actor: Any, changed: list[str] | None = None) -> None:
    """Save an organiser's edit of a challenge (the admin): terms bump their version. A
    challenge created here starts as a draft, organised by its creator.

    The audit event lists the fields that differ from the stored row; `changed` (the form's
    changed fields) only adds those that are not columns (many-to-many: organisers)."""
    created = challenge.pk is None
    stored = None if created else Challenge.objects.select_for_update().get(pk=challenge.pk)
    fields = list(changed or []) if created else _changed_fields(challenge, stored)
    challenge.terms_version = next_terms_version(challenge, challenge.terms)
    if created:
        challenge.status = Challenge.Status.DRAFT
    challenge.full_clean()
    challenge.save()
    if created and getattr(actor, "pk", None):
        challenge.organisers.add(actor)
    related = {f.name for f in Challenge._meta.many_to_many}
    fields += [name for name in changed or [] if name in related and not created]
    data: dict[str, Any] = {"fields": sorted(set(fields))}
    if stored is not None and challenge.terms_version != stored.terms_version:
        data["terms_version"] = challenge.terms_version
    audit_record(verb="challenge.created" if created else "challenge.edited", actor=actor,
                 challenge=challenge, data=data)


def terms_accept(*, challenge: Challenge, user: AbstractBaseUser) -> TermsAcceptance:
    acceptance, created = TermsAcceptance.objects.get_or_create(
        user=user, challenge=challenge, version=challenge.terms_version
    )
    if created:
        audit_record(verb="terms.accepted", actor=user, challenge=challenge,
                     data={"version": challenge.terms_version})
    return acceptance


def _require_terms(challenge: Challenge, user: AbstractBaseUser) -> None:
    if not selectors.has_accepted_terms(challenge=challenge, user=user):
        raise TermsNotAccepted(
            f"Accept the data-use terms of “{challenge.title}” before joining a team."
        )


def _add_member(team: Team, user: AbstractBaseUser) -> Membership:
    """Add `user` to `team`; the caller holds the team's row lock."""
    if team.memberships.count() >= team.challenge.max_team_size:
        raise TeamFull(f"Team “{team.name}” is full ({team.challenge.max_team_size} members).")
    try:
        with transaction.atomic():
            return Membership.objects.create(team=team, user=user, challenge=team.challenge)
    except IntegrityError:
        raise AlreadyInTeam("You are already in a team for this challenge.") from None


@transaction.atomic
def team_create(*, challenge: Challenge, user: AbstractBaseUser, name: str) -> Team:
    _require_terms(challenge, user)
    name = name.strip()
    if not name:
        raise TeamError("Give your team a name.")
    if selectors.team_for_user(challenge=challenge, user=user) is not None:
        raise AlreadyInTeam("You are already in a team for this challenge.")
    try:
        with transaction.atomic():
            team = Team.objects.create(challenge=challenge, name=name, captain=user)
    except IntegrityError:
        raise TeamError(f"A team called “{name}” already exists in this challenge.") from None
    _add_member(team, user)
    audit_record(verb="team.created", actor=user, challenge=challenge, target=f"team:{team.pk}")
    return team


def _locked_team(team_pk: int) -> Team:
    return Team.objects.select_for_update().select_related("challenge").get(pk=team_pk)


def _require_captain(team: Team, user: AbstractBaseUser) -> None:
    if team.captain_id != user.pk:
        raise NotCaptain("Only the team captain can do that.")


@transaction.atomic
def invitation_create(
    *, team: Team, user: AbstractBaseUser, email: str = "", site_url: str = ""
) -> Invitation:
    """Create an invitation; one with an e-mail address is mailed once the row is committed.

    `site_url` (scheme and host, e.g. ``https://heldout.example``) makes the mailed link
    absolute; the page and the API pass the address the request came in on.
    """
    _require_captain(team, user)
    invitation = Invitation.objects.create(
        team=team, email=email.strip().lower(), token=secrets.token_urlsafe(32),
        created_by=user, expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    audit_record(verb="invitation.created", actor=user, challenge=team.challenge,
                 target=f"team:{team.pk}", data={"email": invitation.email})
    if invitation.email:
        link = site_url.rstrip("/") + invitation.get_absolute_url()
        transaction.on_commit(lambda: _mail_invitation(invitation, inviter=user, link=link))
    return invitation


def _mail_invitation(invitation: Invitation, *, inviter: AbstractBaseUser, link: str) -> None:
    team = invitation.team
    days = INVITATION_LIFETIME.days
    send_mail(
        subject=f"[Heldout] Join team {team.name}",
        message=f"{inviter} invites you to team {team.name} in {team.challenge.title}."
        f"\n\nAccept within {days} days: {link}",
        from_email=None, recipient_list=[invitation.email],
    )


def invitation_ended_message(invitation: Invitation) -> str:
    """Why `invitation` can no longer be accepted, or "" while it is open."""
    if invitation.used_at is not None:
        return "This invitation has already been used."
    if invitation.expires_at <= timezone.now():
        return ("This invitation was cancelled or has expired; ask the team's captain for a "
                "new one.")
    return ""


def _check_invitation(invitation: Invitation, user: AbstractBaseUser) -> None:
    ended = invitation_ended_message(invitation)
    if ended:
        raise InvitationInvalid(ended)
    email = (getattr(user, "email", "") or "").lower()
    if invitation.email and invitation.email != email:
        raise InvitationInvalid("This invitation was sent to a different e-mail address.")


@transaction.atomic
def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    invitation = (
        Invitation.objects.select_for_update().select_related("team__challenge")
        .filter(token=token).first()
    )
    if invitation is None or not selectors.visible_challenges(user=user).filter(
            pk=invitation.team.challenge_id).exists() and invitation.team.challenge.is_draft:
        raise InvitationInvalid("This invitation link is not valid.")
    _check_invitation(invitation, user)
    team = _locked_team(invitation.team_id)
    _require_terms(team.challenge, user)
    membership = _add_member(team, user)
    invitation.used_at = timezone.now()
    invitation.used_by = user
    invitation.save(update_fields=["used_at", "used_by"])
    audit_record(verb="team.joined", actor=user, challenge=team.challenge,
                 target=f"team:{team.pk}", data={"via": "invitation"})
    return membership


@transaction.atomic
def invitation_accept_with_terms(
    *, token: str, user: AbstractBaseUser, terms_version: int | None = None
) -> Membership:
    """Accept the challenge's terms and join through the invitation in one step: both or
    neither (a refused invitation leaves no acceptance behind). `terms_version`, the version
    the person read, must still be the current one."""
    invitation = Invitation.objects.select_related("team__challenge").filter(token=token).first()
    if invitation is None:
        raise InvitationInvalid("This invitation link is not valid.")
    challenge = invitation.team.challenge
    if terms_version is not None and terms_version != challenge.terms_version:
        raise TermsNotAccepted("The terms changed while you read them; read them again.")
    terms_accept(challenge=challenge, user=user)
    return invitation_accept(token=token, user=user)


@transaction.atomic
def invitation_cancel(*, invitation_pk: int, team: Team, user: AbstractBaseUser) -> Invitation:
    """End an unused invitation of `team` now. The row stays (who invited whom, when) and
    its link answers that it was cancelled or expired; used ones are history, not cancelled.
    """
    team = _locked_team(team.pk)
    _require_captain(team, user)
    invitation = team.invitations.select_for_update().filter(pk=invitation_pk).first()
    if invitation is None:
        raise TeamError("There is no such invitation for this team.")
    if invitation.used_at is not None:
        raise TeamError("This invitation has already been used; it cannot be cancelled.")
    now = timezone.now()
    if invitation.expires_at > now:
        invitation.expires_at = now
        invitation.save(update_fields=["expires_at"])
        audit_record(verb="invitation.cancelled", actor=user, challenge=team.challenge,
                     target=f"team:{team.pk}",
                     data={"invitation": invitation.pk, "email": invitation.email})
    return invitation


@transaction.atomic
def team_rename(*, team: Team, user: AbstractBaseUser, name: str) -> Team:
    """Rename the team (captain only); names stay unique per challenge, ignoring case."""
    team = _locked_team(team.pk)
    _require_captain(team, user)
    name = name.strip()
    if not name:
        raise TeamError("Give your team a name.")
    if len(name) > Team._meta.get_field("name").max_length:
        raise TeamError("A team name has at most 80 characters.")
    old = team.name
    if name == old:
        return team
    team.name = name
    try:
        with transaction.atomic():
            team.save(update_fields=["name"])
    except IntegrityError:
        raise TeamError(f"A team called “{name}” already exists in this challenge.") from None
    audit_record(verb="team.renamed", actor=user, challenge=team.challenge,
                 target=f"team:{team.pk}", data={"from": old, "to": name})
    return team


@transaction.atomic
def join_request_create(*, team: Team, user: AbstractBaseUser) -> JoinRequest:
    _require_terms(team.challenge, user)
    if selectors.team_for_user(challenge=team.challenge, user=user) is not None:
        raise AlreadyInTeam("You are already in a team for this challenge.")
    try:
        with transaction.atomic():
            return JoinRequest.objects.create(team=team, user=user)
    except IntegrityError:
        raise TeamError("You have already asked to join this team.") from None


@transaction.atomic
def join_request_decide(
    *, request_pk: int, user: AbstractBaseUser, approve: bool
) -> JoinRequest:
    join_request = JoinRequest.objects.select_for_update().filter(pk=request_pk).first()
    if join_request is None:
        raise TeamError("This request to join no longer exists.")
    team = _locked_team(join_request.team_id)
    _require_captain(team, user)
    if join_request.status != JoinRequest.Status.PENDING:
        raise TeamError("This request has already been decided.")
    if approve:
        _add_member(team, join_request.user)
    join_request.status = (
        JoinRequest.Status.APPROVED if approve else JoinRequest.Status.REJECTED
    )
    join_request.decided_at = timezone.now()
    join_request.save(update_fields=["status", "decided_at"])
    audit_record(verb=f"join_request.{join_request.status}", actor=user,
                 challenge=team.challenge, target=f"team:{team.pk}",
                 data={"user": join_request.user_id})
    return join_request


@transaction.atomic
def team_leave(*, team: Team, user: AbstractBaseUser) -> None:
    team = _locked_team(team.pk)
    membership = team.memberships.filter(user=user).first()
    if membership is None:
        raise TeamError("You are not a member of this team.")
    others = team.memberships.exclude(user=user).count()
    if team.captain_id == user.pk and others:
        raise TeamError("Hand the captaincy to a team-mate before leaving.")
    if others == 0 and team.submissions.exists():
        raise TeamError(
            "You are the last member of a team with submissions; ask the organisers to close it."
        )
    target = f"team:{team.pk}"  # delete() clears the pk
    membership.delete()
    if others == 0:
        team.delete()
    audit_record(verb="team.left", actor=user, challenge=team.challenge, target=target)


@transaction.atomic
def captain_transfer(*, team: Team, user: AbstractBaseUser, new_captain: AbstractBaseUser) -> Team:
    team = _locked_team(team.pk)
    _require_captain(team, user)
    if not team.memberships.filter(user=new_captain).exists():
        raise TeamError("The new captain must be a member of the team.")
    team.captain = new_captain
    team.save(update_fields=["captain"])
    audit_record(verb="team.captain_transferred", actor=user, challenge=team.challenge,
                 target=f"team:{team.pk}", data={"to": new_captain.pk})
    return team
