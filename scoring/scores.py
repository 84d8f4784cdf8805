"""Turning validated predictions into stored scores: overall, per split, per subgroup."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.labels import LabelTable
from stats.metrics import compute_metrics


@dataclass(frozen=True)
class Scored:
    metrics: dict[str, dict[str, float | None]]
    subgroups: dict[str, dict[str, dict[str, Any]]]


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    # JSON (and PostgreSQL jsonb) has no NaN: an undefined metric is stored as null.
    return {name: None if math.isnan(v) else float(v) for name, v in values.items()}


def _subset(
    metrics: Sequence[str], table: LabelTable, scores: np.ndarray,
    labels: np.ndarray | None, mask: np.ndarray,
) -> dict[str, float | None]:
    return _clean(compute_metrics(
        metrics, table.y[mask], scores[mask], None if labels is None else labels[mask]
    ))


def score_predictions(
    table: LabelTable, scores: np.ndarray, labels: np.ndarray | None, *,
    metrics: Sequence[str], primary: str,
) -> Scored:
    everything = np.ones(len(table.ids), dtype=bool)
    result = {"all": _subset(metrics, table, scores, labels, everything)}
    if table.split is not None:
        for part in ("public", "private"):
            result[part] = _subset(metrics, table, scores, labels, table.split == part)
    subgroups: dict[str, dict[str, dict[str, Any]]] = {}
    for column, values in table.subgroups.items():
        subgroups[column] = {}
        for value in sorted(set(values.tolist())):
            mask = values == value
            score = _subset([primary], table, scores, labels, mask)[primary]
            subgroups[column][value] = {
                "n": int(mask.sum()), "n_positive": int(table.y[mask].sum()), primary: score,
            }
    return Scored(metrics=result, subgroups=subgroups)
