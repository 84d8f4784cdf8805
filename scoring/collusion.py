"""Duplicate and collusion signals for organisers, checked when a result is stored.

- `same_upload`: another team of the challenge uploaded a file with the same sha256.
- `near_identical`: another team's result in the phase ranks the hidden cases almost the same
  way (Spearman rank correlation above NEAR_IDENTICAL_RHO), the mark of one model submitted
  from several accounts. Compared with the other teams' latest COMPARED_RESULTS results, so
  the cost per result stays bounded however long the phase runs.

Baselines (organisers' submissions) are neither flagged nor compared.
"""

from __future__ import annotations

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Q
from scipy.stats import rankdata

from core.services import audit_record
from scoring.arrays import from_bytes
from scoring.models import CollusionFlag, Result
from submissions.models import Submission

NEAR_IDENTICAL_RHO = 0.999
COMPARED_RESULTS = 200
SAME_UPLOADS = 20


def _others(submission: Submission) -> Q:
    return ~Q(team_id=submission.team_id) & Q(is_baseline=False, team__is_organiser_team=False)


def _flag(submission: Submission, other: Submission, kind: str, value: float | None) -> None:
    try:
        with transaction.atomic():
            CollusionFlag.objects.create(submission=submission, other=other, kind=kind,
                                         value=value)
    except IntegrityError:
        return  # already flagged (a re-score)
    audit_record(verb="collusion.flagged", challenge=submission.phase.challenge,
                 target=f"submission:{submission.pk}",
                 data={"kind": kind, "other": other.pk, "value": value})


def spearman(a_ranks: np.ndarray, b: np.ndarray) -> float | None:
    b_ranks = rankdata(b)
    if np.ptp(a_ranks) == 0 or np.ptp(b_ranks) == 0:
        return None  # constant predictions rank nothing
    return float(np.corrcoef(a_ranks, b_ranks)[0, 1])


def flag_submission(submission: Submission, scores: np.ndarray) -> list[CollusionFlag]:
    """Record the signals for a newly scored submission; returns its flags."""
    if submission.is_baseline or submission.team.is_organiser_team:
        return []
    same = (Submission.objects.filter(phase__challenge_id=submission.phase.challenge_id,
                                      sha256=submission.sha256)
            .filter(_others(submission)).order_by("-created_at")[:SAME_UPLOADS])
    for other in same:
        _flag(submission, other, CollusionFlag.Kind.SAME_UPLOAD, None)
    ranks = rankdata(scores)
    recent = (Result.objects.filter(submission__phase_id=submission.phase_id,
                                    submission__status=Submission.Status.SUCCEEDED,
                                    evaluation_set_id=submission.phase.evaluation_set_id)
              .filter(Q(submission__in=Submission.objects.filter(_others(submission))))
              .select_related("submission").only("submission", "case_scores")
              .order_by("-computed_at")[:COMPARED_RESULTS])
    for result in recent:
        other_scores = from_bytes(result.case_scores)
        rho = spearman(ranks, other_scores) if other_scores.size == scores.size else None
        if rho is not None and rho > NEAR_IDENTICAL_RHO:
            _flag(submission, result.submission, CollusionFlag.Kind.NEAR_IDENTICAL, rho)
    return list(submission.flags.all())
