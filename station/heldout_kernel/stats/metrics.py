"""Challenge metrics: pure numpy, no ORM.

Organisers name metrics in `challenge.yaml` by the keys of `METRICS` (per-case binary
classification) and `DETECTION_METRICS` (lesion detection, a different call signature).

Contract for every classification metric (`Metric.__call__`):

- `y_true`: 0/1 ground truth, shape (n,).
- `y_score`: finite score per case, shape (n,); a probability of the positive class for the
  calibration metrics (`brier`, `log_loss`, `ece`).
- `y_label`: optional hard 0/1 prediction per case; when omitted it is `y_score >= 0.5`
  (the container contract's rule). Only metrics with `uses_labels=True` read it.
- Returns a Python float. Degenerate input (a single class for `auroc`/`auprc`, a zero
  denominator, no cases) gives `nan`, never an exception or a warning, because a leaderboard
  must still render for a tiny or unlucky evaluation set. Malformed input (shape mismatch,
  non-binary `y_true`, non-finite scores) raises `ValueError`.

The results agree with scikit-learn (`roc_auc_score`, `average_precision_score`, `f1_score`,
`recall_score`, `accuracy_score`, `brier_score_loss`, `log_loss`) to floating-point rounding;
the tests check it on real data with ties.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike

#: scikit-learn >= 1.5 clips predicted probabilities to machine epsilon (it used 1e-15
#: before); we follow the installed reference so that participants' local numbers match ours.
LOG_LOSS_EPS: float = float(np.finfo(np.float64).eps)

#: Equal-width calibration bins on [0, 1]: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0].
ECE_BIN_EDGES: FloatArray = np.linspace(0.0, 1.0, 11)

NAN = float("nan")


# --------------------------------------------------------------------------- input checks


def validate_truth(y_true: ArrayLike) -> BoolArray:
    """A one-dimensional 0/1 (or boolean) array as booleans; ValueError otherwise."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.dtype != np.bool_ and not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must contain only 0 and 1")
    truth: BoolArray = y.astype(np.bool_, copy=False)
    return truth


def validate_scores(y_score: ArrayLike, n: int) -> FloatArray:
    """Finite float64 scores of shape (n,); ValueError otherwise."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"y_score must have shape ({n},), got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score must be finite")
    return s


def validate_labels(y_label: ArrayLike | None, s: FloatArray) -> BoolArray:
    """Hard labels aligned with `s`; `s >= 0.5` when none are given."""
    if y_label is None:
        return s >= 0.5
    lab = validate_truth(y_label)
    if lab.shape != s.shape:
        raise ValueError(f"y_label must have shape {s.shape}, got {lab.shape}")
    return lab


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den != 0 else NAN


# --------------------------------------------------------------------------- ranking metrics


@dataclass(frozen=True)
class PositiveGroups:
    """Counts at each distinct score u among the positives, in ascending order of u.

    `pos_below`/`pos_upto`: positives with score < u / <= u; `neg_below`/`neg_upto`: the
    same for negatives. AUROC and AUPRC only change at these scores, so these counts
    determine both, ties included; `auroc` and `auprc` need only two sorts (one per class)
    and binary searches, no argsort.
    """

    pos_below: npt.NDArray[np.intp]
    pos_upto: npt.NDArray[np.intp]
    neg_below: npt.NDArray[np.intp]
    neg_upto: npt.NDArray[np.intp]


def positive_groups(pos: FloatArray, neg: FloatArray) -> PositiveGroups:
    """Groups from the positives' and the negatives' scores, each sorted ascending."""
    starts = np.flatnonzero(np.r_[pos.size > 0, pos[1:] != pos[:-1]])
    u = pos[starts]
    return PositiveGroups(
        pos_below=starts,
        pos_upto=np.r_[starts[1:], pos.size][: starts.size],
        neg_below=np.searchsorted(neg, u, side="left"),
        neg_upto=np.searchsorted(neg, u, side="right"),
    )


def _rank_by_class(
    y_true: ArrayLike, y_score: ArrayLike
) -> tuple[PositiveGroups, int, int] | None:
    """(groups, positives, negatives), or None when a class is absent (the metric is nan)."""
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    return positive_groups(np.sort(s[y]), np.sort(s[~y])), n_pos, n_neg


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic: each positive scores the
    negatives below it plus half the negatives tied with it (average ranks)."""
    ranked = _rank_by_class(y_true, y_score)
    if ranked is None:
        return NAN
    g, n_pos, n_neg = ranked
    # Integer arithmetic up to the final division: exact for any realistic n.
    u2 = int(np.dot(g.pos_upto - g.pos_below, g.neg_below + g.neg_upto))
    return u2 / (2 * n_pos * n_neg)


def auprc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision, sum over thresholds of (R_k - R_{k-1}) * P_k (no interpolation).

    Thresholds are the distinct scores, so tied cases enter together, exactly as
    `sklearn.metrics.average_precision_score`. Only thresholds at a positive's score move
    recall; at threshold u everything scoring >= u is predicted positive.
    """
    ranked = _rank_by_class(y_true, y_score)
    if ranked is None:
        return NAN
    g, n_pos, n_neg = ranked
    tp = n_pos - g.pos_below
    precision = tp / (tp + (n_neg - g.neg_below))
    return float(np.dot(g.pos_upto - g.pos_below, precision) / n_pos)


# --------------------------------------------------------------------------- label metrics


def _confusion(y: BoolArray, lab: BoolArray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(y & lab))
    fp = int(np.count_nonzero(~y & lab))
    fn = int(np.count_nonzero(y & ~lab))
    return tp, fp, fn, y.size - tp - fp - fn


def f1(y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None) -> float:
    """2TP / (2TP + FP + FN); nan when there are neither true nor predicted positives."""
    y = validate_truth(y_true)
    tp, fp, fn, _ = _confusion(y, validate_labels(y_label, validate_scores(y_score, y.size)))
    return _ratio(2 * tp, 2 * tp + fp + fn)


def sensitivity(y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None) -> float:
    """TP / (TP + FN), recall of the positive class."""
    y = validate_truth(y_true)
    tp, _, fn, _ = _confusion(y, validate_labels(y_label, validate_scores(y_score, y.size)))
    return _ratio(tp, tp + fn)


def specificity(y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None) -> float:
    """TN / (TN + FP), recall of the negative class."""
    y = validate_truth(y_true)
    _, fp, _, tn = _confusion(y, validate_labels(y_label, validate_scores(y_score, y.size)))
    return _ratio(tn, tn + fp)


def accuracy(y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None) -> float:
    """(TP + TN) / n."""
    y = validate_truth(y_true)
    tp, _, _, tn = _confusion(y, validate_labels(y_label, validate_scores(y_score, y.size)))
    return _ratio(tp + tn, y.size)


# --------------------------------------------------------------------------- calibration


def brier(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean squared difference between the outcome and the predicted probability."""
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    if y.size == 0:
        return NAN
    return float(np.mean((y - s) ** 2))


def log_loss_terms(y: BoolArray, s: FloatArray) -> FloatArray:
    """Per-case negative log-likelihood, probabilities clipped to [eps, 1 - eps]."""
    p = np.clip(s, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return -np.log(np.where(y, p, 1.0 - p))


def log_loss(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped by `LOG_LOSS_EPS`."""
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    if y.size == 0:
        return NAN
    return float(np.mean(log_loss_terms(y, s)))


def ece_bins(s: FloatArray) -> npt.NDArray[np.intp]:
    """Bin index 0..9 of each probability; the last bin is closed so that 1.0 belongs to it.

    Scores outside [0, 1] fall into the first or last bin.
    """
    return np.searchsorted(ECE_BIN_EDGES[1:-1], s, side="right")


def ece(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Expected calibration error with 10 equal-width bins weighted by bin count.

    ECE = sum_b (n_b / n) * |mean(y in b) - mean(p in b)| = sum_b |sum_{i in b}(y_i - p_i)| / n,
    bins [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] (see `ece_bins`); empty bins contribute 0.
    """
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    if y.size == 0:
        return NAN
    gap = np.bincount(ece_bins(s), weights=y - s, minlength=ECE_BIN_EDGES.size - 1)
    return float(np.sum(np.abs(gap)) / y.size)


# --------------------------------------------------------------------------- registry


MetricFunction = Callable[[ArrayLike, ArrayLike, ArrayLike | None], float]


def _scores_only(fn: Callable[[ArrayLike, ArrayLike], float]) -> MetricFunction:
    def call(y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None) -> float:
        return fn(y_true, y_score)

    return call


@dataclass(frozen=True)
class Metric:
    """A per-case binary classification metric.

    `uses_labels` is True when the metric reads hard 0/1 labels (given, or `y_score >= 0.5`)
    rather than the scores themselves.
    """

    name: str
    title: str
    higher_is_better: bool
    uses_labels: bool
    fn: MetricFunction = field(repr=False, compare=False)

    def __call__(
        self, y_true: ArrayLike, y_score: ArrayLike, y_label: ArrayLike | None = None
    ) -> float:
        return self.fn(y_true, y_score, y_label)


METRICS: Mapping[str, Metric] = types.MappingProxyType(
    {
        m.name: m
        for m in (
            Metric("auroc", "AUROC", True, False, _scores_only(auroc)),
            Metric("auprc", "AUPRC", True, False, _scores_only(auprc)),
            Metric("f1", "F1", True, True, f1),
            Metric("sensitivity", "Sensitivity", True, True, sensitivity),
            Metric("specificity", "Specificity", True, True, specificity),
            Metric("accuracy", "Accuracy", True, True, accuracy),
            Metric("brier", "Brier score", False, False, _scores_only(brier)),
            Metric("log_loss", "Log loss", False, False, _scores_only(log_loss)),
            Metric("ece", "ECE", False, False, _scores_only(ece)),
        )
    }
)


def get_metric(name: str) -> Metric:
    """The classification metric called `name`; KeyError naming the known metrics otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        hint = " (a detection metric: see DETECTION_METRICS)" if name in DETECTION_METRICS else ""
        known = ", ".join(sorted(METRICS))
        raise KeyError(f"unknown metric {name!r}{hint}; known metrics: {known}") from None


def compute_metrics(
    names: Sequence[str],
    y_true: ArrayLike,
    y_score: ArrayLike,
    y_label: ArrayLike | None = None,
) -> dict[str, float]:
    """Each named metric on the same predictions; `y_label` None means `y_score >= 0.5`."""
    metrics = [get_metric(name) for name in names]
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    lab = validate_labels(y_label, s)
    return {m.name: m(y, s, lab) for m in metrics}


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Lesion:
    """A ground-truth lesion: a circle of `radius` around (x, y) on image `image_id`."""

    image_id: str
    x: float
    y: float
    radius: float


Detection = tuple[str, float, float, float]

FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1, 2, 4, 8)


def _match_detections(
    detections: Sequence[Detection], lesions: Sequence[Lesion]
) -> tuple[FloatArray, FloatArray]:
    """(best hit score per lesion, -inf if never hit; scores of the false positives)."""
    by_image: dict[str, list[int]] = {}
    for i, lesion in enumerate(lesions):
        by_image.setdefault(lesion.image_id, []).append(i)
    best = np.full(len(lesions), -np.inf)
    false_pos: list[float] = []
    for image_id, x, y, score in detections:
        hit = [
            i
            for i in by_image.get(image_id, ())
            if (x - lesions[i].x) ** 2 + (y - lesions[i].y) ** 2 <= lesions[i].radius ** 2
        ]
        if not hit:
            false_pos.append(float(score))
        for i in hit:
            best[i] = max(best[i], float(score))
    return best, np.asarray(false_pos, dtype=np.float64)


def froc_sensitivity(
    detections: Sequence[Detection],
    lesions: Sequence[Lesion],
    n_images: int,
    fp_rates: Sequence[float] = FROC_FP_RATES,
) -> float:
    """Mean lesion sensitivity at fixed false positives per image (FROC).

    Rule:
    - `detections` are `(image_id, x, y, score)`; a detection *hits* a lesion on the same
      image when its distance to the lesion centre is at most the radius (on the circle
      counts as inside). One detection may hit several overlapping lesions.
    - A lesion counts once, with the score of its highest-scoring hit; other hits on it are
      neither true nor false positives. A detection that hits no lesion is a false positive.
    - Thresholds sweep over every detection score (keeping detections with score >= t), plus
      "keep nothing". At threshold t, sensitivity = lesions whose best hit >= t / all lesions
      and the false-positive rate = false positives with score >= t / `n_images`.
    - Sensitivity at rate f is the highest sensitivity over thresholds whose false-positive
      rate is <= f (a step function, no interpolation); the result is the mean over
      `fp_rates`.

    `n_images` counts all evaluated images, including those without lesions or detections.
    Returns nan when there are no lesions.
    """
    if n_images < 1:
        raise ValueError("n_images must be at least 1")
    if not lesions:
        return NAN
    best, false_pos = _match_detections(detections, lesions)
    candidates = np.unique(np.concatenate([best[np.isfinite(best)], false_pos]))
    thresholds: FloatArray = np.append(candidates, np.inf)
    n_detected = best.size - np.searchsorted(np.sort(best), thresholds)
    n_false = false_pos.size - np.searchsorted(np.sort(false_pos), thresholds)
    sens = n_detected / len(lesions)
    fp_rate = n_false / n_images
    # Both curves fall as the threshold rises, so the best sensitivity within a false-positive
    # budget is at the lowest threshold that fits it.
    values = [float(np.max(sens[fp_rate <= f])) for f in fp_rates]
    return float(np.mean(values))


@dataclass(frozen=True)
class DetectionMetric:
    """A lesion-detection metric: `(detections, lesions, n_images) -> float`."""

    name: str
    title: str
    higher_is_better: bool
    fn: Callable[[Sequence[Detection], Sequence[Lesion], int], float] = field(
        repr=False, compare=False
    )

    def __call__(
        self, detections: Sequence[Detection], lesions: Sequence[Lesion], n_images: int
    ) -> float:
        return self.fn(detections, lesions, n_images)


DETECTION_METRICS: Mapping[str, DetectionMetric] = types.MappingProxyType(
    {"froc": DetectionMetric("froc", "FROC sensitivity", True, froc_sensitivity)}
)


def is_detection_metric(name: str) -> bool:
    return name in DETECTION_METRICS


def higher_is_better(name: str) -> bool:
    """The direction of any metric, classification or detection; KeyError when unknown."""
    if name in DETECTION_METRICS:
        return DETECTION_METRICS[name].higher_is_better
    return get_metric(name).higher_is_better


def metric_title(name: str) -> str:
    found = METRICS.get(name) or DETECTION_METRICS.get(name)
    if found is None:
        raise KeyError(f"unknown metric {name!r}")
    return found.title
