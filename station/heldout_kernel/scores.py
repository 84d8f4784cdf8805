"""Turning validated predictions into stored scores: overall, per split, per subgroup.

Classification metrics read per-film (per-case) scores; detection metrics read the entry's
`heldout_kernel.stats.detection.Evidence` (its detections matched against the true lesions). A
subset of films (a split part, a subgroup) selects both alike. Lesion subgroups (extra columns of
the lesions file) keep all films and only the lesions of one value, so their FROC counts every false
positive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from heldout_kernel.cases import LabelTable
from heldout_kernel.stats.detection import Evidence, froc
from heldout_kernel.stats.metrics import compute_metrics, is_detection_metric

EVIDENCE_METRICS: dict[str, Callable[[Evidence], float]] = {"froc": froc}
LESION_PREFIX = "lesion "  # subgroup columns of the lesions file, as boards name them


@dataclass(frozen=True)
class Scored:
    metrics: dict[str, dict[str, float | None]]
    subgroups: dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Cases:
    """One entry's predictions on some films: what every metric needs."""

    y: np.ndarray
    scores: np.ndarray
    labels: np.ndarray | None
    evidence: Evidence | None = None

    def select(self, mask: np.ndarray) -> Cases:
        return Cases(self.y[mask], self.scores[mask],
                     None if self.labels is None else self.labels[mask],
                     None if self.evidence is None else self.evidence.select_films(mask))


def metric_values(names: Sequence[str], cases: Cases) -> dict[str, float]:
    film_level = [name for name in names if not is_detection_metric(name)]
    values = compute_metrics(film_level, cases.y, cases.scores, cases.labels)
    for name in names:
        if is_detection_metric(name):
            if cases.evidence is None:
                raise ValueError(f"{name} needs detections matched against lesions")
            values[name] = EVIDENCE_METRICS[name](cases.evidence)
    return {name: values[name] for name in names}


def clean(values: dict[str, float]) -> dict[str, float | None]:
    # JSON (and PostgreSQL jsonb) has no NaN: an undefined metric is stored as null.
    return {name: None if math.isnan(v) else float(v) for name, v in values.items()}


def lesion_cells(table: LabelTable, film_mask: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(board column, value, lesion mask) of every lesion subgroup value among the lesions of
    the films in `film_mask`; the mask is over those films' lesions in order."""
    if table.lesions is None:
        return []
    inside = film_mask[table.lesions.film]
    cells = []
    for column, values in table.lesions.subgroups.items():
        part = values[inside]
        for value in sorted(set(part.tolist())):
            cells.append((f"{LESION_PREFIX}{column}", str(value), part == value))
    return cells


def subgroup_scores(table: LabelTable, cases: Cases, film_mask: np.ndarray, primary: str,
                    key: str = "score") -> dict[str, dict[str, dict[str, Any]]]:
    """The primary metric (under `key`) per subgroup value of the films in `film_mask`
    (`cases` are those films): film columns of the labels, and lesion columns for detection
    metrics."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    y = cases.y
    for column, values in table.subgroups.items():
        part = values[film_mask]
        out[column] = {}
        for value in sorted(set(part.tolist())):
            inside = part == value
            score = metric_values([primary], cases.select(inside))[primary]
            out[column][str(value)] = {"n": int(inside.sum()), "n_positive": int(y[inside].sum()),
                                       key: finite_or_none(score)}
    if is_detection_metric(primary) and cases.evidence is not None:
        for column, value, lesions in lesion_cells(table, film_mask):
            evidence = cases.evidence.select_lesions(lesions)
            score = EVIDENCE_METRICS[primary](evidence)
            n = int(lesions.sum())
            out.setdefault(column, {})[value] = {"n": n, "n_positive": n,
                                                 key: finite_or_none(score)}
    return out


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: an undefined value is stored as null."""
    return float(value) if math.isfinite(value) else None


def score_predictions(
    table: LabelTable, scores: np.ndarray, labels: np.ndarray | None, *,
    metrics: Sequence[str], primary: str, evidence: Evidence | None = None,
) -> Scored:
    cases = Cases(table.y, scores, labels, evidence)
    result = {"all": clean(metric_values(metrics, cases))}
    if table.split is not None:
        for part in ("public", "private"):
            result[part] = clean(metric_values(metrics, cases.select(table.split == part)))
    everything = np.ones(len(table.ids), dtype=bool)
    return Scored(metrics=result,
                  subgroups=subgroup_scores(table, cases, everything, primary, key=primary))
