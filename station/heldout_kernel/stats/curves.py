"""ROC curves of hidden data, coarsened with the same small-cell rule as subgroup scores.

Pure numpy, no Django: the platform draws these on its pages (`leaderboards.charts`) and a
data station draws them next to its data before sending them (`heldout_station.runner`), with this
one rule.

A full-resolution ROC curve on the public cases would tell a team that knows its own per-case
scores the label of every case (each step goes up for a positive, right for a negative). So
ROC points are taken only between groups of cases (in descending score order, tied scores
never split) that each hold at least `min_cases` cases and at least `min_positives` positives
and as many negatives; a short last group merges into the one before. Groups also hold at
least 1/`MAX_ROC_POINTS` of the cases, so a curve has at most that many points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: At most this many ROC points, whatever the number of cases.
MAX_ROC_POINTS = 100


@dataclass(frozen=True)
class RocCurve:
    """Coarsened ROC: (false positive rate, true positive rate) from (0, 0) to (1, 1)."""

    points: tuple[tuple[float, float], ...]
    n_cases: int
    n_groups: int


def _allowed(n: int, n_positive: int, min_cases: int, min_positives: int) -> bool:
    """A group (or cell, or bin) may be shown: enough cases, positives and negatives."""
    return n >= min_cases and n_positive >= min_positives and n - n_positive >= min_positives


def _roc_cuts(y: npt.NDArray[np.bool_], s: npt.NDArray[np.float64], min_cases: int,
              min_positives: int) -> list[int]:
    """Positions (in descending score order) after which a ROC point may be drawn."""
    order = np.argsort(-s, kind="stable")
    ends = np.r_[np.flatnonzero(np.diff(s[order]) != 0) + 1, s.size]
    positives = np.r_[0, np.cumsum(y[order])]
    size = max(min_cases, math.ceil(s.size / MAX_ROC_POINTS))
    cuts: list[int] = []
    start = 0
    for end in ends.tolist():
        if _allowed(end - start, int(positives[end] - positives[start]), size, min_positives):
            cuts.append(end)
            start = end
    if cuts and cuts[-1] != s.size:
        cuts[-1] = s.size
    return cuts


def roc_curve(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, min_cases: int, min_positives: int
) -> RocCurve | None:
    """The coarsened ROC curve (see module doc); None when fewer than two groups qualify."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    cuts = _roc_cuts(y, s, min_cases, min_positives)
    if len(cuts) < 2:
        return None
    order = np.argsort(-s, kind="stable")
    tp = np.r_[0, np.cumsum(y[order])]
    points = [(0.0, 0.0)] + [
        (float((c - tp[c]) / n_neg), float(tp[c] / n_pos)) for c in cuts
    ]
    return RocCurve(points=tuple(points), n_cases=int(y.size), n_groups=len(cuts))


def coarsen_points(
    points: list[list[float]] | tuple[tuple[float, float], ...], *, n_positive: int,
    n_negative: int, min_cases: int, min_positives: int,
) -> tuple[tuple[float, float], ...] | None:
    """A ROC curve drawn elsewhere (by a data station), coarsened again with this module's
    rule, its steps taken as the groups: a station's own coarse curve comes back unchanged,
    a finer one (a point per case) is merged into allowed groups. Points are recomputed from
    whole counts of negatives and positives, so nothing travels in their low digits. None
    when fewer than two groups qualify; ValueError for points that are not a ROC curve of
    `n_positive` positives and `n_negative` negatives (from (0, 0) to (1, 1), never down)."""
    counts = _point_counts(points, n_positive, n_negative)
    n = n_positive + n_negative
    size = max(min_cases, math.ceil(n / MAX_ROC_POINTS))
    cuts: list[tuple[int, int]] = []
    start = (0, 0)
    for negatives, positives in counts[1:]:
        step = negatives - start[0] + positives - start[1]
        if _allowed(step, positives - start[1], size, min_positives):
            cuts.append((negatives, positives))
            start = (negatives, positives)
    if cuts and cuts[-1] != counts[-1]:
        cuts[-1] = counts[-1]
    if len(cuts) < 2:
        return None
    return ((0.0, 0.0), *((fp / n_negative, tp / n_positive) for fp, tp in cuts))


def _point_counts(points: list[list[float]] | tuple[tuple[float, float], ...],
                  n_positive: int, n_negative: int) -> list[tuple[int, int]]:
    """(negatives, positives) above each point's threshold; ValueError unless they are whole
    (to 1e-6), start at (0, 0), end at every case and never decrease."""
    if n_positive <= 0 or n_negative <= 0 or not 2 <= len(points) <= n_positive + n_negative + 1:
        raise ValueError("roc points do not fit the part's cases")
    counts = []
    for fpr, tpr in points:
        negatives, positives = fpr * n_negative, tpr * n_positive
        whole = (round(negatives), round(positives))
        if abs(negatives - whole[0]) > 1e-6 or abs(positives - whole[1]) > 1e-6:
            raise ValueError("roc points must be whole counts of the part's cases")
        counts.append(whole)
    steps = zip(counts, counts[1:], strict=False)
    if counts[0] != (0, 0) or counts[-1] != (n_negative, n_positive) or any(
            b[0] < a[0] or b[1] < a[1] for a, b in steps):
        raise ValueError("roc points must rise from (0, 0) to (1, 1)")
    return counts
