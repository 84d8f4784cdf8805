"""Benchmark: leaderboard bootstrap (heldout_kernel.stats.ranking.rank_entries) against a plain
sklearn loop.

Run from the repository root:

    python bench/bench_bootstrap.py           # 100 entries x 20,000 cases x 1,000 resamples
    python bench/bench_bootstrap.py --quick   # 10 entries x 5,000 cases x 100 resamples

Measured, all in one process:
1. `rank_entries` with primary metric auroc, then with auroc + secondary auprc and brier:
   wall time (`time.perf_counter`, one run each) and peak memory, taken as the tracemalloc
   peak (numpy reports its array buffers to tracemalloc) during a second, traced run of the
   same call, so that tracing does not distort the timing.
2. The straightforward alternative: a Python loop over the same resample indices calling
   scikit-learn on explicitly indexed arrays, for a subsample of entries and resamples. Its
   time per (entry x resample) is extrapolated to the full size and compared with ours.

Data: cases are encounters drawn from the real Diabetes 130-US hospitals set
(../shared/data), label 30-day readmission; each entry is a logistic regression on five
numeric columns with its own noise on the logit, rounded to 4 decimals like a CSV
submission. When the data set is absent the script says so and uses labelled synthetic data.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from readmission_cases import fitted_readmission_model  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from heldout_kernel.stats.ranking import (  # noqa: E402
    EntryScores,
    bootstrap_indices,
    default_chunk_size,
    rank_entries,
)

SKLEARN: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auroc": skm.roc_auc_score,
    "auprc": skm.average_precision_score,
    "brier": skm.brier_score_loss,
}


@dataclass(frozen=True)
class Size:
    entries: int
    cases: int
    resamples: int
    loop_entries: int
    loop_resamples: int


FULL = Size(entries=100, cases=20_000, resamples=1_000, loop_entries=5, loop_resamples=50)
QUICK = Size(entries=10, cases=5_000, resamples=100, loop_entries=3, loop_resamples=20)


def base_scores(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(labels, logit of a logistic regression) for n cases."""
    fitted = fitted_readmission_model()
    if fitted is not None:
        y, model, x = fitted
        logit = model.decision_function(x)
        pick = rng.choice(y.size, size=n, replace=False)
        return y[pick], logit[pick], "diabetes readmission (real)"
    y = (rng.random(n) < 0.11).astype(np.int64)
    return y, rng.normal(size=n) + y - 2, "SYNTHETIC"


def make_entries(size: Size, seed: int = 0) -> tuple[np.ndarray, list[EntryScores], str]:
    rng = np.random.default_rng(seed)
    y, logit, source = base_scores(size.cases, rng)
    entries = []
    for k in range(size.entries):
        noisy = logit + rng.normal(scale=rng.uniform(0.0, 1.5), size=logit.size)
        scores = np.round(1 / (1 + np.exp(-noisy)), 4)
        entries.append(EntryScores(key=f"s{k}", team=f"team{k}", scores=scores))
    return y, entries, source


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def sklearn_loop(
    y: np.ndarray, entries: list[EntryScores], metrics: list[str], size: Size
) -> float:
    """Seconds per (entry x resample) for the plain loop over the same resamples."""
    first = bootstrap_indices(y.size, size.resamples, seed=0, chunk_size=size.loop_resamples)
    indices = next(first)
    start = time.perf_counter()
    for entry in entries[: size.loop_entries]:
        for idx in indices:
            for name in metrics:
                SKLEARN[name](y[idx], entry.scores[idx])
    return (time.perf_counter() - start) / (size.loop_entries * size.loop_resamples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    y, entries, source = make_entries(size)
    chunk = default_chunk_size(size.cases, size.resamples)
    print(
        f"{size.entries} entries x {size.cases:,} cases x {size.resamples:,} resamples; "
        f"{source}, prevalence {y.mean():.3f}; resamples in chunks of {chunk}"
    )
    print(
        f"sklearn loop measured on {size.loop_entries} entries x {size.loop_resamples} "
        "resamples and extrapolated; memory = tracemalloc peak of a separate traced run\n"
    )
    header = f"{'metrics':<22} {'ours s':>8} {'peak MiB':>9} {'sklearn loop s':>15} {'ratio':>8}"
    print(header)
    full = size.entries * size.resamples
    for metrics in (["auroc"], ["auroc", "auprc", "brier"]):

        def run(metrics: list[str] = metrics) -> object:
            return rank_entries(
                entries, y, primary=metrics[0], secondary=metrics[1:], n_resamples=size.resamples
            )

        ours = timed(run)
        peak = peak_mib(run)
        loop = sklearn_loop(y, entries, metrics, size) * full
        label = " + ".join(metrics)
        print(f"{label:<22} {ours:>8.2f} {peak:>9.0f} {loop:>15.1f} {loop / ours:>7.0f}x")
        print(f"FIGURE\tbootstrap {size.entries} x {size.cases:,} x {size.resamples:,}, {label}"
              f"\t{ours:.3f}\ts\t{'<= 5 s' if metrics == ['auroc'] else ''}", flush=True)
        print(f"FIGURE\t  against a plain scikit-learn loop, {label}\t{loop / ours:.1f}\tx faster"
              "\t>= 50x", flush=True)


if __name__ == "__main__":
    main()
