"""Factories for the submissions app: a submission row written directly, without the
upload, the checks or the queueing of `submissions.services.submission_create`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import factory
from django.conf import settings
from django.db.models import F, Max
from django.utils import timezone

from submissions.models import Submission
from tests.factories.challenges import PhaseFactory, TeamFactory


def told_finish() -> datetime:
    """An end time whose outcome its team has been told (before the current release period:
    submissions.models.untold_outcomes), for results that stand for past work."""
    return timezone.now() - timedelta(seconds=settings.HELDOUT_RELEASE_SECONDS + 1)


def next_number(submission: Any) -> int:
    """The team's next number in the phase (max + 1), as the service assigns it."""
    phase, team = submission.phase, submission.team
    if phase.pk is None or team.pk is None:  # built, not saved: nothing to count yet
        return 1
    last = Submission.objects.filter(phase=phase, team=team).aggregate(n=Max("number"))["n"]
    return (last or 0) + 1


class SubmissionFactory(factory.django.DjangoModelFactory):
    """A queued bundle of a team in the phase's challenge, made by its captain. Pass
    `created_at=` to back-date it (the field is `auto_now_add`, so it is set after saving)."""

    class Meta:
        model = Submission
        skip_postgeneration_save = True  # the created_at hook writes with update()

    phase = factory.SubFactory(PhaseFactory)
    team = factory.SubFactory(TeamFactory, challenge=factory.SelfAttribute("..phase.challenge"))
    created_by = factory.SelfAttribute("team.captain")
    number = factory.LazyAttribute(next_number)
    kind = "bundle"
    filename = "model.zip"
    file_path = factory.LazyAttribute(
        lambda s: f"submissions/{s.phase.pk}/{s.team.pk}/{s.number}/{s.filename}")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    size = 1024

    @factory.post_generation
    def created_at(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if extracted is None:
            return
        if create:
            Submission.objects.filter(pk=self.pk).update(created_at=extracted)
        self.created_at = extracted


def a_period_later() -> None:
    """Stands for waiting until the current release period is over: every outcome so far is
    told to its team and every board computed so far is released to everyone (end times and
    board release times moved back by one period; see submissions.models.untold_outcomes)."""
    from leaderboards.models import LeaderboardSnapshot

    period = timedelta(seconds=settings.HELDOUT_RELEASE_SECONDS + 1)
    Submission.objects.filter(finished_at__isnull=False).update(
        finished_at=F("finished_at") - period)
    LeaderboardSnapshot.objects.filter(release_at__isnull=False).update(
        release_at=F("release_at") - period)
