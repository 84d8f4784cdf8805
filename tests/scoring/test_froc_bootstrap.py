"""heldout_kernel.stats.detection: FROC from matched evidence equals the documented reference
(`heldout_kernel.stats.metrics.froc_sensitivity`) on all films and, exactly, on every paired
bootstrap resample of films."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from heldout_kernel.stats.detection import (
    Evidence,
    froc,
    froc_curve,
    froc_resampled,
    froc_resampled_entries,
    match,
)
from heldout_kernel.stats.metrics import FROC_FP_RATES, Detection, Lesion, froc_sensitivity
from heldout_kernel.stats.ranking import bootstrap_indices, resample_values


@dataclass(frozen=True)
class Films:
    """Raw detection data on films named "0", "1", ... "n_films - 1"."""

    n_films: int
    lesions: list[Lesion]
    detections: list[Detection]

    def evidence(self) -> Evidence:
        return match(
            n_films=self.n_films,
            lesion_film=[int(les.image_id) for les in self.lesions],
            lesion_x=[les.x for les in self.lesions],
            lesion_y=[les.y for les in self.lesions],
            lesion_radius=[les.radius for les in self.lesions],
            det_film=[int(d[0]) for d in self.detections],
            det_x=[d[1] for d in self.detections],
            det_y=[d[2] for d in self.detections],
            det_score=[d[3] for d in self.detections],
        )

    def reference(self, fp_rates: Sequence[float] = FROC_FP_RATES) -> float:
        return froc_sensitivity(self.detections, self.lesions, self.n_films, fp_rates)

    def resampled(self, films: np.ndarray) -> Films:
        """Copy j of the new set is film films[j], with its lesions and detections."""
        lesions = [Lesion(str(j), les.x, les.y, les.radius)
                   for j, f in enumerate(films) for les in self.lesions if les.image_id == str(f)]
        detections = [(str(j), x, y, s)
                      for j, f in enumerate(films) for i, x, y, s in self.detections
                      if i == str(f)]
        return Films(len(films), lesions, detections)


def same(a: float, b: float) -> bool:
    """Equal to the last bit, or both nan."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def random_films(rng: np.random.Generator, max_films: int = 25) -> Films:
    """Integer coordinates put detections exactly on circles; scores from a few values tie.

    Films get 0-3 lesions that often overlap, and 0-6 detections of which about half land
    near one of the film's lesions (sometimes just outside it)."""
    n_films = int(rng.integers(1, max_films + 1))
    lesion_odds = rng.uniform(0.0, 1.0)
    lesions: list[Lesion] = []
    detections: list[Detection] = []
    for f in range(n_films):
        film = [Lesion(str(f), float(rng.integers(0, 40)), float(rng.integers(0, 40)),
                       float(rng.integers(1, 13)))
                for _ in range(int(rng.integers(0, 4)) if rng.random() < lesion_odds else 0)]
        lesions += film
        for _ in range(int(rng.integers(0, 7))):
            if film and rng.random() < 0.5:
                target = film[int(rng.integers(len(film)))]
                reach = int(target.radius) + 1
                x = target.x + float(rng.integers(-reach, reach + 1))
                y = target.y + float(rng.integers(-reach, reach + 1))
            else:
                x, y = float(rng.integers(0, 40)), float(rng.integers(0, 40))
            score = float(rng.integers(0, 6)) / 5 if rng.random() < 0.7 else float(rng.random())
            detections.append((str(f), x, y, score))
    return Films(n_films, lesions, detections)


# --------------------------------------------------------------------------- all films


def test_match_and_froc_equal_the_reference_on_random_sets() -> None:
    for seed in range(400):
        films = random_films(np.random.default_rng(seed))
        assert same(froc(films.evidence()), films.reference()), seed


def test_froc_passes_custom_rates_through() -> None:
    rates = (0.1, 0.3, 1.5)
    for seed in range(50):
        films = random_films(np.random.default_rng(seed))
        assert same(froc(films.evidence(), rates), films.reference(rates)), seed


def test_the_budget_boundary_is_the_reference_division() -> None:
    # 0.29 * 100 rounds to 28.999..., yet 29 / 100 <= 0.29: the 29 false positives before
    # the hit fit the budget, for us as for the reference.
    films = Films(100, [Lesion("0", 0, 0, 5)],
                  [(str(f), 50, 50, 0.9) for f in range(29)] + [("0", 0, 0, 0.5)])
    assert films.reference((0.29,)) == 1.0
    assert froc(films.evidence(), (0.29,)) == 1.0
    resampled = froc_resampled(films.evidence(), n_resamples=30, seed=0, fp_rates=(0.29,))
    expected = [films.resampled(idx).reference((0.29,))
                for idx in next(bootstrap_indices(100, 30, 0))]
    np.testing.assert_array_equal(resampled, expected)


EDGE_CASES = {
    "on the circle": Films(1, [Lesion("0", 10, 10, 5)], [("0", 13, 14, 0.4), ("0", 10, 16, 0.1)]),
    "ties between a hit and false positives": Films(
        2, [Lesion("0", 0, 0, 5), Lesion("1", 0, 0, 5)],
        [("0", 1, 1, 0.5), ("0", 20, 20, 0.5), ("1", 20, 20, 0.5), ("1", 0, 0, 0.2)]),
    "one detection, two overlapping lesions": Films(
        1, [Lesion("0", 0, 0, 5), Lesion("0", 3, 0, 5), Lesion("0", 30, 0, 5)],
        [("0", 1.5, 0, 0.3), ("0", 7, 0, 0.8), ("0", 50, 50, 0.1)]),
    "repeated hits are neither true nor false": Films(
        1, [Lesion("0", 0, 0, 5), Lesion("0", 100, 100, 5)],
        [("0", 0, 0, 0.9), ("0", 1, 1, 0.8), ("0", 100, 101, 0.7)]),
    "films without lesions or detections": Films(
        8, [Lesion("3", 0, 0, 1)], [("1", 9, 9, 0.9), ("2", 9, 9, 0.8), ("3", 0, 0, 0.1)]),
    "a detection on another film": Films(2, [Lesion("0", 0, 0, 5)], [("1", 0, 0, 0.9)]),
    "no detections": Films(3, [Lesion("0", 0, 0, 5), Lesion("2", 1, 1, 1)], []),
    "no lesions": Films(2, [], [("0", 0, 0, 0.9)]),
    "nothing at all": Films(1, [], []),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_froc_equals_the_reference_on_edge_cases(name: str) -> None:
    films = EDGE_CASES[name]
    assert same(froc(films.evidence()), films.reference())


def test_the_edge_cases_are_not_trivial() -> None:
    # Guards the table above: these cases would pass with a wrong rule if their values were
    # all 0, 1 or nan.
    values = {name: EDGE_CASES[name].reference() for name in EDGE_CASES}
    assert values["on the circle"] == 1.0
    assert values["one detection, two overlapping lesions"] == pytest.approx(2 / 3)
    assert values["repeated hits are neither true nor false"] == 1.0
    assert 0 < values["ties between a hit and false positives"] < 1
    assert math.isnan(values["no lesions"])


def test_evidence_holds_best_hits_and_false_positives() -> None:
    evidence = EDGE_CASES["one detection, two overlapping lesions"].evidence()
    assert evidence.lesion_best.tolist() == [0.3, 0.8, -np.inf]
    assert evidence.fp_score.tolist() == [0.1]
    assert evidence.fp_film.tolist() == [0]
    assert evidence.lesion_film.tolist() == [0, 0, 0]


def test_match_rejects_malformed_input() -> None:
    good = {"n_films": 2, "lesion_film": [0], "lesion_x": [0.0], "lesion_y": [0.0],
            "lesion_radius": [1.0], "det_film": [1], "det_x": [0.0], "det_y": [0.0],
            "det_score": [0.5]}
    assert match(**good).fp_film.tolist() == [1]  # type: ignore[arg-type]
    for change, message in [({"n_films": 0}, "n_films"), ({"det_film": [2]}, "det_film"),
                            ({"lesion_film": [-1]}, "lesion_film"),
                            ({"det_score": [math.inf]}, "det_score"),
                            ({"lesion_x": [0.0, 1.0]}, "lesion_x")]:
        with pytest.raises(ValueError, match=message):
            match(**{**good, **change})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- resamples


def reference_on_resamples(films: Films, n_resamples: int, seed: int) -> list[float]:
    indices = np.vstack(list(bootstrap_indices(films.n_films, n_resamples, seed)))
    return [films.resampled(idx).reference() for idx in indices]


@pytest.mark.parametrize("seed", range(8))
def test_each_resample_equals_the_reference_on_explicitly_resampled_films(seed: int) -> None:
    films = random_films(np.random.default_rng(100 + seed))
    values = froc_resampled(films.evidence(), n_resamples=50, seed=seed)
    expected = reference_on_resamples(films, 50, seed)
    assert values.shape == (50,)
    mismatches = [b for b in range(50) if not same(values[b], expected[b])]
    assert mismatches == []


def test_a_resample_without_lesions_is_nan() -> None:
    films = Films(6, [Lesion("0", 0, 0, 5)], [("0", 0, 0, 0.9), ("4", 0, 0, 0.7)])
    values = froc_resampled(films.evidence(), n_resamples=40, seed=3)
    expected = reference_on_resamples(films, 40, 3)
    assert np.isnan(values).any() and not np.isnan(values).all()
    assert all(same(v, e) for v, e in zip(values, expected, strict=True))


def test_resamples_do_not_depend_on_the_chunk_size() -> None:
    evidence = random_films(np.random.default_rng(7), max_films=60).evidence()
    whole = froc_resampled(evidence, n_resamples=37, seed=11)
    for chunk in (1, 5, 36, 37, 100):
        chunked = froc_resampled(evidence, n_resamples=37, seed=11, chunk_size=chunk)
        np.testing.assert_array_equal(chunked, whole)
    assert np.unique(whole).size > 5


def test_entries_together_get_the_values_they_get_alone() -> None:
    rng = np.random.default_rng(9)
    evidences = []
    for _ in range(4):
        films = random_films(rng, max_films=30)
        evidences.append(Films(30, films.lesions, films.detections).evidence())
    together = froc_resampled_entries(evidences, n_resamples=25, seed=2, chunk_size=10)
    alone = [froc_resampled(e, n_resamples=25, seed=2) for e in evidences]
    np.testing.assert_array_equal(together, np.vstack(alone))
    assert froc_resampled_entries([], n_resamples=25, seed=2).shape == (0, 25)
    with pytest.raises(ValueError, match="same films"):
        froc_resampled_entries([evidences[0], Films(31, [], []).evidence()],
                               n_resamples=5, seed=0)


def test_resamples_are_paired_with_the_other_metrics_of_the_phase() -> None:
    # One lesion per film, found exactly on the "positive" films, no false positives: on a
    # resample FROC is the share of drawn films that are positive, which is the accuracy of
    # predicting "positive" everywhere on the same draws of films.
    positive = np.random.default_rng(0).random(40) < 0.4
    films = Films(40, [Lesion(str(f), 0, 0, 1) for f in range(40)],
                  [(str(f), 0, 0, 0.5) for f in range(40) if positive[f]])
    ours = froc_resampled(films.evidence(), n_resamples=200, seed=5, fp_rates=(1.0,))
    accuracy = resample_values(positive.astype(int), np.ones(40), None, ["accuracy"],
                               n_resamples=200, seed=5)["accuracy"]
    np.testing.assert_allclose(ours, accuracy, rtol=0, atol=1e-15)
    other_seed = froc_resampled(films.evidence(), n_resamples=200, seed=6, fp_rates=(1.0,))
    assert not np.allclose(other_seed, accuracy)


# --------------------------------------------------------------------------- subsets, storage


def test_selecting_films_equals_computing_on_those_films_alone() -> None:
    for seed in range(60):
        rng = np.random.default_rng(seed)
        films = random_films(rng)
        keep = rng.random(films.n_films) < 0.6
        keep[int(rng.integers(films.n_films))] = True
        kept = np.flatnonzero(keep)
        alone = films.resampled(kept)  # each kept film once, renamed 0.. in order
        selected = films.evidence().select_films(keep)
        assert selected.n_films == kept.size
        assert same(froc(selected), alone.reference()), seed
        expected = alone.evidence()
        np.testing.assert_array_equal(selected.lesion_film, expected.lesion_film)
        np.testing.assert_array_equal(selected.fp_film, expected.fp_film)


def hits_only_dropped(films: Films, keep: np.ndarray) -> Films:
    """The raw data of a lesion subgroup: the kept lesions, and the detections except those
    that hit a left-out lesion and no kept one (they found something real)."""

    def hits(d: Detection, les: Lesion) -> bool:
        return d[0] == les.image_id and (
            (d[1] - les.x) ** 2 + (d[2] - les.y) ** 2 <= les.radius ** 2)

    kept = [les for les, k in zip(films.lesions, keep, strict=True) if k]
    dropped = [les for les, k in zip(films.lesions, keep, strict=True) if not k]
    detections = [d for d in films.detections
                  if any(hits(d, les) for les in kept) or not any(hits(d, les) for les in dropped)]
    return Films(films.n_films, kept, detections)


def test_selecting_lesions_keeps_every_false_positive() -> None:
    checked = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        films = random_films(rng)
        keep = rng.random(len(films.lesions)) < 0.5
        selected = films.evidence().select_lesions(keep)
        subgroup = hits_only_dropped(films, keep)
        assert same(froc(selected), subgroup.reference()), seed
        checked += len(subgroup.detections) < len(films.detections)
    assert checked > 10  # the rule for hits on left-out lesions was exercised


def test_selections_check_the_mask_length() -> None:
    evidence = EDGE_CASES["on the circle"].evidence()
    with pytest.raises(ValueError, match="film"):
        evidence.select_films(np.array([True, False]))
    with pytest.raises(ValueError, match="lesion"):
        evidence.select_lesions(np.array([], dtype=bool))


@pytest.mark.parametrize("name", ["one detection, two overlapping lesions", "nothing at all",
                                  "no detections"])
def test_evidence_round_trips_through_bytes(name: str) -> None:
    evidence = EDGE_CASES[name].evidence()
    for blob in (evidence.to_bytes(), memoryview(evidence.to_bytes())):
        back = Evidence.from_bytes(blob)
        assert back.n_films == evidence.n_films
        for field in ("lesion_film", "lesion_best", "fp_film", "fp_score"):
            original, restored = getattr(evidence, field), getattr(back, field)
            assert restored.dtype == original.dtype
            np.testing.assert_array_equal(restored, original)


def test_random_evidence_round_trips_to_the_same_froc_and_resamples() -> None:
    evidence = random_films(np.random.default_rng(1), max_films=40).evidence()
    back = Evidence.from_bytes(evidence.to_bytes())
    assert froc(back) == froc(evidence)
    np.testing.assert_array_equal(froc_resampled(back, n_resamples=20, seed=0),
                                  froc_resampled(evidence, n_resamples=20, seed=0))


# --------------------------------------------------------------------------- the curve


def brute_force_curve(films: Films) -> list[tuple[float, float]]:
    evidence = films.evidence()
    scores = sorted({*evidence.fp_score, *evidence.lesion_best[np.isfinite(evidence.lesion_best)]},
                    reverse=True)
    points = [(0.0, 0.0)]
    for t in scores:
        n_fp = sum(s >= t for s in evidence.fp_score)
        n_found = sum(b >= t for b in evidence.lesion_best)
        points.append((n_fp / films.n_films, n_found / len(films.lesions)))
    return points


def test_the_curve_has_one_point_per_threshold_and_gives_froc() -> None:
    for seed in range(60):
        films = random_films(np.random.default_rng(seed))
        if not films.lesions:
            continue
        fp, sens = froc_curve(films.evidence())
        assert list(zip(fp.tolist(), sens.tolist(), strict=True)) == brute_force_curve(films)
        assert np.all(np.diff(fp) >= 0) and np.all(np.diff(sens) >= 0)
        from_curve = np.mean([sens[fp <= f].max() for f in FROC_FP_RATES])
        assert from_curve == pytest.approx(films.reference(), abs=1e-12)


def test_the_curve_without_lesions_has_nan_sensitivity() -> None:
    fp, sens = froc_curve(EDGE_CASES["no lesions"].evidence())
    assert fp.tolist() == [0.0, 0.5]
    assert np.isnan(sens).all()
