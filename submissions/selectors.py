"""Reads for submissions: quotas, a team's history, what a viewer may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from challenges import selectors as challenge_selectors
from challenges.models import Membership, Phase, Team
from challenges.visibility import PhaseRights, phase_rights
from submissions.exceptions import NotAMember
from submissions.models import Submission, UploadSession, untold_outcomes


@dataclass(frozen=True)
class QuotaStatus:
    per_day: int
    used_today: int
    total: int
    used_total: int
    concurrent: int
    running: int
    resets_at: datetime

    @property
    def left_today(self) -> int:
        return max(0, min(self.per_day - self.used_today, self.total - self.used_total))

    @property
    def left_total(self) -> int:
        return max(0, self.total - self.used_total)


def utc_day_start(at: datetime | None = None) -> datetime:
    at = (at or timezone.now()).astimezone(UTC)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def counted_submissions(*, phase: Phase, team: Team) -> QuerySet[Submission]:
    """Submissions that use the team's quota: the team's own and its members' (in any team),
    not cancelled, not failed by our fault. A failure on the hidden data always counts (else
    failing would be a free probe of the hidden set); a failure before it (unusable upload,
    the public sanity run) only where the phase says so."""
    # A member's own submissions follow them: leaving and forming a new team does not reset
    # what they used (their earlier teams' submissions count here too).
    members = Membership.objects.filter(team=team).values("user_id")
    rows = Submission.objects.filter(phase=phase, is_baseline=False).filter(
        Q(team=team) | Q(created_by__in=members)
    ).exclude(status=Submission.Status.CANCELLED)
    rows = rows.exclude(status=Submission.Status.FAILED, error_class="internal_error")
    if not phase.count_failed:
        rows = rows.exclude(status=Submission.Status.FAILED, failed_lane__in=["upload", "sanity"])
    return rows


def quota_status(*, phase: Phase, team: Team) -> QuotaStatus:
    day = utc_day_start()
    counted = counted_submissions(phase=phase, team=team)
    # An outcome not told yet still holds its slot: a slot freed at the run's end would
    # time the run on hidden data (Submission.as_told).
    running = Submission.objects.filter(
        Q(status__in=Submission.ACTIVE) | untold_outcomes(), phase=phase, team=team,
        is_baseline=False,
    ).count()
    return QuotaStatus(
        per_day=phase.quota_per_day, used_today=counted.filter(created_at__gte=day).count(),
        total=phase.quota_total, used_total=counted.count(),
        concurrent=phase.quota_concurrent, running=running, resets_at=day + timedelta(days=1),
    )


def team_submissions(*, phase: Phase, team: Team | int) -> QuerySet[Submission]:
    """A team's submissions in a phase, newest first, without per-case arrays."""
    return (
        Submission.objects.filter(phase=phase, team=team)
        .select_related("created_by", "phase__challenge", "team", "result")
        .defer("result__case_scores", "result__case_labels", "result__subgroups")
        .order_by("-number")
    )


def open_uploads(
    *, user: Any = None, team: Team | None = None, phase: Phase | None = None
) -> tuple[int, int]:
    """(count, declared bytes) of unfinished resumable uploads of a user (any phase), or of
    a team's members in the phase's challenge."""
    rows = UploadSession.objects.filter(submission__isnull=True)
    if user is not None:
        rows = rows.filter(user=user)
    if team is not None and phase is not None:
        members = Membership.objects.filter(team=team).values("user_id")
        rows = rows.filter(user__in=members, phase__challenge_id=phase.challenge_id)
    totals = rows.aggregate(count=Count("pk"), size=Sum("total_size"))
    return totals["count"], totals["size"] or 0


def require_team(*, phase: Phase, user: Any) -> Team:
    """The user's team in the phase's challenge; NotAMember when there is none."""
    team = challenge_selectors.team_for_user(challenge=phase.challenge, user=user)
    if team is None:
        raise NotAMember("Join or create a team in this challenge first.")
    return team


def viewable_submission(*, user: Any, uid: Any) -> tuple[Submission, PhaseRights]:
    """The submission with the viewer's rights, or Http404 unless the user is on its team or
    organises its challenge (the same answer whether it does not exist or is not theirs).
    Pages and the API both find submissions here."""
    submission = (
        Submission.objects.select_related("phase__challenge", "team", "created_by", "result")
        .defer("result__case_scores", "result__case_labels", "result__subgroups",
               "result__resamples", "result__part_subgroups")
        .filter(uid=uid).first()
    )
    if submission is None:
        raise Http404("No such submission.")
    rights = phase_rights(phase=submission.phase, user=user)
    if not rights.can_view_submission(submission):
        raise Http404("No such submission.")
    return submission, rights
