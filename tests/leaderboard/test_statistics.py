"""The stored boards' intervals and Bayes factors equal a plain scikit-learn loop over the same
resamples, on each board's own cases (real readmission data, real logistic regressions)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot

SKLEARN = {
    "auroc": lambda y, s: skm.roc_auc_score(y, s),
    "auprc": lambda y, s: skm.average_precision_score(y, s),
    "f1": lambda y, s: skm.f1_score(y, s >= 0.5, zero_division=np.nan),
    "brier": lambda y, s: skm.brier_score_loss(y, s),
}
HIGHER_IS_BETTER = {"auroc": True, "auprc": True, "f1": True, "brier": False}


def resamples(n_cases: int, n_resamples: int, seed: int) -> list[np.ndarray]:
    """The published method, written out: resample b draws n case indices with replacement
    from its own generator, spawned from the phase's seed."""
    streams = np.random.SeedSequence(seed).spawn(n_resamples)
    return [np.random.default_rng(s).integers(0, n_cases, n_cases) for s in streams]


def reference(name: str, y: np.ndarray, s: np.ndarray) -> float:
    if y.min() == y.max() and name in ("auroc", "auprc"):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(SKLEARN[name](y, s))


def loop_board(y: np.ndarray, scores: dict[str, np.ndarray], names: list[str], seed: int,
               n_resamples: int) -> tuple[dict, dict]:
    draws = resamples(y.size, n_resamples, seed)
    values = {
        key: {n: np.array([reference(n, y[i], s[i]) for i in draws]) for n in names}
        for key, s in scores.items()
    }
    intervals = {
        key: {n: list(np.percentile(v[~np.isnan(v)], [2.5, 97.5])) for n, v in per.items()}
        for key, per in values.items()
    }
    return intervals, values


def bayes_factor(leader: np.ndarray, other: np.ndarray, higher: bool) -> float:
    """DREAM's K: the leader strictly better over not (equal resamples count against it)."""
    better = not_better = 0
    for a, b in zip(leader, other, strict=True):
        if math.isnan(a) or math.isnan(b):
            continue
        if (a > b) if higher else (a < b):
            better += 1
        else:
            not_better += 1
    return math.inf if not_better == 0 else better / not_better


@pytest.mark.parametrize("board", ["public", "private"])
def test_board_intervals_and_bayes_factors_equal_a_plain_sklearn_loop(
    board, phase, table, cast, model_scores, add_result, team_c
):
    # A third team close to the others, so that the factors are not all trivial.
    add_result(team_c, model_scores["stay"], minutes_ago=10)
    recompute(phase_pk=phase.pk)
    payload = LeaderboardSnapshot.objects.get(phase=phase, board=board).payload
    mask = table.split == board
    y = table.y[mask].astype(int)
    by_uid = {str(s.uid): model_scores[name][mask] for s, name in [
        (cast.a_best, "five"), (cast.c_best, "visits"), (cast.baseline, "diagnoses")]}
    entries = {e["key"]: e for e in payload["entries"]}
    assert set(entries) == set(by_uid)
    assert (payload["n_resamples"], payload["seed"], payload["n_cases"]) == (
        phase.bootstrap_resamples, phase.pk, int(mask.sum()))
    names = [phase.primary_metric, *phase.secondary_metrics]
    assert names == ["auroc", "auprc", "f1", "brier"]
    intervals, values = loop_board(y, by_uid, names, seed=phase.pk,
                                   n_resamples=phase.bootstrap_resamples)
    for key, expected in intervals.items():
        for name in names:
            assert entries[key]["metrics"][name] == pytest.approx(
                reference(name, y, by_uid[key]), abs=1e-12)
            assert entries[key]["intervals"][name] == pytest.approx(expected[name], abs=1e-10)
    ranked = [e for e in payload["entries"] if not e["is_baseline"]]
    leader = ranked[0]["key"]
    assert ranked[0]["rank"] == 1 and ranked[0]["bayes_factor"] is None
    assert leader == max((k for k in by_uid if not entries[k]["is_baseline"]),
                         key=lambda k: reference("auroc", y, by_uid[k]))
    for entry in ranked[1:]:
        expected_k = bayes_factor(values[leader]["auroc"], values[entry["key"]]["auroc"], True)
        got = math.inf if entry["bayes_factor"] == "inf" else entry["bayes_factor"]
        assert got == pytest.approx(expected_k, abs=1e-12)
        assert entry["tied_with_leader"] == (expected_k < 3)
    baseline = entries[str(cast.baseline.uid)]
    assert baseline["rank"] is None and baseline["bayes_factor"] is None


def test_the_bootstrap_is_fixed_per_phase(phase, cast):
    recompute(phase_pk=phase.pk)
    first = LeaderboardSnapshot.objects.get(phase=phase, board="public").payload
    recompute(phase_pk=phase.pk)
    again = LeaderboardSnapshot.objects.get(phase=phase, board="public").payload
    assert [e["intervals"] for e in first["entries"]] == [e["intervals"] for e in again["entries"]]
    assert [e["bayes_factor"] for e in first["entries"]] == [
        e["bayes_factor"] for e in again["entries"]]
