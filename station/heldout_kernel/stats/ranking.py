"""Leaderboard statistics: paired bootstrap intervals, DREAM Bayes factors, shared ranks.

Pure numpy, no ORM: selectors turn stored per-case predictions into `EntryScores` (all
aligned to the same case order as `y_true`) and call `rank_entries`.

Method:
- *Paired bootstrap.* Resample b draws `n_cases` case indices with replacement from its own
  random stream (spawned from `seed`), and every entry is scored on the same resamples. A
  resample is evaluated as multiplicity weights (how often each case was drawn), with exact
  weighted forms of every metric, so a value equals the metric on the explicitly resampled
  arrays (the tests check this against scikit-learn). Resamples are processed in chunks to
  bound memory.
- *Intervals.* 95% percentile intervals (numpy's default linear interpolation) of each
  metric over the resamples.
- *Bayes factor (DREAM).* Against the leader (the rank-1 non-baseline entry), on the primary
  metric, as challengescoring's `computeBayesFactor` computes it for an entry below the
  reference: K = #(resamples where the leader is strictly better) / #(resamples where it is
  not); resamples where the two are equal count against the leader, so identical entries
  have K = 0 and are tied. K is inf when the leader is better on every resample. K <
  `tie_threshold` (3 by default) means statistically tied with the leader.
- *NaN.* A resample on which a metric is undefined (e.g. only one class drawn) is left out
  of that metric's interval; for K, a resample is left out when either the leader's or the
  entry's value is NaN. With no usable resample the interval is (nan, nan) and K is nan
  (not tied).
- *Ranks.* Sorted by the primary metric (respecting its direction), then the secondary
  metrics in order; NaN sorts last. Entries equal on all of them share a rank (competition
  ranking 1, 1, 3). Baselines are sorted into place but take no rank, so they do not push
  the ranks of the entries below them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heldout_kernel.stats.metrics import (
    ECE_BIN_EDGES,
    ece_bins,
    get_metric,
    higher_is_better,
    log_loss_terms,
    positive_groups,
    validate_labels,
    validate_scores,
    validate_truth,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

NAN = float("nan")

#: Default chunk size keeps one (cases x resamples) float64 matrix near 16 MB.
CHUNK_ELEMENTS = 2_000_000

RANK_METRICS = frozenset({"auroc", "auprc"})


@dataclass(frozen=True)
class EntryScores:
    """One leaderboard entry's per-case predictions, aligned to the case order of `y_true`.

    `labels` are the submission's hard labels, or None for `scores >= 0.5`.
    """

    key: str
    team: str
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.bool_] | npt.NDArray[np.int_] | None = None
    is_baseline: bool = False


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class RankedEntry:
    """An entry on the board. The leader and baselines have `bayes_factor` None and
    `tied_with_leader` False."""

    key: str
    team: str
    is_baseline: bool
    rank: int | None
    metrics: dict[str, float]
    intervals: dict[str, Interval]
    bayes_factor: float | None
    tied_with_leader: bool


@dataclass(frozen=True)
class Board:
    entries: tuple[RankedEntry, ...]
    n_cases: int
    n_resamples: int
    seed: int


# --------------------------------------------------------------------------- resampling


def default_chunk_size(n_cases: int, n_resamples: int) -> int:
    """Resamples per chunk so that a (cases x chunk) matrix has about `CHUNK_ELEMENTS`."""
    return max(1, min(n_resamples, CHUNK_ELEMENTS // max(n_cases, 1)))


def bootstrap_indices(
    n_cases: int, n_resamples: int, seed: int, chunk_size: int | None = None
) -> Iterator[IntArray]:
    """Case indices of the bootstrap resamples, as (chunk, n_cases) arrays in resample order.

    Resample b uses its own stream spawned from `seed`, so it is the same whatever the chunk
    size, and every caller with the same (n_cases, n_resamples, seed) sees the same draws.
    """
    if n_cases < 1 or n_resamples < 1 or (chunk_size is not None and chunk_size < 1):
        raise ValueError("n_cases, n_resamples and chunk_size must be at least 1")
    size = chunk_size if chunk_size is not None else default_chunk_size(n_cases, n_resamples)
    streams = np.random.SeedSequence(seed).spawn(n_resamples)
    for start in range(0, n_resamples, size):
        yield np.stack(
            [
                np.random.default_rng(s).integers(0, n_cases, n_cases)
                for s in streams[start : start + size]
            ]
        )


#: Bytes of resample counts a process keeps (`resample_weight_chunks`): a phase's draws are
#: the same for every result it scores, and drawing them costs more than scoring one entry.
WEIGHT_CACHE_BYTES = 256 * 1024 * 1024


class _CountCache:
    """Least recently used (n_cases, n_resamples, seed, chunk) -> resample counts, as the
    smallest unsigned integers that hold them; bounded in bytes, shared by threads."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[int, ...], list[npt.NDArray[np.unsignedinteger]]] = (
            OrderedDict())
        self._lock = threading.Lock()

    def get(self, key: tuple[int, ...]) -> list[npt.NDArray[np.unsignedinteger]] | None:
        with self._lock:
            chunks = self._items.get(key)
            if chunks is not None:
                self._items.move_to_end(key)
            return chunks

    def put(self, key: tuple[int, ...], chunks: list[npt.NDArray[np.unsignedinteger]]) -> None:
        size = sum(c.nbytes for c in chunks)
        if size > self.budget:
            return
        with self._lock:
            self._items[key] = chunks
            while sum(c.nbytes for v in self._items.values() for c in v) > self.budget:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_COUNTS = _CountCache(WEIGHT_CACHE_BYTES)


def resample_weight_chunks(
    n_cases: int, n_resamples: int, seed: int, chunk_size: int | None = None
) -> Iterator[FloatArray]:
    """`resample_weights` of each chunk of `bootstrap_indices(n_cases, n_resamples, seed,
    chunk_size)`, in order; drawn once per process and kept as counts while they fit
    `WEIGHT_CACHE_BYTES`, so scoring one more result of a phase skips the draws."""
    for counts in resample_counts(n_cases, n_resamples, seed, chunk_size):
        yield counts.astype(np.float64)


def resample_counts(
    n_cases: int, n_resamples: int, seed: int, chunk_size: int | None = None
) -> list[npt.NDArray[np.unsignedinteger]]:
    """The counts behind `resample_weight_chunks`, from this process's cache (drawn and kept
    there first if missing); calling it once warms the cache."""
    size = chunk_size if chunk_size is not None else default_chunk_size(n_cases, n_resamples)
    key = (n_cases, n_resamples, seed, size)
    cached = _COUNTS.get(key)
    if cached is None:
        cached = [_as_counts(resample_weights(indices, n_cases))
                  for indices in bootstrap_indices(n_cases, n_resamples, seed, size)]
        _COUNTS.put(key, cached)
    return cached


def _as_counts(weights: FloatArray) -> npt.NDArray[np.unsignedinteger]:
    # A case is drawn about Poisson(1) times: uint8 in practice, wider only if ever needed.
    top = int(weights.max()) if weights.size else 0
    dtype = np.uint8 if top <= np.iinfo(np.uint8).max else np.uint32
    return weights.astype(dtype)


def resample_weights(indices: IntArray, n_cases: int) -> FloatArray:
    """Multiplicity of each case in each resample, laid out (n_cases, n_resamples).

    Cases on rows keeps the per-entry gathers below contiguous row copies.
    """
    n_res = indices.shape[0]
    flat = (indices + (np.arange(n_res) * n_cases)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_res * n_cases).reshape(n_res, n_cases)
    return np.ascontiguousarray(counts.T, dtype=np.float64)


# --------------------------------------------------------------------------- weighted metrics


def _padded_counts(weights: FloatArray) -> npt.NDArray[np.floating]:
    """Weights plus a trailing all-zero row, as float32 when that is exact.

    Bootstrap weights are counts summing to n_cases per resample, so float32 sums are exact
    up to 2**24 cases and halve the memory traffic of the per-entry gathers.
    """
    dtype = np.float32 if weights.shape[0] <= 2**24 else np.float64
    padded = np.zeros((weights.shape[0] + 1, weights.shape[1]), dtype=dtype)
    padded[:-1] = weights
    return padded


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.full(np.broadcast(num, den).shape, NAN)
    np.divide(num, den, out=out, where=den != 0)
    return out


@dataclass(frozen=True)
class _Totals:
    """Per-resample total, positive and negative weight."""

    total: FloatArray
    pos: FloatArray
    neg: FloatArray


#: Rows per block in `_prefix_sums`; numpy's cumsum along a long axis 0 is several times
#: slower than a short loop of whole-row adds plus a cumsum over the block totals.
PREFIX_BLOCK = 64


@dataclass(frozen=True)
class _PrefixPlan:
    """How to get prefix sums of weight rows, taken in a fixed order, at fixed positions.

    The order is padded with the all-zero weight row to whole blocks and laid out
    (row within block, block), so that one `take` yields the blocks side by side.
    """

    take: IntArray
    n_blocks: int
    block: IntArray
    offset: IntArray
    empty: BoolArray


def _prefix_plan(order: IntArray, positions: IntArray, zero_row: int) -> _PrefixPlan:
    n_blocks = max(1, -(-order.size // PREFIX_BLOCK))
    padded = np.full(n_blocks * PREFIX_BLOCK, zero_row, dtype=np.intp)
    padded[: order.size] = order
    last = np.maximum(positions - 1, 0)
    return _PrefixPlan(
        take=padded.reshape(n_blocks, PREFIX_BLOCK).T.ravel(),
        n_blocks=n_blocks,
        block=last // PREFIX_BLOCK,
        offset=last % PREFIX_BLOCK,
        empty=positions == 0,
    )


def _prefix_sums(weights: npt.NDArray[np.floating], plan: _PrefixPlan) -> FloatArray:
    """Sum of the first p rows of the order, for each planned p: (n_positions, chunk)."""
    chunk = weights.shape[1]
    x = np.take(weights, plan.take, axis=0).reshape(PREFIX_BLOCK, plan.n_blocks, chunk)
    for t in range(1, PREFIX_BLOCK):
        np.add(x[t], x[t - 1], out=x[t])
    before = np.zeros((plan.n_blocks, chunk), dtype=weights.dtype)
    np.cumsum(x[-1][:-1], axis=0, out=before[1:])
    out = (before[plan.block] + x[plan.offset, plan.block]).astype(np.float64)
    out[plan.empty] = 0.0
    return out


@dataclass(frozen=True)
class _RankInputs:
    """One entry's prefix plans for AUROC and AUPRC.

    Positives and negatives are each sorted by score. For each distinct score u among the
    positives, `pos` yields the positive weight with score < u then <= u, and `neg` the same
    for the negatives; so every tie group's weight comes from two lookups.
    """

    pos: _PrefixPlan
    neg: _PrefixPlan


def _rank_inputs(y: BoolArray, s: FloatArray) -> _RankInputs:
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    pos_order = pos[np.argsort(s[pos])]
    neg_order = neg[np.argsort(s[neg])]
    g = positive_groups(s[pos_order], s[neg_order])
    return _RankInputs(
        pos=_prefix_plan(pos_order, np.r_[g.pos_below, g.pos_upto], zero_row=y.size),
        neg=_prefix_plan(neg_order, np.r_[g.neg_below, g.neg_upto], zero_row=y.size),
    )


def _weighted_auroc(cp: FloatArray, cn: FloatArray, t: _Totals) -> FloatArray:
    # Weighted Mann-Whitney: each positive tie group scores the negative weight below it
    # plus half the tied negative weight.
    lo_p, hi_p = np.split(cp, 2)
    lo_n, hi_n = np.split(cn, 2)
    u = 0.5 * np.einsum("gc,gc->c", hi_p - lo_p, lo_n + hi_n)
    return _safe_div(u, t.pos * t.neg)


def _weighted_auprc(cp: FloatArray, cn: FloatArray, t: _Totals) -> FloatArray:
    # Only thresholds at a positive's score move recall; at threshold u everything with
    # score >= u is predicted positive. A group with no weight in this resample does not
    # exist in the resampled data, hence contributes 0.
    lo_p, hi_p = np.split(cp, 2)
    lo_n = np.split(cn, 2)[0]
    group_pos = hi_p - lo_p
    tp = t.pos - lo_p
    predicted = tp + (t.neg - lo_n)
    precision = np.zeros_like(tp)
    np.divide(tp, predicted, out=precision, where=group_pos > 0)
    ap = np.einsum("gc,gc->c", group_pos, precision)
    return _safe_div(ap, t.pos)


_RANK_KERNELS: dict[str, Callable[[FloatArray, FloatArray, _Totals], FloatArray]] = {
    "auroc": _weighted_auroc,
    "auprc": _weighted_auprc,
}


def _confusion_columns(y: BoolArray, s: FloatArray, lab: BoolArray) -> FloatArray:
    return np.column_stack([y & lab, ~y & lab]).astype(np.float64)


def _brier_columns(y: BoolArray, s: FloatArray, lab: BoolArray) -> FloatArray:
    return ((y - s) ** 2)[:, None]


def _log_loss_columns(y: BoolArray, s: FloatArray, lab: BoolArray) -> FloatArray:
    return log_loss_terms(y, s)[:, None]


def _ece_columns(y: BoolArray, s: FloatArray, lab: BoolArray) -> FloatArray:
    # Column b holds (y - p) for the cases in bin b, so a weighted column sum is the bin's gap.
    cols = np.zeros((y.size, ECE_BIN_EDGES.size - 1))
    cols[np.arange(y.size), ece_bins(s)] = y - s
    return cols


_LinearReduce = Callable[[FloatArray, _Totals], FloatArray]

# A "linear" metric is a function of weighted sums of per-case columns: one matrix product
# evaluates it for every entry and resample of a chunk at once. Rows of `p` are the columns'
# weighted sums; for the confusion metrics they are (TP, FP), and FN = P - TP, TN = N - FP.
_LINEAR_KERNELS: dict[
    str, tuple[Callable[[BoolArray, FloatArray, BoolArray], FloatArray], _LinearReduce]
] = {
    "f1": (_confusion_columns, lambda p, t: _safe_div(2 * p[0], p[0] + p[1] + t.pos)),
    "sensitivity": (_confusion_columns, lambda p, t: _safe_div(p[0], t.pos)),
    "specificity": (_confusion_columns, lambda p, t: _safe_div(t.neg - p[1], t.neg)),
    "accuracy": (_confusion_columns, lambda p, t: _safe_div(p[0] + t.neg - p[1], t.total)),
    "brier": (_brier_columns, lambda p, t: _safe_div(p[0], t.total)),
    "log_loss": (_log_loss_columns, lambda p, t: _safe_div(p[0], t.total)),
    "ece": (_ece_columns, lambda p, t: _safe_div(np.abs(p).sum(axis=0), t.total)),
}


@dataclass(frozen=True)
class _Plan:
    """Everything about the entries that does not depend on the resample.

    `features` stacks the linear metrics' columns of all entries; `linear` says which rows
    of the product belong to which (metric, entry).
    """

    names: tuple[str, ...]
    n_entries: int
    pos_idx: IntArray
    rank_inputs: tuple[_RankInputs, ...]
    features: FloatArray
    linear: tuple[tuple[str, int, slice], ...]


def _build_plan(
    y: BoolArray, scores: Sequence[FloatArray], labels: Sequence[BoolArray], names: Sequence[str]
) -> _Plan:
    blocks: list[FloatArray] = []
    linear: list[tuple[str, int, slice]] = []
    width = 0
    for name in (n for n in names if n in _LINEAR_KERNELS):
        columns = _LINEAR_KERNELS[name][0]
        for e, (s, lab) in enumerate(zip(scores, labels, strict=True)):
            block = columns(y, s, lab)
            linear.append((name, e, slice(width, width + block.shape[1])))
            blocks.append(block)
            width += block.shape[1]
    needs_rank = any(n in RANK_METRICS for n in names)
    return _Plan(
        names=tuple(names),
        n_entries=len(scores),
        pos_idx=np.flatnonzero(y),
        rank_inputs=tuple(_rank_inputs(y, s) for s in scores) if needs_rank else (),
        features=np.hstack(blocks) if blocks else np.zeros((y.size, 0)),
        linear=tuple(linear),
    )


def _evaluate(plan: _Plan, weights: FloatArray) -> dict[str, FloatArray]:
    """Each metric of each entry on each resample of a chunk: {name: (n_entries, chunk)}."""
    total = weights.sum(axis=0)
    pos = weights[plan.pos_idx].sum(axis=0)
    totals = _Totals(total=total, pos=pos, neg=total - pos)
    out = {name: np.empty((plan.n_entries, weights.shape[1])) for name in plan.names}
    if plan.linear:
        product = plan.features.T @ weights
        for name, e, rows in plan.linear:
            out[name][e] = _LINEAR_KERNELS[name][1](product[rows], totals)
    rank_names = [n for n in plan.names if n in RANK_METRICS]
    padded = _padded_counts(weights) if plan.rank_inputs else weights
    for e, r in enumerate(plan.rank_inputs):
        cp = _prefix_sums(padded, r.pos)
        cn = _prefix_sums(padded, r.neg)
        for name in rank_names:
            out[name][e] = _RANK_KERNELS[name](cp, cn, totals)
    return out


def metric_on_resamples(
    name: str,
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    indices: IntArray,
    y_label: npt.ArrayLike | None = None,
) -> FloatArray:
    """Metric `name` on each resample (row of case `indices`), shape (n_resamples,).

    Equals the metric on `y_true[idx]`, `y_score[idx]` for each row, computed with the same
    weighted kernels that `rank_entries` uses.
    """
    get_metric(name)
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    plan = _build_plan(y, [s], [validate_labels(y_label, s)], [name])
    weights = resample_weights(np.asarray(indices), y.size)
    values: FloatArray = _evaluate(plan, weights)[name][0]
    return values


# --------------------------------------------------------------------------- the board


def _metric_names(primary: str, secondary: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys((primary, *secondary)))
    for name in names:
        higher_is_better(name)  # KeyError for an unknown metric
    return names


def _validate_entries(
    entries: Sequence[EntryScores], n: int
) -> tuple[list[FloatArray], list[BoolArray]]:
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValueError("entry keys must be unique")
    scores = [validate_scores(e.scores, n) for e in entries]
    labels = [validate_labels(e.labels, s) for e, s in zip(entries, scores, strict=True)]
    return scores, labels


def _bootstrap(
    plan: _Plan, n_cases: int, n_resamples: int, seed: int, chunk_size: int | None
) -> dict[str, FloatArray]:
    """{name: (n_entries, n_resamples)} metric values over the paired resamples."""
    values = {name: np.empty((plan.n_entries, n_resamples)) for name in plan.names}
    done = 0
    for weights in resample_weight_chunks(n_cases, n_resamples, seed, chunk_size):
        chunk = _evaluate(plan, weights)
        for name, v in chunk.items():
            values[name][:, done : done + v.shape[1]] = v
        done += weights.shape[1]
    return values


def percentile_interval(values: FloatArray) -> Interval:
    """95% percentile interval of the non-NaN values; (nan, nan) when there are none."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return Interval(NAN, NAN)
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(float(low), float(high))


def _intervals(samples: Sequence[FloatArray]) -> list[Interval]:
    """`percentile_interval` of every entry: one percentile along the stacked vectors of the
    entries without undefined resamples (the same linear interpolation, row by row), and
    `percentile_interval` itself for the few with some."""
    if not samples:
        return []
    matrix = np.vstack(samples)
    undefined = np.isnan(matrix).any(axis=1)
    low, high = np.percentile(matrix, [2.5, 97.5], axis=1)
    # Python lists: numpy scalars cost microseconds each, thousands of them on a big board.
    return [percentile_interval(matrix[i]) if nan else Interval(a, b)
            for i, (nan, a, b) in enumerate(zip(undefined.tolist(), low.tolist(), high.tolist(),
                                                 strict=True))]


def bayes_factor(leader: FloatArray, other: FloatArray, higher_is_better: bool) -> float:
    """DREAM K: resamples where the leader is strictly better over those where it is not."""
    usable = ~(np.isnan(leader) | np.isnan(other))
    better = leader > other if higher_is_better else leader < other
    n_better = int(np.count_nonzero(better & usable))
    n_not = int(np.count_nonzero(usable)) - n_better
    if n_not == 0:
        return float("inf") if n_better else NAN
    return n_better / n_not


def _sort_key(metrics: dict[str, float], names: Sequence[str]) -> tuple[tuple[bool, float], ...]:
    # Smaller is better after orienting each metric; NaN last and equal to other NaNs.
    key = []
    for name in names:
        v = metrics[name]
        oriented = -v if higher_is_better(name) else v
        key.append((bool(np.isnan(v)), 0.0 if np.isnan(v) else oriented))
    return tuple(key)


def _ranks(
    order: Sequence[int], keys: Sequence[object], baseline: Sequence[bool]
) -> list[int | None]:
    """Competition ranks in board order; baselines get None and are skipped when counting."""
    ranks: list[int | None] = []
    ranked = 0
    previous: tuple[object, int] | None = None
    for i in order:
        if baseline[i]:
            ranks.append(None)
            continue
        ranked += 1
        rank = previous[1] if previous is not None and previous[0] == keys[i] else ranked
        previous = (keys[i], rank)
        ranks.append(rank)
    return ranks


@dataclass(frozen=True)
class EntryVectors:
    """An entry as boards store it: its metric values on all cases (`metrics`) and on each of
    the phase's paired resamples (`samples`, name -> (n_resamples,)), computed where its
    per-case scores live (see `resample_values`)."""

    key: str
    team: str
    metrics: dict[str, float]
    samples: dict[str, FloatArray]
    is_baseline: bool = False


def resample_values(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, y_label: npt.ArrayLike | None,
    names: Sequence[str], *, n_resamples: int, seed: int, chunk_size: int | None = None,
) -> dict[str, FloatArray]:
    """One entry's metric values on the paired resamples of (n_cases, n_resamples, seed):
    the same values `rank_entries` computes for it among other entries (up to the last bits
    of floating-point summation order)."""
    y = validate_truth(y_true)
    s = validate_scores(y_score, y.size)
    plan = _build_plan(y, [s], [validate_labels(y_label, s)], tuple(names))
    samples = _bootstrap(plan, y.size, n_resamples, seed, chunk_size)
    return {name: values[0] for name, values in samples.items()}


def rank_entries(
    entries: Sequence[EntryScores],
    y_true: npt.ArrayLike,
    *,
    primary: str,
    secondary: Sequence[str] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    tie_threshold: float = 3.0,
    chunk_size: int | None = None,
) -> Board:
    """Rank entries on `y_true` with bootstrap intervals and Bayes factors (see module doc).

    `chunk_size` is the number of resamples evaluated together (memory grows with
    n_cases x chunk_size); None picks `default_chunk_size`. It changes results only by
    floating-point rounding.
    """
    y = validate_truth(y_true)
    names = _metric_names(primary, secondary)
    scores, labels = _validate_entries(entries, y.size)
    plan = _build_plan(y, scores, labels, names)
    samples = _bootstrap(plan, y.size, n_resamples, seed, chunk_size)
    vectors = [
        EntryVectors(
            key=e.key, team=e.team, is_baseline=e.is_baseline,
            metrics={name: get_metric(name)(y, s, lab) for name in names},
            samples={name: samples[name][i] for name in names},
        )
        for i, (e, s, lab) in enumerate(zip(entries, scores, labels, strict=True))
    ]
    return rank_vectors(vectors, primary=primary, secondary=secondary, n_cases=y.size,
                        n_resamples=n_resamples, seed=seed, tie_threshold=tie_threshold)


def rank_vectors(
    entries: Sequence[EntryVectors], *, primary: str, secondary: Sequence[str] = (),
    n_cases: int, n_resamples: int, seed: int, tie_threshold: float = 3.0,
) -> Board:
    """Rank entries from their stored resample vectors: percentile intervals, DREAM's K
    against the leader, shared ranks. No per-case data is needed."""
    names = _metric_names(primary, secondary)
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValueError("entry keys must be unique")
    sort_keys = [_sort_key(e.metrics, names) for e in entries]
    order = sorted(range(len(entries)), key=sort_keys.__getitem__)
    ranks = _ranks(order, sort_keys, [e.is_baseline for e in entries])
    leader = next((i for i in order if not entries[i].is_baseline), None)
    higher = higher_is_better(primary)
    intervals = {n: _intervals([e.samples[n] for e in entries]) for n in names}
    board = []
    for i, rank in zip(order, ranks, strict=True):
        entry, k = entries[i], None
        if leader is not None and i != leader and not entry.is_baseline:
            k = bayes_factor(entries[leader].samples[primary], entry.samples[primary], higher)
        board.append(RankedEntry(
            key=entry.key, team=entry.team, is_baseline=entry.is_baseline, rank=rank,
            metrics=dict(entry.metrics), intervals={n: intervals[n][i] for n in names},
            bayes_factor=k, tied_with_leader=k is not None and k < tie_threshold,
        ))
    return Board(entries=tuple(board), n_cases=n_cases, n_resamples=n_resamples, seed=seed)
