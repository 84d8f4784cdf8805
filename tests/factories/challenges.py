"""Factories for the challenges app: challenges, evaluation sets, phases and teams."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from challenges.models import Challenge, EvaluationSet, Membership, Phase, Team, TermsAcceptance
from tests.factories.accounts import UserFactory


class ChallengeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Challenge

    slug = factory.Sequence(lambda n: f"challenge-{n}")
    title = factory.Sequence(lambda n: f"Challenge {n}")
    summary = "Predict something clinical."
    description = "# About\nA test challenge."
    terms = "Use the data for research only."
    max_team_size = 3


class EvaluationSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EvaluationSet

    challenge = factory.SubFactory(ChallengeFactory)
    name = factory.Sequence(lambda n: f"hidden-{n}")
    inputs_dir = "evaluation/none/inputs"
    labels_file = "evaluation/none/labels.csv"


class PhaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Phase

    challenge = factory.SubFactory(ChallengeFactory)
    slug = factory.Sequence(lambda n: f"phase-{n}")
    title = "Leaderboard round"
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    submission_kinds = ["predictions", "bundle", "image"]
    primary_metric = "auroc"
    secondary_metrics = ["auprc"]


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True  # the hook below writes related rows only

    challenge = factory.SubFactory(ChallengeFactory)
    name = factory.Sequence(lambda n: f"Team {n}")
    captain = factory.SubFactory(UserFactory)

    @factory.post_generation
    def with_captain(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            TermsAcceptance.objects.get_or_create(
                user=self.captain, challenge=self.challenge, version=self.challenge.terms_version)
            Membership.objects.get_or_create(team=self, user=self.captain, challenge=self.challenge)


def add_member(team: Team, user) -> Membership:  # type: ignore[no-untyped-def]
    TermsAcceptance.objects.get_or_create(
        user=user, challenge=team.challenge, version=team.challenge.terms_version)
    return Membership.objects.create(team=team, user=user, challenge=team.challenge)


def accept_terms(challenge: Challenge, user) -> None:  # type: ignore[no-untyped-def]
    TermsAcceptance.objects.get_or_create(
        user=user, challenge=challenge, version=challenge.terms_version)
