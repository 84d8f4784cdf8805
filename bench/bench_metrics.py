"""Benchmark: every metric of heldout_kernel.stats.metrics against scikit-learn on 10^6 cases.

Run from the repository root:

    python bench/bench_metrics.py           # 1,000,000 cases
    python bench/bench_metrics.py --quick   # 100,000 cases, a smoke run

Measured: wall time of one metric call (best of 3, `time.perf_counter`) for our
implementation and for the scikit-learn function it must agree with, their ratio
(sklearn / ours; > 1 means ours is faster) and the absolute difference of the values. Data:
30-day readmission on the real Diabetes 130-US hospitals set (../shared/data), scored by a
logistic regression on five numeric columns (many tied scores), with encounters drawn with
replacement up to the requested size. When the data set is absent the script says so and
uses clearly labelled synthetic data. ECE has no scikit-learn counterpart; only ours is timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from readmission_cases import fitted_readmission_model  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from heldout_kernel.stats.metrics import METRICS  # noqa: E402

Reference = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
SKLEARN: dict[str, Reference] = {
    "auroc": lambda y, s, lab: skm.roc_auc_score(y, s),
    "auprc": lambda y, s, lab: skm.average_precision_score(y, s),
    "f1": lambda y, s, lab: skm.f1_score(y, lab),
    "sensitivity": lambda y, s, lab: skm.recall_score(y, lab),
    "specificity": lambda y, s, lab: skm.recall_score(y, lab, pos_label=0),
    "accuracy": lambda y, s, lab: skm.accuracy_score(y, lab),
    "brier": lambda y, s, lab: skm.brier_score_loss(y, s),
    "log_loss": lambda y, s, lab: skm.log_loss(y, s),
}


def load_cases(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(0)
    fitted = fitted_readmission_model()
    if fitted is not None:
        y, model, x = fitted
        s = model.predict_proba(x)[:, 1]
        pick = rng.integers(0, y.size, n)
        return y[pick], s[pick], f"diabetes readmission, {y.size:,} encounters resampled"
    y = (rng.random(n) < 0.11).astype(np.int64)
    s = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + y - 2))), 3)
    return y, s, "SYNTHETIC"


def best_of(runs: int, fn: Callable[[], float]) -> tuple[float, float]:
    """(best wall time in seconds, value)."""
    times, value = [], float("nan")
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 cases instead of 10^6")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    y, s, source = load_cases(n)
    lab = s >= 0.5
    print(f"{n:,} cases ({source}), prevalence {y.mean():.3f}, {np.unique(s).size:,} distinct")
    print("best of 3 wall times\n")
    print(f"{'metric':<12} {'ours ms':>9} {'sklearn ms':>11} {'sklearn/ours':>13} {'|diff|':>9}")
    for name, metric in METRICS.items():
        ours_t, ours = best_of(3, lambda m=metric: m(y, s, lab))
        if name not in SKLEARN:
            print(f"{name:<12} {ours_t * 1e3:>9.1f} {'-':>11} {'-':>13} {'-':>9}")
            continue
        ref_t, ref = best_of(3, lambda f=SKLEARN[name]: float(f(y, s, lab)))
        ratio = ref_t / ours_t
        diff = abs(ours - ref)
        row = f"{ours_t * 1e3:>9.1f} {ref_t * 1e3:>11.1f} {ratio:>12.1f}x {diff:>9.1e}"
        print(f"{name:<12} {row}")
        print(f"FIGURE\tmetric {name}, ours against scikit-learn\t{ratio:.1f}\tx faster\t"
              f"|diff| {diff:.0e}", flush=True)


if __name__ == "__main__":
    main()
