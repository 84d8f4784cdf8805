"""heldout_kernel.stats.metrics agrees with scikit-learn on real and tied data, and is NaN-safe."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from heldout_kernel.stats.metrics import (
    DETECTION_METRICS,
    ECE_BIN_EDGES,
    METRICS,
    Lesion,
    compute_metrics,
    froc_sensitivity,
    get_metric,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DIABETES = DATA / "diabetes_130_us_hospitals" / "diabetic_data.csv.gz"
NUMERIC = [
    "time_in_hospital",
    "num_lab_procedures",
    "num_medications",
    "number_inpatient",
    "number_emergency",
]

Reference = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

# scikit-learn's value for each metric from (y_true, y_score, hard labels).
SKLEARN: dict[str, Reference] = {
    "auroc": lambda y, s, lab: skm.roc_auc_score(y, s),
    "auprc": lambda y, s, lab: skm.average_precision_score(y, s),
    "f1": lambda y, s, lab: skm.f1_score(y, lab),
    "sensitivity": lambda y, s, lab: skm.recall_score(y, lab),
    "specificity": lambda y, s, lab: skm.recall_score(y, lab, pos_label=0),
    "accuracy": lambda y, s, lab: skm.accuracy_score(y, lab),
    "brier": lambda y, s, lab: skm.brier_score_loss(y, s),
    "log_loss": lambda y, s, lab: skm.log_loss(y, s, labels=[0, 1]),
}


def plain_ece(y: np.ndarray, p: np.ndarray) -> float:
    """ECE written out: 10 bins [0, .1), ..., [.9, 1], weighted by bin count."""
    total = 0.0
    for b in range(10):
        lo, hi = ECE_BIN_EDGES[b], ECE_BIN_EDGES[b + 1]
        members = [i for i in range(len(p)) if lo <= p[i] < hi or (b == 9 and p[i] == hi)]
        if members:
            mean_y = sum(y[i] for i in members) / len(members)
            mean_p = sum(p[i] for i in members) / len(members)
            total += len(members) / len(p) * abs(mean_y - mean_p)
    return total


@lru_cache(maxsize=1)
def diabetes() -> pd.DataFrame:
    if not DIABETES.is_file():
        raise FileNotFoundError(f"the real data set is required at {DIABETES}")
    return pd.read_csv(DIABETES, usecols=[*NUMERIC, "readmitted", "patient_nbr"])


@lru_cache(maxsize=8)
def diabetes_readmission(
    features: tuple[str, ...] = tuple(NUMERIC),
) -> tuple[np.ndarray, np.ndarray]:
    """(30-day readmission 0/1, in-sample logistic-regression probability) for every encounter."""
    df = diabetes()
    y = (df["readmitted"] == "<30").to_numpy().astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    x = df[list(features)].to_numpy(dtype=np.float64)
    return y, model.fit(x, y).predict_proba(x)[:, 1]


def tied_random(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals (many ties, including exact 0 and 1) and unrelated labels."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    s = np.round(np.clip(rng.normal(0.35 + 0.25 * y, 0.25), 0.0, 1.0), 2)
    return y, s, (rng.random(n) < 0.4).astype(np.int64)


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_it_matches_sklearn_on_tied_random_data(name: str) -> None:
    y, s, labels = tied_random()
    assert len(np.unique(s)) <= 101 and {0.0, 1.0} <= set(s)
    assert METRICS[name](y, s) == pytest.approx(SKLEARN[name](y, s, s >= 0.5), abs=1e-12)
    assert METRICS[name](y, s, labels) == pytest.approx(SKLEARN[name](y, s, labels), abs=1e-12)


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_it_matches_sklearn_on_diabetes_readmission(name: str) -> None:
    y, s = diabetes_readmission()
    assert y.size == 101_766 and 0.05 < y.mean() < 0.2
    ours = METRICS[name](y, s)
    assert ours == pytest.approx(SKLEARN[name](y, s, s >= 0.5), abs=1e-12)
    assert not math.isnan(ours)


def test_ece_matches_a_plain_loop() -> None:
    y, s, _ = tied_random(n=1500)
    assert METRICS["ece"](y, s) == pytest.approx(plain_ece(y, s), abs=1e-12)
    y, s = diabetes_readmission(("number_inpatient", "number_emergency"))
    y, s = y[:5000], s[:5000]
    assert METRICS["ece"](y, s) == pytest.approx(plain_ece(y, s), abs=1e-12)


def test_ece_puts_bin_edges_in_the_upper_bin_and_one_in_the_last() -> None:
    # Bin [0.1, 0.2): gap |1 - 0.1| over 1 of 2 cases; bin [0.9, 1]: gap |1 - 1.0| = 0.
    assert METRICS["ece"](np.array([1, 1]), np.array([0.1, 1.0])) == pytest.approx(0.45)


@pytest.mark.parametrize("y", [np.zeros(50, dtype=int), np.ones(50, dtype=int)])
@pytest.mark.parametrize("name", ["auroc", "auprc"])
def test_it_returns_nan_without_warning_for_a_single_class(name: str, y: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(METRICS[name](y, np.linspace(0, 1, 50)))


def test_it_returns_nan_for_zero_denominators() -> None:
    negatives = np.zeros(4, dtype=int)
    low = np.full(4, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(METRICS["sensitivity"](negatives, low))
        assert math.isnan(METRICS["f1"](negatives, low))
        assert math.isnan(METRICS["specificity"](np.ones(4, dtype=int), low))
        assert METRICS["specificity"](negatives, low) == 1.0
        for metric in METRICS.values():
            assert math.isnan(metric(np.array([], dtype=int), np.array([])))


def test_it_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        METRICS["auroc"]([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="shape"):
        METRICS["auroc"]([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        METRICS["brier"]([0, 1], [0.1, float("nan")])


def test_the_registry_declares_names_titles_and_directions() -> None:
    assert list(METRICS) == [
        "auroc", "auprc", "f1", "sensitivity", "specificity", "accuracy",
        "brier", "log_loss", "ece",
    ]  # fmt: skip
    lower_is_better = {n for n, m in METRICS.items() if not m.higher_is_better}
    assert lower_is_better == {"brier", "log_loss", "ece"}
    uses_labels = {n for n, m in METRICS.items() if m.uses_labels}
    assert uses_labels == {"f1", "sensitivity", "specificity", "accuracy"}
    assert get_metric("auroc").title == "AUROC"
    assert DETECTION_METRICS["froc"].higher_is_better


def test_get_metric_names_the_known_metrics_when_asked_for_an_unknown_one() -> None:
    with pytest.raises(KeyError, match="known metrics: accuracy, auprc, auroc"):
        get_metric("auc")
    with pytest.raises(KeyError, match="DETECTION_METRICS"):
        get_metric("froc")


def test_compute_metrics_thresholds_scores_at_one_half_unless_labels_are_given() -> None:
    y = np.array([1, 1, 0, 0])
    s = np.array([0.9, 0.5, 0.49, 0.2])
    assert compute_metrics(["accuracy", "auroc"], y, s) == {"accuracy": 1.0, "auroc": 1.0}
    assert compute_metrics(["accuracy"], y, s, y_label=np.array([0, 0, 0, 0])) == {"accuracy": 0.5}


# --------------------------------------------------------------------------- FROC


def test_froc_on_a_hand_computed_two_image_case() -> None:
    lesions = [Lesion("img1", 10, 10, 5), Lesion("img2", 50, 50, 10)]
    detections = [
        ("img1", 12, 10, 0.9),  # 2 from A's centre: hits A
        ("img1", 30, 30, 0.8),  # false positive
        ("img2", 50, 61, 0.7),  # 11 > 10 from B's centre: false positive
        ("img2", 50, 60, 0.6),  # exactly on B's circle: hits B
        ("img1", 10, 14, 0.5),  # second hit on A: neither TP nor FP
        ("img2", 0, 0, 0.4),  # false positive
    ]
    # threshold -> (sensitivity, FPs / 2 images): inf (0, 0), .9 (.5, 0), .8 (.5, .5),
    # .7 (.5, 1), .6 (1, 1), .4 (1, 1.5). Best sensitivity within each budget:
    # 1/8, 1/4, 1/2 -> 0.5; 1, 2, 4, 8 -> 1.0. Mean = (3 * 0.5 + 4 * 1.0) / 7 = 5.5 / 7.
    assert froc_sensitivity(detections, lesions, n_images=2) == pytest.approx(5.5 / 7)
    assert DETECTION_METRICS["froc"](detections, lesions, 2) == pytest.approx(5.5 / 7)


def test_froc_counts_extra_hits_on_a_found_lesion_as_neither_tp_nor_fp() -> None:
    lesions = [Lesion("a", 0, 0, 5), Lesion("a", 100, 100, 5)]
    detections = [("a", 0, 0, 0.9), ("a", 1, 1, 0.8), ("a", 100, 101, 0.7)]
    # Were the 0.8 hit a false positive, reaching the second lesion (t=0.7) would cost 1 FP
    # per image, over the 0.5 budget, and sensitivity there would be 0.5 instead of 1.
    assert froc_sensitivity(detections, lesions, 1, fp_rates=(0.5,)) == 1.0
    # Two hits on the same lesion still find one of two lesions.
    assert froc_sensitivity(detections[:2], lesions, 1) == 0.5


def test_froc_lets_one_detection_find_overlapping_lesions() -> None:
    lesions = [Lesion("a", 0, 0, 5), Lesion("a", 3, 0, 5)]
    assert froc_sensitivity([("a", 1.5, 0, 0.3)], lesions, 1) == 1.0


def test_froc_needs_the_same_image_and_lesions() -> None:
    lesions = [Lesion("a", 0, 0, 5)]
    assert froc_sensitivity([("b", 0, 0, 0.9)], lesions, 2) == 0.0
    assert froc_sensitivity([], lesions, 2) == 0.0
    assert math.isnan(froc_sensitivity([("a", 0, 0, 0.9)], [], 2))
    with pytest.raises(ValueError, match="n_images"):
        froc_sensitivity([], lesions, 0)


def test_froc_spends_the_fp_budget_per_image() -> None:
    lesions = [Lesion("a", 0, 0, 1)]
    detections = [("b", 9, 9, 0.9), ("c", 9, 9, 0.8), ("a", 0, 0, 0.1)]
    # Finding the lesion costs 2 FPs: 0.25 per image over 8 images, 1 per image over 2.
    assert froc_sensitivity(detections, lesions, 8, fp_rates=(0.125, 0.25)) == 0.5
    assert froc_sensitivity(detections, lesions, 2, fp_rates=(0.5, 1)) == 0.5
