"""Template tags for the organiser's dashboard of a challenge (a `challenges` admin page):
submissions per day, failures by error class, the queue, and the baselines tried first. The
page is `challenges`', the rows are this app's, so the page loads them here (pages compose
upward through template tags, as the phase page does with the leaderboard)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from challenges.models import Challenge
from submissions.models import Submission

register = template.Library()
DAYS = 14


@register.simple_tag
def challenge_activity(challenge: Challenge) -> dict[str, Any]:
    """`{% challenge_activity challenge as activity %}` (organisers only: the page checks)."""
    rows = Submission.objects.filter(phase__challenge=challenge)
    since = timezone.now() - timedelta(days=DAYS)
    per_day = dict(rows.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
                   .values_list("day").annotate(n=Count("id")).values_list("day", "n"))
    today = timezone.now().date()
    days = [(today - timedelta(days=n), per_day.get(today - timedelta(days=n), 0))
            for n in range(DAYS - 1, -1, -1)]
    failures = list(rows.filter(status=Submission.Status.FAILED).values("error_class")
                    .annotate(n=Count("id")).order_by("-n"))
    labels = dict(Submission.ErrorClass.choices)
    return {
        "days": days, "most": max((n for _, n in days), default=0) or 1,
        "total": rows.count(),
        "failures": [(row["error_class"], labels.get(row["error_class"], "?"), row["n"])
                     for row in failures],
        "queued": rows.filter(status=Submission.Status.QUEUED).count(),
        "running": rows.filter(status__in=[Submission.Status.RUNNING,
                                           Submission.Status.SCORING]).count(),
        "baselines": list(rows.filter(is_baseline=True).select_related("phase", "team", "result")
                          .order_by("-created_at")[:10]),
    }
