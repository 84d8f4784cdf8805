"""Lesion-detection statistics: FROC on all films and on the paired bootstrap resamples.

Pure numpy, no ORM. `match` turns one entry's detections on one evaluation set into
`Evidence` (ids and coordinates gone); `froc`, `froc_resampled` (`froc_resampled_entries`
for several entries at once) and `froc_curve` read only that, so evidence can be computed
once where the detections live and stored (`to_bytes`).

Rule (the one `heldout_kernel.stats.metrics.froc_sensitivity` documents, and equal to it):
- A detection *hits* a lesion on the same film when its distance to the lesion centre is at
  most the radius. One detection may hit several overlapping lesions.
- A lesion counts once, with the score of its highest-scoring hit (-inf when never hit); a
  detection that hits no lesion is a false positive. Further hits on a lesion are neither.
- Thresholds are every detection score plus "keep nothing". At threshold t the sensitivity is
  the share of lesions whose best hit >= t, the false-positive rate the false positives with
  score >= t per film (films without lesions or detections count).
- Sensitivity at rate f is the highest over thresholds whose rate is <= f; FROC is the mean
  over `FROC_FP_RATES`. No lesions: nan.

Bootstrap: a *case* is a film. Resamples are those of
`heldout_kernel.stats.ranking.bootstrap_indices` for (n_films, n_resamples, seed), so every entry is
scored on the same draws as every other metric of the phase. A film drawn k times brings k copies of
its lesions and false positives: evaluated as integer multiplicity weights, so each value equals
`froc` of the explicitly resampled films exactly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from heldout_kernel.stats.metrics import FROC_FP_RATES
from heldout_kernel.stats.ranking import CHUNK_ELEMENTS, bootstrap_indices, resample_weights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Counts = npt.NDArray[np.signedinteger[Any]]

NAN = float("nan")

_FIELDS = ("lesion_film", "lesion_best", "fp_film", "fp_score")


@dataclass(frozen=True, eq=False)  # eq=False: `==` on arrays has no single truth value
class Evidence:
    """What FROC needs from one entry's detections on one evaluation set, with ids and
    coordinates gone."""

    n_films: int
    lesion_film: IntArray  # film index (0..n_films-1) of each true lesion
    lesion_best: FloatArray  # the lesion's best hit score; -inf when no detection hit it
    fp_film: IntArray  # film index of each false-positive detection
    fp_score: FloatArray  # its score

    def __post_init__(self) -> None:
        if self.n_films < 1:
            raise ValueError("n_films must be at least 1")
        _check_films(self.lesion_film, self.n_films, "lesion_film")
        _check_films(self.fp_film, self.n_films, "fp_film")
        if self.lesion_best.shape != self.lesion_film.shape:
            raise ValueError("lesion_best must be aligned with lesion_film")
        if self.fp_score.shape != self.fp_film.shape:
            raise ValueError("fp_score must be aligned with fp_film")

    def select_films(self, mask: BoolArray) -> Evidence:
        """Only the films where `mask` (one per film) is True, re-indexed in order, with
        their lesions and false positives."""
        keep = _mask(mask, self.n_films, "film")
        new_index = np.cumsum(keep) - 1
        on_lesion = keep[self.lesion_film]
        on_fp = keep[self.fp_film]
        return Evidence(
            n_films=int(np.count_nonzero(keep)),
            lesion_film=new_index[self.lesion_film[on_lesion]],
            lesion_best=self.lesion_best[on_lesion],
            fp_film=new_index[self.fp_film[on_fp]],
            fp_score=self.fp_score[on_fp],
        )

    def select_lesions(self, mask: BoolArray) -> Evidence:
        """The lesions where `mask` (one per lesion) is True and all false positives.

        For subgroups of lesions (size, class): a detection that hit only a left-out lesion
        found something real, so it is not a false positive of the subgroup either.
        """
        keep = _mask(mask, self.lesion_film.size, "lesion")
        return Evidence(
            n_films=self.n_films,
            lesion_film=self.lesion_film[keep],
            lesion_best=self.lesion_best[keep],
            fp_film=self.fp_film,
            fp_score=self.fp_score,
        )

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays = {name: getattr(self, name) for name in _FIELDS}
        np.savez(buffer, n_films=np.int64(self.n_films), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes | memoryview) -> Evidence:
        with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as data:
            return cls(
                n_films=int(data["n_films"]),
                lesion_film=data["lesion_film"].astype(np.intp),
                lesion_best=data["lesion_best"].astype(np.float64),
                fp_film=data["fp_film"].astype(np.intp),
                fp_score=data["fp_score"].astype(np.float64),
            )


def _check_films(films: IntArray, n_films: int, name: str) -> None:
    if films.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if films.size and (films.min() < 0 or films.max() >= n_films):
        raise ValueError(f"{name} must be film indices in 0..{n_films - 1}")


def _mask(mask: BoolArray, n: int, what: str) -> BoolArray:
    keep = np.asarray(mask, dtype=np.bool_)
    if keep.shape != (n,):
        raise ValueError(f"the mask must have one value per {what} ({n}), got {keep.shape}")
    return keep


# --------------------------------------------------------------------------- matching


def _films(values: npt.ArrayLike, n_films: int, name: str) -> IntArray:
    films = np.asarray(values, dtype=np.intp)
    _check_films(films, n_films, name)
    return films


def _column(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    column = np.asarray(values, dtype=np.float64)
    if column.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {column.shape}")
    if not np.all(np.isfinite(column)):
        raise ValueError(f"{name} must be finite")
    return column


def match(
    *,
    n_films: int,
    lesion_film: npt.ArrayLike,
    lesion_x: npt.ArrayLike,
    lesion_y: npt.ArrayLike,
    lesion_radius: npt.ArrayLike,
    det_film: npt.ArrayLike,
    det_x: npt.ArrayLike,
    det_y: npt.ArrayLike,
    det_score: npt.ArrayLike,
) -> Evidence:
    """Match detections to lesions by the module's rule; films are indices 0..n_films-1.

    Coordinates, radii and scores must be finite; ValueError otherwise.
    """
    if n_films < 1:
        raise ValueError("n_films must be at least 1")
    lf = _films(lesion_film, n_films, "lesion_film")
    df = _films(det_film, n_films, "det_film")
    lesions = np.stack([_column(lesion_x, lf.size, "lesion_x"),
                        _column(lesion_y, lf.size, "lesion_y"),
                        _column(lesion_radius, lf.size, "lesion_radius")])
    dets = np.stack([_column(det_x, df.size, "det_x"), _column(det_y, df.size, "det_y")])
    score = _column(det_score, df.size, "det_score")
    best, hit_any = _best_hits(n_films, lf, lesions, df, dets, score)
    return Evidence(n_films=n_films, lesion_film=lf, lesion_best=best,
                    fp_film=df[~hit_any], fp_score=score[~hit_any])


def _best_hits(
    n_films: int, lf: IntArray, lesions: FloatArray, df: IntArray, dets: FloatArray,
    score: FloatArray,
) -> tuple[FloatArray, BoolArray]:
    """(best hit score per lesion, whether each detection hit anything).

    Round k tests every detection against the k-th lesion of its film, so the loop runs
    over the most lesions any film has, never over detections.
    """
    (lx, ly, lr), (dx, dy) = lesions, dets
    by_film = np.argsort(lf, kind="stable")
    per_film = np.bincount(lf, minlength=n_films)
    first = np.cumsum(per_film) - per_film
    best = np.full(lf.size, -np.inf)
    hit_any = np.zeros(df.size, dtype=np.bool_)
    for k in range(int(per_film.max(initial=0))):
        det = np.flatnonzero(per_film[df] > k)
        lesion = by_film[first[df[det]] + k]
        # The reference's expression, term for term, so that points on the circle agree.
        hit = (dx[det] - lx[lesion]) ** 2 + (dy[det] - ly[lesion]) ** 2 <= lr[lesion] ** 2
        hit_any[det[hit]] = True
        np.maximum.at(best, lesion[hit], score[det[hit]])
    return best, hit_any


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class _Sweep:
    """One entry's evidence arranged for weighted threshold sweeps.

    False positives and detected lesions are each sorted by score, highest first. If only
    the first m false positives fit the budget, the lowest usable threshold lies just above
    the m-th one's score, so the lesions found are those whose best hit beats that score:
    `found_within[m]` of them in sorted order (all detected lesions when every FP fits).
    Weighted counts are integers of type `count`, so every sum is exact.
    """

    fp_film: IntArray
    found_film: IntArray
    found_within: IntArray
    lesions_per_film: IntArray
    limits: IntArray
    count: type[np.signedinteger[Any]]


def _fp_limits(fp_rates: Sequence[float], n_films: int) -> IntArray:
    """Per rate f, the most false positives c with c / n_films <= f, tested with the same
    float division as the reference so that no rounding at the boundary can differ."""
    limits = []
    for f in fp_rates:
        c = max(int(np.floor(f * n_films)), 0)
        while (c + 1) / n_films <= f:
            c += 1
        while c > 0 and c / n_films > f:
            c -= 1
        limits.append(c)
    return np.asarray(limits, dtype=np.intp)


def _sweep(evidence: Evidence, fp_rates: Sequence[float]) -> _Sweep:
    if not fp_rates or min(fp_rates) < 0:
        raise ValueError("fp_rates must be non-empty and non-negative")
    fp_order = np.argsort(-evidence.fp_score, kind="stable")
    found = np.flatnonzero(np.isfinite(evidence.lesion_best))
    found = found[np.argsort(-evidence.lesion_best[found], kind="stable")]
    # Count of found lesions with best > s, for s = each FP score: a search on negated
    # (hence ascending) scores, side "left" for the strict inequality.
    within = np.searchsorted(-evidence.lesion_best[found], -evidence.fp_score[fp_order],
                             side="left")
    per_film = np.bincount(np.r_[evidence.lesion_film, evidence.fp_film],
                           minlength=evidence.n_films)
    # A resample's sum is at most n_films times the busiest film's count.
    small = evidence.n_films * int(per_film.max(initial=0)) < 2**31
    return _Sweep(
        fp_film=evidence.fp_film[fp_order],
        found_film=evidence.lesion_film[found],
        found_within=np.append(within, found.size),
        lesions_per_film=np.bincount(evidence.lesion_film, minlength=evidence.n_films),
        limits=_fp_limits(fp_rates, evidence.n_films),
        count=np.int32 if small else np.int64,
    )


def _running(weights: Counts, films: IntArray, count: type[np.signedinteger[Any]]) -> Counts:
    """Per resample (row), the weight of the first p events for p = 0..len(films)."""
    out = np.zeros((weights.shape[0], films.size + 1), dtype=count)
    np.cumsum(np.take(weights, films, axis=1), axis=1, dtype=count, out=out[:, 1:])
    return out


def _count_at_most(running: Counts, limits: IntArray) -> IntArray:
    """For each row of `running` (non-decreasing) and each limit, how many entries are at
    most the limit: a binary search over all (row, limit) pairs at once, log2(width) small
    steps instead of comparing the whole matrix with each limit."""
    n_rows, width = running.shape
    lo = np.zeros((n_rows, limits.size), dtype=np.intp)
    hi = np.full_like(lo, width)
    rows = np.arange(n_rows)[:, None]
    for _ in range(width.bit_length()):
        mid = (lo + hi) // 2
        fits = running[rows, np.minimum(mid, width - 1)] <= limits
        searching = lo < hi
        lo = np.where(searching & fits, mid + 1, lo)
        hi = np.where(searching & ~fits, mid, hi)
    return lo


def _weighted_froc(sweep: _Sweep, weights: Counts) -> FloatArray:
    """FROC for each row of `weights` (resamples x films multiplicities), shape (chunk,)."""
    # Row p of the running sums is p events in, so the count of entries within the budget
    # is one more than the number of false positives kept.
    kept = _count_at_most(_running(weights, sweep.fp_film, sweep.count), sweep.limits) - 1
    found = _running(weights, sweep.found_film, sweep.count)
    detected = np.take_along_axis(found, sweep.found_within[kept], axis=1)
    total = weights @ sweep.lesions_per_film
    sens = np.full(detected.shape, NAN)
    np.divide(detected, total[:, None], out=sens, where=total[:, None] > 0)
    # Row-wise mean over the contiguous last axis: the same summation as np.mean on the
    # reference's list of per-rate values, so results agree to the last bit.
    values: FloatArray = np.mean(sens, axis=1)
    return values


def froc(evidence: Evidence, fp_rates: Sequence[float] = FROC_FP_RATES) -> float:
    """Mean sensitivity at `fp_rates` false positives per film; nan when there are no lesions."""
    ones = np.ones((1, evidence.n_films), dtype=np.int32)
    return float(_weighted_froc(_sweep(evidence, fp_rates), ones)[0])


def default_chunk_size(evidences: Sequence[Evidence], n_resamples: int) -> int:
    """Resamples per chunk so that the largest (chunk x events) matrix of any entry has
    about `CHUNK_ELEMENTS` elements."""
    width = max((max(e.n_films, e.fp_film.size, e.lesion_film.size) for e in evidences),
                default=1)
    return max(1, min(n_resamples, CHUNK_ELEMENTS // width))


def froc_resampled(
    evidence: Evidence,
    *,
    n_resamples: int,
    seed: int,
    chunk_size: int | None = None,
    fp_rates: Sequence[float] = FROC_FP_RATES,
) -> FloatArray:
    """FROC on each paired resample of (n_films, n_resamples, seed), shape (n_resamples,).

    Each value equals `froc` of the explicitly resampled films; nan on a resample that drew
    no lesion. `chunk_size` (resamples evaluated together) bounds memory and never changes
    a value; None picks `default_chunk_size`.
    """
    values: FloatArray = froc_resampled_entries(
        [evidence], n_resamples=n_resamples, seed=seed, chunk_size=chunk_size,
        fp_rates=fp_rates)[0]
    return values


def froc_resampled_entries(
    evidences: Sequence[Evidence],
    *,
    n_resamples: int,
    seed: int,
    chunk_size: int | None = None,
    fp_rates: Sequence[float] = FROC_FP_RATES,
) -> FloatArray:
    """`froc_resampled` of several entries on the same evaluation set, (n_entries,
    n_resamples): the same values, with the resamples drawn once for all entries (drawing
    costs more than evaluating one entry)."""
    n_films = {e.n_films for e in evidences}
    if not evidences:
        return np.empty((0, n_resamples))
    if len(n_films) != 1:
        raise ValueError("entries must be evaluated on the same films (one n_films)")
    sweeps = [_sweep(e, fp_rates) for e in evidences]
    size = chunk_size if chunk_size is not None else default_chunk_size(evidences, n_resamples)
    values = np.empty((len(evidences), n_resamples))
    done = 0
    for indices in bootstrap_indices(n_films.pop(), n_resamples, seed, size):
        # resample_weights lays out (films, resamples); resamples on rows keep the gathers
        # and the cumulative sums below along contiguous rows, and integer counts make
        # them exact and several times faster than float64.
        weights = np.ascontiguousarray(resample_weights(indices, indices.shape[1]).T,
                                       dtype=np.int32)
        for row, sweep in zip(values, sweeps, strict=True):
            row[done : done + weights.shape[0]] = _weighted_froc(sweep, weights)
        done += weights.shape[0]
    return values


def froc_curve(evidence: Evidence) -> tuple[FloatArray, FloatArray]:
    """FROC operating points (false positives per film, sensitivity), one per distinct
    threshold from "keep nothing" (0, 0) to keeping every detection, false positives
    ascending. Sensitivity is nan throughout when there are no lesions."""
    found = np.sort(evidence.lesion_best[np.isfinite(evidence.lesion_best)])
    false_pos = np.sort(evidence.fp_score)
    thresholds: FloatArray = np.r_[np.inf, np.unique(np.r_[found, false_pos])[::-1]]
    n_found: IntArray = found.size - np.searchsorted(found, thresholds)
    n_fp: IntArray = false_pos.size - np.searchsorted(false_pos, thresholds)
    n_lesions = evidence.lesion_film.size
    sens = np.full(thresholds.size, NAN)
    if n_lesions:
        sens = n_found / n_lesions
    fp_rate: FloatArray = n_fp / evidence.n_films
    return fp_rate, sens
