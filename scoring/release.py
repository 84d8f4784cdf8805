"""What a team is shown of a new result while its phase runs (the phase's score release
policy, heldout_kernel.stats.release), computed once when the result is stored.

The shown scores cover the part of the hidden set teams see during the phase ("public", or
"all" without a split). Ladder and boot-ladder-boot carry state per team: the latest stored
release of the team's earlier results is its shown score, and `released_from` names the
submission behind it (boot-ladder-boot compares against that submission's per-case scores on
the same paired resamples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from challenges.models import Phase
from heldout_kernel.stats.ranking import bootstrap_indices, metric_on_resamples
from heldout_kernel.stats.release import (
    Policy,
    Shown,
    release_boot_ladder_boot,
    release_ladder,
    release_rounded,
)
from scoring.arrays import from_bytes
from scoring.labels import LabelTable
from scoring.models import Result
from submissions.models import Submission


def visible_part(table: LabelTable) -> str:
    return "public" if table.split is not None else "all"


def _previous(submission: Submission, part: str) -> tuple[Shown, Result] | None:
    """The team's currently shown scores in the phase, and the result they come from."""
    earlier = (
        Result.objects.filter(submission__phase_id=submission.phase_id,
                              submission__team_id=submission.team_id,
                              submission__status=Submission.Status.SUCCEEDED)
        .exclude(submission_id=submission.pk).exclude(released={})
        .order_by("-computed_at").first()
    )
    if earlier is None or part not in earlier.released:
        return None
    source = str(earlier.released_from or earlier.submission.uid)
    behind = Result.objects.filter(submission__uid=source).first() or earlier
    return Shown(dict(earlier.released[part]), source), behind


def _resamples(
    phase: Phase, names: Sequence[str], y: np.ndarray, scores: np.ndarray,
    labels: np.ndarray | None, report: int,
) -> dict[str, np.ndarray]:
    """The primary metric on all of the phase's paired resamples, the others on the first
    `report` (all that boot-ladder-boot shows of them)."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    done = 0
    for indices in bootstrap_indices(y.size, phase.bootstrap_resamples, seed=phase.pk):
        for name in names:
            if name == phase.primary_metric or done < report:
                out[name].append(metric_on_resamples(name, y, scores, indices, labels))
        done += indices.shape[0]
    return {name: np.concatenate(parts) for name, parts in out.items() if parts}


def release(
    *, submission: Submission, table: LabelTable, exact: dict[str, dict[str, float | None]],
    scores: np.ndarray, labels: np.ndarray | None,
) -> tuple[dict[str, dict[str, float | None]], str]:
    """({part: shown scores}, uid of the submission they come from) for a new result."""
    phase = submission.phase
    policy, part = phase.release_policy(), visible_part(table)
    if policy.name != "boot-ladder-boot":
        return release_from_scores(submission=submission, part=part, exact=exact)
    previous = _previous(submission, part)
    shown = _boot_ladder_boot(phase, policy, table, part, exact[part], scores, labels,
                              previous, str(submission.uid))
    return {part: shown.scores}, shown.source


def release_from_scores(
    *, submission: Submission, part: str, exact: dict[str, dict[str, float | None]],
) -> tuple[dict[str, dict[str, float | None]], str]:
    """The policies that need only the scores themselves (exact, rounded, ladder): also
    what phases at data stations use, where no per-case score is here."""
    phase = submission.phase
    policy, source = phase.release_policy(), str(submission.uid)
    if policy.name == "exact":
        return {part: dict(exact[part])}, source
    if policy.name == "rounded":
        return {part: release_rounded(exact[part], policy, source).scores}, source
    if policy.name != "ladder":
        raise ValueError(f"{policy.name} needs per-case scores")
    previous = _previous(submission, part)
    shown = release_ladder(exact[part], previous[0] if previous else None, policy,
                           phase.primary_metric, phase.higher_is_better, source)
    return {part: shown.scores}, shown.source


def _boot_ladder_boot(
    phase: Phase, policy: Policy, table: LabelTable, part: str,
    exact: dict[str, float | None], scores: np.ndarray, labels: np.ndarray | None,
    previous: tuple[Shown, Result] | None, source: str,
) -> Shown:
    mask = table.split == part if part != "all" and table.split is not None else slice(None)
    y = np.asarray(table.y[mask])
    mine = _resamples(phase, list(exact), y, scores[mask],
                      None if labels is None else labels[mask], policy.report_resamples)
    theirs = None
    if previous is not None:
        behind = previous[1]
        other = from_bytes(behind.case_scores)[mask]
        other_labels = None if behind.case_labels is None else from_bytes(behind.case_labels)
        theirs = _resamples(phase, [phase.primary_metric], y, other,
                            None if other_labels is None else other_labels[mask],
                            policy.report_resamples)[phase.primary_metric]
    return release_boot_ladder_boot(mine, previous[0] if previous else None, theirs, policy,
                                    phase.primary_metric, phase.higher_is_better, source)
