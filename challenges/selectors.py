"""Reads for challenges, scoped to what a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from challenges.models import Challenge, Membership, Phase, Team, TermsAcceptance

ORGANISERS_GROUP = "Organisers"


def may_create_challenges(*, user: Any) -> bool:
    """Superusers, and staff in the `Organisers` group (created by a migration)."""
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        return False
    return bool(user.is_superuser or user.groups.filter(name=ORGANISERS_GROUP).exists())


def is_organiser(*, challenge: Challenge, user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return challenge.organisers.filter(pk=user.pk).exists()


def visible_challenges(*, user: Any) -> QuerySet[Challenge]:
    """Challenges `user` may see. A draft is seen only by its organisers (and superusers):
    every page and API endpoint finds challenges and phases through here, so a draft is a
    404 everywhere else."""
    challenges = Challenge.objects.all()
    if getattr(user, "is_superuser", False):
        return challenges
    published = challenges.filter(status=Challenge.Status.PUBLISHED)
    if getattr(user, "is_authenticated", False):
        return (published.filter(visibility=Challenge.Visibility.PUBLIC)
                | challenges.filter(organisers=user)
                | published.filter(teams__memberships__user=user))
    return published.filter(visibility=Challenge.Visibility.PUBLIC)


def challenge_list(*, user: Any) -> QuerySet[Challenge]:
    return (
        visible_challenges(user=user).distinct()
        .prefetch_related(Prefetch("phases", queryset=Phase.objects.order_by("order", "opens_at")))
    )


def has_accepted_terms(*, challenge: Challenge, user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return TermsAcceptance.objects.filter(
        user=user, challenge=challenge, version=challenge.terms_version
    ).exists()


def team_for_user(*, challenge: Challenge, user: Any) -> Team | None:
    if not getattr(user, "is_authenticated", False):
        return None
    membership = (
        Membership.objects.select_related("team").filter(challenge=challenge, user=user).first()
    )
    return membership.team if membership else None


def team_members(*, team: Team) -> list[Membership]:
    return list(team.memberships.select_related("user").order_by("joined_at"))


def visible_challenge(*, user: Any, slug: str) -> Challenge:
    """The challenge if `user` may see it, else Http404 (the same for absent and hidden)."""
    challenge = visible_challenges(user=user).distinct().filter(slug=slug).first()
    if challenge is None:
        raise Http404("No such challenge.")
    return challenge


def visible_phase(*, user: Any, slug: str, phase: str) -> Phase:
    """The phase of a challenge `user` may see, with its challenge and data sets, else Http404.
    Pages and the API both find phases here."""
    found = (
        Phase.objects.select_related("challenge", "evaluation_set", "sanity_set")
        .filter(challenge=visible_challenge(user=user, slug=slug), slug=phase).first()
    )
    if found is None:
        raise Http404("No such phase.")
    return found
