"""Benchmark: FROC with the paired film bootstrap (heldout_kernel.stats.detection) against the
pure-Python reference on explicitly resampled films.

Run from the repository root:

    python bench/bench_froc.py           # 100 entries x 2,000 films x 1,000 resamples
    python bench/bench_froc.py --quick   # 10 entries x 500 films x 100 resamples

Measured, all in one process (wall time by `time.perf_counter`):
1. `match` of one entry's detections, `froc` on all films, `froc_resampled` for one entry
   (median of a few runs each); then all entries: `match` of each and
   `froc_resampled_entries` (resamples drawn once for all), and, for comparison, a loop of
   `froc_resampled` (resamples drawn again for each entry).
2. Peak memory of `froc_resampled_entries` for all entries: the tracemalloc peak (numpy
   reports its buffers) of a separate traced run, so that tracing does not distort timings.
3. The straightforward alternative: for a few resamples, rebuild the resampled films'
   lesion and detection lists (a film drawn k times becomes k renamed copies) and call
   `heldout_kernel.stats.metrics.froc_sensitivity`. Its time per resample is extrapolated to all
   entries and resamples and compared with ours.

Data (synthetic, labelled as such): 1024 px films, about a third with 1-2 lesions of radius
20-80 px. Each entry puts about 4 detections on each film: with its own probability it
places one near each lesion (the better the entry, the closer and the higher scored), the
rest at random positions with lower scores; scores have 3 decimals, so some tie.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from heldout_kernel.stats.detection import (  # noqa: E402
    Evidence,
    default_chunk_size,
    froc,
    froc_resampled,
    froc_resampled_entries,
    match,
)
from heldout_kernel.stats.metrics import Detection, Lesion, froc_sensitivity  # noqa: E402
from heldout_kernel.stats.ranking import bootstrap_indices  # noqa: E402

FILM_PX = 1024


@dataclass(frozen=True)
class Size:
    entries: int
    films: int
    resamples: int
    loop_resamples: int


FULL = Size(entries=100, films=2_000, resamples=1_000, loop_resamples=5)
QUICK = Size(entries=10, films=500, resamples=100, loop_resamples=5)


@dataclass(frozen=True)
class Truth:
    film: np.ndarray
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray


@dataclass(frozen=True)
class Entry:
    film: np.ndarray
    x: np.ndarray
    y: np.ndarray
    score: np.ndarray


def make_truth(n_films: int, rng: np.random.Generator) -> Truth:
    with_lesions = np.flatnonzero(rng.random(n_films) < 1 / 3)
    film = np.repeat(with_lesions, rng.integers(1, 3, with_lesions.size))
    return Truth(film=film, x=rng.uniform(100, FILM_PX - 100, film.size),
                 y=rng.uniform(100, FILM_PX - 100, film.size),
                 radius=rng.uniform(20, 80, film.size))


def make_entry(truth: Truth, n_films: int, quality: float, rng: np.random.Generator) -> Entry:
    """About 4 detections per film; `quality` in (0, 1) sets how many lesions are aimed at,
    how close and how confidently."""
    aimed = rng.random(truth.film.size) < quality
    spread = truth.radius[aimed] * (1.3 - quality)
    near_x = truth.x[aimed] + rng.normal(0, spread)
    near_y = truth.y[aimed] + rng.normal(0, spread)
    near_score = rng.normal(0.4 + 0.4 * quality, 0.15, near_x.size)
    n_random = 4 * n_films - near_x.size
    film = np.r_[truth.film[aimed], rng.integers(0, n_films, n_random)]
    x = np.r_[near_x, rng.uniform(0, FILM_PX, n_random)]
    y = np.r_[near_y, rng.uniform(0, FILM_PX, n_random)]
    score = np.r_[near_score, rng.normal(0.35, 0.15, n_random)]
    return Entry(film=film, x=x, y=y, score=np.round(np.clip(score, 0, 1), 3))


def evidence_of(truth: Truth, entry: Entry, n_films: int) -> Evidence:
    return match(n_films=n_films, lesion_film=truth.film, lesion_x=truth.x, lesion_y=truth.y,
                 lesion_radius=truth.radius, det_film=entry.film, det_x=entry.x, det_y=entry.y,
                 det_score=entry.score)


def median_time(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def reference_per_resample(truth: Truth, entry: Entry, size: Size) -> float:
    """Seconds per resample of the plain route: rebuild the resampled lists, call the
    reference. Grouping the raw data by film is done once, outside the timing."""
    lesions: dict[int, list[Lesion]] = {}
    for f, x, y, r in zip(truth.film, truth.x, truth.y, truth.radius, strict=True):
        lesions.setdefault(int(f), []).append(Lesion(str(f), float(x), float(y), float(r)))
    detections: dict[int, list[Detection]] = {}
    for f, x, y, s in zip(entry.film, entry.x, entry.y, entry.score, strict=True):
        detections.setdefault(int(f), []).append((str(f), float(x), float(y), float(s)))
    indices = next(bootstrap_indices(size.films, size.resamples, 0, size.loop_resamples))
    start = time.perf_counter()
    for idx in indices:
        res_lesions = [Lesion(str(j), les.x, les.y, les.radius)
                       for j, f in enumerate(idx) for les in lesions.get(int(f), ())]
        res_dets = [(str(j), x, y, s) for j, f in enumerate(idx)
                    for _, x, y, s in detections.get(int(f), ())]
        froc_sensitivity(res_dets, res_lesions, size.films)
    return (time.perf_counter() - start) / len(indices)


def figure(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"FIGURE\t{name}\t{value:.3f}\t{unit}\t{target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    rng = np.random.default_rng(0)
    truth = make_truth(size.films, rng)
    entries = [make_entry(truth, size.films, q, rng)
               for q in np.linspace(0.3, 0.95, size.entries)]
    mid = entries[size.entries // 2]
    evidence = evidence_of(truth, mid, size.films)
    chunk = default_chunk_size([evidence], size.resamples)
    label = f"{size.entries} x {size.films:,} films x {size.resamples:,}"
    print(f"SYNTHETIC: {size.films:,} films, {truth.film.size:,} lesions on "
          f"{np.unique(truth.film).size:,} films, {mid.film.size:,} detections per entry; "
          f"median entry: {evidence.fp_film.size:,} false positives, "
          f"{np.isfinite(evidence.lesion_best).sum():,} lesions found, FROC {froc(evidence):.3f}; "
          f"resamples in chunks of {chunk}")

    t_match = median_time(lambda: evidence_of(truth, mid, size.films))
    t_froc = median_time(lambda: froc(evidence))
    t_draws = median_time(lambda: list(bootstrap_indices(size.films, size.resamples, 0)))
    t_one = median_time(lambda: froc_resampled(evidence, n_resamples=size.resamples, seed=0))
    print(f"match, one entry          {t_match * 1e3:8.2f} ms")
    print(f"froc on all films         {t_froc * 1e3:8.2f} ms")
    print(f"froc_resampled, one entry {t_one * 1e3:8.2f} ms; drawing the resamples alone "
          f"(bootstrap_indices) {t_draws * 1e3:.1f} ms")

    def all_entries() -> object:
        evidences = [evidence_of(truth, entry, size.films) for entry in entries]
        return froc_resampled_entries(evidences, n_resamples=size.resamples, seed=0)

    start = time.perf_counter()
    all_entries()
    t_all = time.perf_counter() - start
    peak = peak_mib(all_entries)
    start = time.perf_counter()
    for entry in entries:
        froc_resampled(evidence_of(truth, entry, size.films), n_resamples=size.resamples, seed=0)
    t_loop = time.perf_counter() - start
    print(f"all {size.entries} entries, match + froc_resampled_entries: {t_all:.2f} s "
          f"(peak {peak:.1f} MiB); match + froc_resampled per entry: {t_loop:.2f} s")

    per_resample = reference_per_resample(truth, mid, size)
    t_reference = per_resample * size.resamples * size.entries
    print(f"reference on explicit resamples: {per_resample * 1e3:.1f} ms per resample, measured "
          f"on {size.loop_resamples} resamples of one entry; EXTRAPOLATED to {label}: "
          f"{t_reference:,.0f} s")
    figure("FROC match, one entry", t_match * 1e3, "ms")
    figure("FROC on all films, one entry", t_froc * 1e3, "ms")
    figure(f"FROC bootstrap, one entry x {size.resamples:,} resamples", t_one * 1e3, "ms")
    figure(f"FROC match + bootstrap {label}", t_all, "s")
    figure("  the same, one entry at a time (resamples drawn per entry)", t_loop, "s")
    figure("  peak memory, all entries", peak, "MiB")
    figure("  against the pure-Python reference on explicit resamples (extrapolated)",
           t_reference / t_all, "x faster")


if __name__ == "__main__":
    main()
