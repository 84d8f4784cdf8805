"""Score release policies: what a team is shown of its scores on hidden data while a phase
runs. Each shown score is information about the hidden labels, so a phase chooses how much:

- `exact`: the score as computed (full double precision).
- `rounded`: each score rounded to `decimals` places.
- `ladder` (Blum & Hardt, "The Ladder", 2015): a team's shown score changes only when a new
  submission beats the team's shown best by more than `eta`; it is then shown rounded to a
  multiple of `eta`. Otherwise the previous shown scores are repeated.
- `boot-ladder-boot` (DREAM, challengescoring's `bootLadderBoot`): the shown score is the mean
  of the first `report_resamples` paired bootstrap values; a new submission replaces the
  team's shown score only when it beats the submission behind it with Bayes factor K >
  `bayes_threshold` (resamples where it is strictly better over those where it is not) and a
  higher bootstrap mean; otherwise the previous shown score is repeated.

Pure numpy; callers pass a team's state (its shown scores so far) and get the new state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

POLICIES = ("exact", "rounded", "ladder", "boot-ladder-boot")
Scores = Mapping[str, float | None]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Policy:
    name: str = "exact"
    decimals: int = 3            # rounded (and the display precision of boot-ladder-boot)
    eta: float = 0.01            # ladder step
    report_resamples: int = 10   # boot-ladder-boot
    bayes_threshold: float = 3.0  # boot-ladder-boot

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown score release policy {self.name!r}; known: {POLICIES}")
        if self.decimals < 0 or self.eta <= 0 or self.report_resamples < 1:
            raise ValueError("decimals >= 0, eta > 0 and report_resamples >= 1 are required")

    @property
    def precision(self) -> int:
        """Decimal places worth showing of a released value."""
        if self.name == "ladder":
            return max(0, -math.floor(math.log10(self.eta)) + 1)
        return self.decimals


@dataclass(frozen=True)
class Shown:
    """A team's shown scores: `scores` by metric, and which submission they come from."""

    scores: dict[str, float | None]
    source: str


def _round(value: float | None, decimals: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, decimals)


def _to_grid(value: float | None, eta: float) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(round(value / eta) * eta, 12)


def _improves(new: float | None, best: float | None, margin: float, higher: bool) -> bool:
    if new is None:
        return False
    if best is None:
        return True
    return new - best > margin if higher else best - new > margin


def release_rounded(exact: Scores, policy: Policy, source: str) -> Shown:
    return Shown({name: _round(v, policy.decimals) for name, v in exact.items()}, source)


def release_ladder(
    exact: Scores, previous: Shown | None, policy: Policy, primary: str, higher: bool,
    source: str,
) -> Shown:
    """Blum & Hardt's Ladder on the primary metric; the other metrics move with it."""
    best = previous.scores.get(primary) if previous else None
    if previous is not None and not _improves(exact.get(primary), best, policy.eta, higher):
        return previous
    return Shown({name: _to_grid(v, policy.eta) for name, v in exact.items()}, source)


def bootstrap_mean(values: FloatArray, report: int) -> float | None:
    """Mean of the first `report` finite resample values (None when there are none)."""
    head = values[:report]
    head = head[np.isfinite(head)]
    return float(head.mean()) if head.size else None


def strict_bayes_factor(new: FloatArray, old: FloatArray, higher: bool) -> float:
    """Resamples where `new` is strictly better than `old` over those where it is not."""
    usable = np.isfinite(new) & np.isfinite(old)
    better = (new > old) if higher else (new < old)
    n_better = int(np.count_nonzero(better & usable))
    n_not = int(np.count_nonzero(usable)) - n_better
    if n_not == 0:
        return math.inf if n_better else 0.0
    return n_better / n_not


def release_boot_ladder_boot(
    resamples: Mapping[str, FloatArray], previous: Shown | None,
    previous_resamples: FloatArray | None, policy: Policy, primary: str, higher: bool,
    source: str,
) -> Shown:
    """DREAM's boot-ladder-boot. `resamples` are this submission's metric values on the
    phase's paired resamples; `previous_resamples` the primary metric's values of the
    submission behind the team's shown score, on the same resamples."""
    report = policy.report_resamples
    means = {name: _round(bootstrap_mean(v, report), policy.decimals)
             for name, v in resamples.items()}
    if previous is None or previous_resamples is None:
        return Shown(means, source)
    new = resamples[primary]
    k = strict_bayes_factor(new, previous_resamples, higher)
    new_mean, old_mean = np.nanmean(new), np.nanmean(previous_resamples)
    better_mean = new_mean > old_mean if higher else new_mean < old_mean
    if k > policy.bayes_threshold and better_mean:
        return Shown(means, source)
    return previous


