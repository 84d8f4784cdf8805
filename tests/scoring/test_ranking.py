"""heldout_kernel.stats.ranking: paired bootstrap, Bayes factors and ranks, checked against a plain
loop."""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from heldout_kernel.stats.metrics import METRICS
from heldout_kernel.stats.ranking import (
    Board,
    EntryScores,
    Interval,
    _CountCache,
    bootstrap_indices,
    metric_on_resamples,
    rank_entries,
    resample_values,
    resample_weight_chunks,
    resample_weights,
)
from tests.scoring.test_metrics import SKLEARN, diabetes, tied_random

N_CASES = 3000
B = 200

# Five teams' logistic regressions on different feature subsets, plus a one-feature baseline.
SUBSETS: dict[str, tuple[str, ...]] = {
    "all-five": (
        "time_in_hospital", "num_lab_procedures", "num_medications",
        "number_inpatient", "number_emergency",
    ),
    "prior-visits": ("number_inpatient", "number_emergency"),
    "inpatient-only": ("number_inpatient",),
    "stay-and-drugs": ("time_in_hospital", "num_medications"),
    "labs-only": ("num_lab_procedures",),
    "baseline-emergency": ("number_emergency",),
}  # fmt: skip


@lru_cache(maxsize=1)
def readmission_entries() -> tuple[np.ndarray, tuple[EntryScores, ...]]:
    """3,000 held-out encounters (patients unseen in training) and every model's scores."""
    df = diabetes()
    y = (df["readmitted"] == "<30").to_numpy().astype(np.int64)
    rng = np.random.default_rng(2024)
    patients = df["patient_nbr"].unique()
    held_out = df["patient_nbr"].isin(rng.choice(patients, size=patients.size // 5, replace=False))
    cases = np.sort(rng.choice(np.flatnonzero(held_out), size=N_CASES, replace=False))
    train = ~held_out.to_numpy()
    entries = []
    for key, features in SUBSETS.items():
        x = df[list(features)].to_numpy(dtype=np.float64)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        scores = model.fit(x[train], y[train]).predict_proba(x[cases])[:, 1]
        # One team submits its own hard labels (flag the top decile) instead of score >= 0.5.
        top_decile = (scores >= np.quantile(scores, 0.9)).astype(np.int64)
        labels = top_decile if key == "prior-visits" else None
        baseline = key.startswith("baseline")
        entries.append(EntryScores(key, key, scores, labels, is_baseline=baseline))
    return y[cases], tuple(entries)


def hard_labels(entry: EntryScores) -> np.ndarray:
    return entry.scores >= 0.5 if entry.labels is None else entry.labels


def reference(name: str, y: np.ndarray, s: np.ndarray, labels: np.ndarray) -> float:
    if name == "ece":
        return METRICS["ece"](y, s)  # itself checked against a plain loop in test_metrics
    return float(SKLEARN[name](y, s, labels))


def plain_loop_board(
    entries: tuple[EntryScores, ...], y: np.ndarray, names: list[str], seed: int
) -> tuple[dict[str, dict[str, Interval]], dict[str, float]]:
    """Intervals and K from scikit-learn on explicitly indexed arrays, one resample at a time."""
    indices = np.vstack(list(bootstrap_indices(y.size, B, seed)))
    values = {
        e.key: {
            n: np.array([reference(n, y[i], e.scores[i], hard_labels(e)[i]) for i in indices])
            for n in names
        }
        for e in entries
    }
    intervals = {
        key: {n: Interval(*np.percentile(v[~np.isnan(v)], [2.5, 97.5])) for n, v in per.items()}
        for key, per in values.items()
    }
    primary = names[0]
    sign = 1 if METRICS[primary].higher_is_better else -1
    ranked = [e for e in entries if not e.is_baseline]
    points = {e.key: reference(primary, y, e.scores, hard_labels(e)) for e in ranked}
    leader = max(ranked, key=lambda e: sign * points[e.key]).key
    factors = {}
    for e in ranked:
        if e.key == leader:
            continue
        better = not_better = 0  # DREAM: a tie counts against the leader
        for a, b in zip(values[leader][primary], values[e.key][primary], strict=True):
            if sign * a > sign * b:
                better += 1
            else:
                not_better += 1
        factors[e.key] = better / not_better if not_better else math.inf
    return intervals, factors


def by_key(board: Board) -> dict[str, object]:
    return {e.key: e for e in board.entries}


@pytest.mark.parametrize(
    ("primary", "secondary"),
    [("auroc", ["auprc", "brier", "f1"]), ("brier", ["log_loss", "sensitivity"])],
)
def test_intervals_and_bayes_factors_equal_a_plain_sklearn_loop(
    primary: str, secondary: list[str]
) -> None:
    y, entries = readmission_entries()
    board = rank_entries(entries, y, primary=primary, secondary=secondary, n_resamples=B, seed=11)
    intervals, factors = plain_loop_board(entries, y, [primary, *secondary], seed=11)
    got = by_key(board)
    for key, expected in intervals.items():
        for name, interval in expected.items():
            assert got[key].intervals[name].low == pytest.approx(interval.low, abs=1e-10)
            assert got[key].intervals[name].high == pytest.approx(interval.high, abs=1e-10)
    assert {e.key: e.bayes_factor for e in board.entries if e.bayes_factor is not None} == (
        pytest.approx(factors, abs=1e-12)
    )
    for e in board.entries:
        assert e.tied_with_leader == (e.bayes_factor is not None and e.bayes_factor < 3.0)
        assert e.intervals[primary].low <= e.metrics[primary] <= e.intervals[primary].high


@pytest.mark.parametrize("name", list(METRICS))
def test_each_weighted_kernel_equals_the_metric_on_resampled_arrays(name: str) -> None:
    y, entries = readmission_entries()
    ty, ts, tlabels = tied_random(n=800)
    cases = [
        (y, entries[0].scores, None),
        (y, entries[1].scores, entries[1].labels),
        (ty, ts, None),
        (ty, ts, tlabels),
    ]
    for yy, s, labels in cases:
        indices = next(bootstrap_indices(yy.size, 40, seed=5))
        lab = s >= 0.5 if labels is None else labels
        expected = [reference(name, yy[i], s[i], lab[i]) for i in indices]
        got = metric_on_resamples(name, yy, s, indices, labels)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_it_orders_by_the_primary_metric_and_its_direction() -> None:
    y, entries = readmission_entries()
    for primary in ("auroc", "brier"):
        board = rank_entries(entries, y, primary=primary, n_resamples=20)
        values = [e.metrics[primary] for e in board.entries]
        assert values == sorted(values, reverse=METRICS[primary].higher_is_better)
    assert by_key(rank_entries(entries, y, primary="auroc", n_resamples=20))["all-five"].rank == 1


def test_exact_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    y, entries = readmission_entries()
    a, b, c = entries[0], entries[2], entries[4]
    twin = EntryScores("twin", "team-twin", a.scores.copy())
    board = rank_entries([c, a, twin, b], y, primary="auroc", n_resamples=20)
    assert [(e.key, e.rank) for e in board.entries] == [
        ("all-five", 1), ("twin", 1), ("inpatient-only", 3), ("labs-only", 4),
    ]  # fmt: skip


def test_secondary_metrics_break_ties_in_order() -> None:
    y, entries = readmission_entries()
    s = entries[0].scores
    # Halving the scores keeps their order exactly, so AUROC ties; calibration differs.
    sharp = EntryScores("sharp", "A", s)
    halved = EntryScores("halved", "B", s / 2)
    tied = rank_entries([halved, sharp], y, primary="auroc", n_resamples=10)
    assert [(e.key, e.rank) for e in tied.entries] == [("halved", 1), ("sharp", 1)]
    board = rank_entries([halved, sharp], y, primary="auroc", secondary=["ece"], n_resamples=10)
    assert by_key(board)["sharp"].metrics["ece"] < by_key(board)["halved"].metrics["ece"]
    assert [(e.key, e.rank) for e in board.entries] == [("sharp", 1), ("halved", 2)]
    board = rank_entries(
        [halved, sharp], y, primary="auroc", secondary=["auprc", "ece"], n_resamples=10
    )
    assert [(e.key, e.rank) for e in board.entries] == [("sharp", 1), ("halved", 2)]
    # The first secondary decides even when the next one disagrees: halving the scores
    # flags fewer cases at 0.5, so fewer false positives.
    board = rank_entries(
        [sharp, halved], y, primary="auroc", secondary=["specificity", "ece"], n_resamples=10
    )
    spec = {e.key: e.metrics["specificity"] for e in board.entries}
    assert spec["halved"] > spec["sharp"]
    assert [(e.key, e.rank) for e in board.entries] == [("halved", 1), ("sharp", 2)]


def test_baselines_are_placed_but_unranked_and_do_not_push_ranks() -> None:
    y, entries = readmission_entries()
    perfect = EntryScores("oracle", "organisers", y.astype(np.float64), is_baseline=True)
    board = rank_entries([*entries, perfect], y, primary="auroc", n_resamples=50)
    first = board.entries[0]
    assert (first.key, first.rank, first.bayes_factor, first.tied_with_leader) == (
        "oracle", None, None, False,
    )  # fmt: skip
    assert board.entries[1].rank == 1 and board.entries[1].bayes_factor is None
    ranks = [e.rank for e in board.entries if not e.is_baseline]
    assert ranks == [1, 2, 3, 4, 5]
    baseline = by_key(board)["baseline-emergency"]
    assert baseline.rank is None and baseline.bayes_factor is None
    assert not math.isnan(baseline.intervals["auroc"].low)


def test_identical_entries_have_bayes_factor_zero_and_are_tied() -> None:
    y, entries = readmission_entries()
    twin = EntryScores("twin", "T", entries[0].scores.copy(), entries[0].labels)
    board = rank_entries([entries[0], twin], y, primary="auroc", n_resamples=200)
    first, second = board.entries
    assert (first.rank, second.rank) == (1, 1)
    assert (second.bayes_factor, second.tied_with_leader) == (0.0, True)


def test_a_near_identical_entry_counts_equal_resamples_against_the_leader() -> None:
    y, entries = readmission_entries()
    scores = entries[0].scores.copy()
    scores[np.argmax(y)] += 1e-3  # one positive case scored a little higher
    nudged = EntryScores("nudged", "N", np.clip(scores, 0, 1), entries[0].labels)
    board = rank_entries([entries[0], nudged], y, primary="auroc", n_resamples=200)
    leader, other = board.entries
    assert leader.key == "nudged"
    # the leader is strictly better only on resamples that drew that case, equal on the rest
    assert 0 < other.bayes_factor < 3 and other.tied_with_leader


def test_bayes_factor_is_infinite_when_the_leader_is_never_worse() -> None:
    y, entries = readmission_entries()
    oracle = EntryScores("oracle", "O", np.where(y == 1, 0.9, 0.1))
    board = rank_entries([entries[4], oracle], y, primary="auroc", n_resamples=100)
    assert board.entries[0].key == "oracle"
    assert board.entries[1].bayes_factor == math.inf
    assert not board.entries[1].tied_with_leader


def test_the_same_seed_gives_the_same_board_and_another_seed_other_intervals() -> None:
    y, entries = readmission_entries()
    kwargs = {"primary": "auroc", "secondary": ["brier"], "n_resamples": 60}
    first = rank_entries(entries, y, seed=3, **kwargs)
    assert rank_entries(entries, y, seed=3, **kwargs) == first
    # Chunking changes only the order of floating-point sums in matrix products.
    rechunked = rank_entries(entries, y, seed=3, chunk_size=7, **kwargs)
    for a, b in zip(rechunked.entries, first.entries, strict=True):
        assert (a.key, a.rank, a.metrics) == (b.key, b.rank, b.metrics)
        assert a.bayes_factor == b.bayes_factor
        for name, interval in b.intervals.items():
            assert a.intervals[name].low == pytest.approx(interval.low, abs=1e-12)
            assert a.intervals[name].high == pytest.approx(interval.high, abs=1e-12)
    other = rank_entries(entries, y, seed=4, **kwargs)
    assert [e.metrics for e in other.entries] == [e.metrics for e in first.entries]
    assert [e.intervals for e in other.entries] != [e.intervals for e in first.entries]
    assert (first.n_cases, first.n_resamples, first.seed) == (N_CASES, 60, 3)


def test_bootstrap_indices_do_not_depend_on_chunking() -> None:
    whole = np.vstack(list(bootstrap_indices(50, 9, seed=1)))
    chunks = list(bootstrap_indices(50, 9, seed=1, chunk_size=4))
    assert [c.shape for c in chunks] == [(4, 50), (4, 50), (1, 50)]
    np.testing.assert_array_equal(np.vstack(chunks), whole)
    assert whole.min() >= 0 and whole.max() < 50
    assert not np.array_equal(whole, np.vstack(list(bootstrap_indices(50, 9, seed=2))))


def test_kept_resample_counts_equal_fresh_draws_and_repeat_values_exactly() -> None:
    n, seed = 1500, 11
    fresh = np.hstack([resample_weights(i, n) for i in bootstrap_indices(n, B, seed, 64)])
    first = np.hstack(list(resample_weight_chunks(n, B, seed, 64)))
    again = np.hstack(list(resample_weight_chunks(n, B, seed, 64)))
    assert np.array_equal(first, fresh) and np.array_equal(again, fresh)
    y, s = random_cases(n)
    one = resample_values(y, s, None, ["auroc", "brier"], n_resamples=B, seed=seed)
    two = resample_values(y, s, None, ["auroc", "brier"], n_resamples=B, seed=seed)
    explicit = metric_on_resamples("auroc", y, s, np.vstack(list(bootstrap_indices(n, B, seed))))
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert np.array_equal(one["auroc"], explicit)


def test_the_count_cache_keeps_to_its_byte_budget_dropping_the_oldest() -> None:
    cache = _CountCache(budget=250)
    cache.put((1,), [np.zeros(100, np.uint8)])
    cache.put((2,), [np.zeros(100, np.uint8)])
    cache.put((3,), [np.zeros(300, np.uint8)])  # over the budget alone: not kept
    assert cache.get((3,)) is None and cache.get((1,)) is not None
    cache.put((4,), [np.zeros(100, np.uint8)])  # (2,) is now the least recently used
    assert cache.get((2,)) is None
    assert cache.get((1,)) is not None and cache.get((4,)) is not None


def random_cases(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    y = rng.random(n) < 0.2
    return y, np.round(rng.random(n), 2)  # rounded: ties too


def test_nan_resamples_are_ignored_for_intervals_and_bayes_factors() -> None:
    # One positive in eight cases: about a third of resamples draw no positive.
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    good = EntryScores("good", "A", np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.95]))
    # "poor" ranks negatives 5 and 6 above the positive; "good" ranks negative 7 above it.
    poor = EntryScores("poor", "B", np.array([0.5, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.05]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        board = rank_entries([good, poor], y, primary="auroc", n_resamples=300, seed=9)
    indices = np.vstack(list(bootstrap_indices(8, 300, seed=9)))
    auroc = METRICS["auroc"]
    per = {e.key: np.array([auroc(y[i], e.scores[i]) for i in indices]) for e in (good, poor)}
    usable = ~np.isnan(per["good"])
    assert 50 < np.count_nonzero(~usable) < 200
    low, high = np.percentile(per["poor"][usable], [2.5, 97.5])
    assert by_key(board)["poor"].intervals["auroc"] == Interval(low, high)
    good_wins = int(np.count_nonzero(per["good"][usable] > per["poor"][usable]))
    not_good = int(np.count_nonzero(usable)) - good_wins
    assert not_good > 0
    assert by_key(board)["poor"].bayes_factor == good_wins / not_good


def test_a_metric_undefined_everywhere_gives_nan_and_no_tie() -> None:
    y = np.zeros(30, dtype=int)
    entries = [EntryScores(k, k, np.linspace(0, 1, 30) ** p) for k, p in (("a", 1), ("b", 2))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        board = rank_entries(entries, y, primary="auroc", n_resamples=20)
    assert [e.rank for e in board.entries] == [1, 1]
    second = board.entries[1]
    assert math.isnan(second.metrics["auroc"])
    assert second.bayes_factor is not None and math.isnan(second.bayes_factor)
    assert math.isnan(second.intervals["auroc"].low) and not second.tied_with_leader


def test_it_rejects_unknown_metrics_and_duplicate_keys() -> None:
    y, entries = readmission_entries()
    with pytest.raises(KeyError, match="known metrics"):
        rank_entries(entries, y, primary="auc")
    with pytest.raises(ValueError, match="unique"):
        rank_entries([entries[0], entries[0]], y, primary="auroc")
