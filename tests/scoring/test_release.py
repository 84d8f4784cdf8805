"""Score release policies against the probing attack of Whitehill (2016): a team that sees
its AUROC on the hidden set submits one case at 0.9 and every other at 0.5, and reads that
case's label from whether the shown score went up or down. Each policy is run through the
attack on 100 real hidden cases (30-day readmission labels from the Diabetes 130-US data);
the counts are the table on docs/data-protection.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heldout_kernel.stats.metrics import auroc
from heldout_kernel.stats.ranking import bootstrap_indices, metric_on_resamples
from heldout_kernel.stats.release import (
    Policy,
    Shown,
    release_boot_ladder_boot,
    release_ladder,
    release_rounded,
)
from tests.scoring.test_metrics import diabetes

N_CASES, PROBES, RESAMPLES = 1000, 100, 200


@pytest.fixture(scope="module")
def hidden_labels() -> np.ndarray:
    y = (diabetes()["readmitted"] == "<30").to_numpy().astype(np.int64)[:N_CASES]
    assert 50 < y.sum() < 200  # realistic prevalence
    return y


def shown_after(policy: Policy, y: np.ndarray, scores: np.ndarray, previous: Shown | None,
                previous_scores: np.ndarray | None, source: str) -> Shown:
    """What the platform shows for one submission of `scores`, as scoring.release does."""
    exact = {"auroc": auroc(y, scores)}
    if policy.name == "exact":
        return Shown(exact, source)
    if policy.name == "rounded":
        return release_rounded(exact, policy, source)
    if policy.name == "ladder":
        return release_ladder(exact, previous, policy, "auroc", True, source)
    indices = np.vstack(list(bootstrap_indices(y.size, RESAMPLES, seed=1)))
    mine = {"auroc": metric_on_resamples("auroc", y, scores, indices)}
    theirs = None if previous_scores is None else metric_on_resamples(
        "auroc", y, previous_scores, indices)
    return release_boot_ladder_boot(mine, previous, theirs, policy, "auroc", True, source)


def shown_for_probe(policy: Policy, y: np.ndarray, case: int) -> tuple[object, object]:
    """(shown flat baseline, shown probe) in a world with labels `y`. Between probes the
    attacker resubmits the flat baseline, so every probe is compared with the same shown
    score (the strongest form of the attack)."""
    flat = np.full(y.size, 0.5)
    baseline = shown_after(policy, y, flat, None, None, "flat")
    probe = flat.copy()
    probe[case] = 0.9
    return baseline.scores, shown_after(policy, y, probe, baseline, flat, "probe").scores


def labels_recovered(policy: Policy, y: np.ndarray) -> int:
    """How many of the probed labels the shown scores reveal: a label is revealed when what
    the team is shown differs between the world where it is 1 and the world where it is 0
    (all else equal), so an attacker who knows the policy reads it off exactly."""
    recovered = 0
    for case in range(PROBES):
        flipped = y.copy()
        flipped[case] = 1 - flipped[case]
        if shown_for_probe(policy, y, case) != shown_for_probe(policy, flipped, case):
            recovered += 1
    return recovered


@pytest.mark.parametrize(("policy", "at_most", "at_least"), [
    (Policy("exact"), 100, 100),
    (Policy("rounded", decimals=3), 100, 90),
    (Policy("rounded", decimals=2), 100, 90),
    (Policy("ladder", eta=0.01), 0, 0),
    (Policy("boot-ladder-boot"), 0, 0),
], ids=["exact", "rounded-3", "rounded-2", "ladder-0.01", "boot-ladder-boot"])
def test_the_probing_attack_recovers_what_the_readme_says(
    hidden_labels, policy, at_most, at_least
) -> None:
    recovered = labels_recovered(policy, hidden_labels)
    print(f"{policy.name} (decimals={policy.decimals}, eta={policy.eta}): "
          f"{recovered} of {PROBES} labels recovered")
    assert at_least <= recovered <= at_most


def board_view(policy: Policy, y: np.ndarray, case: int) -> tuple[object, ...]:
    """Everything the team's board row says after the probe, as leaderboards.release shows
    it: the entry's released score, which submission is the entry (chosen from released
    scores: the source of the shown score under the ladders; the best rounded score, the
    earlier of equals, under rounded; the best exact score under exact) and its 95% interval
    (rounded to the policy's decimals; withheld under the ladders)."""
    flat = np.full(y.size, 0.5)
    probe = flat.copy()
    probe[case] = 0.9
    baseline = shown_after(policy, y, flat, None, None, "flat")
    latest = shown_after(policy, y, probe, baseline, flat, "probe")
    if policy.name in ("ladder", "boot-ladder-boot"):
        return latest.source, latest.scores["auroc"]
    places = 12 if policy.name == "exact" else policy.decimals
    scores = {"flat": flat, "probe": probe}
    shown = {"flat": baseline.scores["auroc"],
             "probe": release_rounded({"auroc": auroc(y, probe)}, Policy(
                 "rounded", decimals=places), "probe").scores["auroc"]}
    entry = "probe" if shown["probe"] > shown["flat"] else "flat"  # equals: the earlier
    indices = np.vstack(list(bootstrap_indices(y.size, RESAMPLES, seed=1)))
    values = metric_on_resamples("auroc", y, scores[entry], indices)
    low, high = (round(float(v), places) for v in np.percentile(values, [2.5, 97.5]))
    return entry, shown[entry], low, high


def labels_recovered_on_the_board(policy: Policy, y: np.ndarray) -> int:
    recovered = 0
    for case in range(PROBES):
        flipped = y.copy()
        flipped[case] = 1 - flipped[case]
        recovered += board_view(policy, y, case) != board_view(policy, flipped, case)
    return recovered


@pytest.mark.parametrize(("policy", "at_most", "at_least"), [
    (Policy("exact"), 100, 100),
    (Policy("rounded", decimals=3), 100, 90),
    (Policy("rounded", decimals=2), 100, 90),
    (Policy("ladder", eta=0.01), 0, 0),
    (Policy("boot-ladder-boot"), 0, 0),
], ids=["exact", "rounded-3", "rounded-2", "ladder-0.01", "boot-ladder-boot"])
def test_the_board_entry_and_its_interval_reveal_no_more_under_the_ladders(
    hidden_labels, policy, at_most, at_least
) -> None:
    """The data-protection page's table, second column: the probe read off the whole board row (entry
    choice and interval counted), not only the shown score."""
    recovered = labels_recovered_on_the_board(policy, hidden_labels)
    print(f"board: {policy.name} (decimals={policy.decimals}, eta={policy.eta}): "
          f"{recovered} of {PROBES} labels recovered")
    assert at_least <= recovered <= at_most


def test_rounding_rounds_every_metric() -> None:
    shown = release_rounded({"auroc": 0.81234, "brier": 0.1987, "f1": None}, Policy("rounded"),
                            "a")
    assert shown.scores == {"auroc": 0.812, "brier": 0.199, "f1": None}


def test_the_ladder_moves_only_past_eta_and_shows_multiples_of_eta() -> None:
    policy = Policy("ladder", eta=0.01)
    first = release_ladder({"auroc": 0.7234, "auprc": 0.3}, None, policy, "auroc", True, "a")
    assert first == Shown({"auroc": 0.72, "auprc": 0.3}, "a")
    small = release_ladder({"auroc": 0.7299, "auprc": 0.9}, first, policy, "auroc", True, "b")
    assert small is first  # +0.0099: not more than eta, nothing new is shown
    big = release_ladder({"auroc": 0.7361, "auprc": 0.35}, first, policy, "auroc", True, "c")
    assert big == Shown({"auroc": 0.74, "auprc": 0.35}, "c")
    worse = release_ladder({"auroc": 0.6, "auprc": 0.1}, big, policy, "auroc", True, "d")
    assert worse is big


def test_the_ladder_respects_metrics_where_smaller_is_better() -> None:
    policy = Policy("ladder", eta=0.01)
    first = release_ladder({"brier": 0.2}, None, policy, "brier", False, "a")
    assert release_ladder({"brier": 0.185}, first, policy, "brier", False, "b").source == "b"
    assert release_ladder({"brier": 0.195}, first, policy, "brier", False, "c") is first


def test_boot_ladder_boot_shows_a_new_score_only_with_strong_evidence(hidden_labels) -> None:
    y = hidden_labels
    policy = Policy("boot-ladder-boot")
    indices = np.vstack(list(bootstrap_indices(y.size, RESAMPLES, seed=3)))
    rng = np.random.default_rng(0)
    weak = np.clip(0.5 + 0.05 * y + rng.normal(0, 0.2, y.size), 0, 1)
    strong = np.clip(0.5 + 0.3 * y + rng.normal(0, 0.2, y.size), 0, 1)
    on = {name: metric_on_resamples("auroc", y, s, indices) for name, s in
          (("weak", weak), ("strong", strong))}
    first = release_boot_ladder_boot({"auroc": on["weak"]}, None, None, policy, "auroc", True,
                                     "weak")
    assert first.scores["auroc"] == round(float(on["weak"][:10].mean()), 3)
    again = release_boot_ladder_boot({"auroc": on["weak"]}, first, on["weak"], policy, "auroc",
                                     True, "same")
    assert again is first  # identical: K = 0
    better = release_boot_ladder_boot({"auroc": on["strong"]}, first, on["weak"], policy,
                                      "auroc", True, "strong")
    assert better.source == "strong" and better.scores["auroc"] > first.scores["auroc"]


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Policy("secret")
    with pytest.raises(ValueError):
        Policy("ladder", eta=0)
    assert Policy("ladder", eta=0.01).precision == 3
    assert math.isclose(Policy("rounded", decimals=2).precision, 2)
