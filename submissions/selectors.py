"""Reads for submissions: quotas, a team's history, what a viewer may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from challenges import selectors as challenge_selectors
from challenges.models import Phase, Team
from submissions.models import Submission


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
    """Submissions that use quota: not cancelled, not failed by our fault, and failed runs
    only when the phase counts them."""
    rows = Submission.objects.filter(phase=phase, team=team, is_baseline=False).exclude(
        status=Submission.Status.CANCELLED
    )
    rows = rows.exclude(status=Submission.Status.FAILED, error_class="internal_error")
    if not phase.count_failed:
        rows = rows.exclude(status=Submission.Status.FAILED)
    return rows


def quota_status(*, phase: Phase, team: Team) -> QuotaStatus:
    day = utc_day_start()
    counted = counted_submissions(phase=phase, team=team)
    running = Submission.objects.filter(
        phase=phase, team=team, status__in=Submission.ACTIVE, is_baseline=False
    ).count()
    return QuotaStatus(
        per_day=phase.quota_per_day, used_today=counted.filter(created_at__gte=day).count(),
        total=phase.quota_total, used_total=counted.count(),
        concurrent=phase.quota_concurrent, running=running, resets_at=day + timedelta(days=1),
    )


def team_submissions(*, phase: Phase, team: Team) -> QuerySet[Submission]:
    return (
        Submission.objects.filter(phase=phase, team=team)
        .select_related("created_by", "phase", "team", "result")
        .defer("result__case_scores", "result__case_labels")
        .order_by("-number")
    )


def can_view_submission(*, submission: Submission, user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    challenge = submission.phase.challenge
    if challenge_selectors.is_organiser(challenge=challenge, user=user):
        return True
    return submission.team.memberships.filter(user=user).exists()


def scores_visible(*, submission: Submission, user: Any) -> bool:
    """Participants see scores live, or only after close for `after-close` phases."""
    return scores_visible_for_phase(phase=submission.phase, user=user)


def visible_metric_parts(*, submission: Submission, user: Any) -> list[str]:
    """Which parts of a result's metrics a viewer may read. While the private board is
    hidden, a team sees only public-part scores: "all" and "private" include private cases."""
    if not scores_visible(submission=submission, user=user):
        return []
    result = getattr(submission, "result", None)
    if result is None:
        return []
    if "public" not in result.metrics:
        return ["all"]
    from scoring.selectors import board_visible

    private_ok, _ = board_visible(phase=submission.phase, user=user, board="private")
    return ["public", "private", "all"] if private_ok else ["public"]


def hidden_logs_visible(*, submission: Submission, user: Any) -> bool:
    phase = submission.phase
    if challenge_selectors.is_organiser(challenge=phase.challenge, user=user):
        return True
    return phase.show_logs


def active_submissions() -> QuerySet[Submission]:
    return Submission.objects.filter(Q(status__in=Submission.ACTIVE))


def scores_visible_for_phase(*, phase: Phase, user: Any) -> bool:
    if challenge_selectors.is_organiser(challenge=phase.challenge, user=user):
        return True
    return phase.score_visibility == Phase.ScoreVisibility.LIVE or phase.has_closed()
