"""Per-result statistics for leaderboards, computed once, where the per-case scores live.

For each part a board is computed on ("public"/"private", or "all"), a result keeps:
- its metric values on the phase's B paired resamples (the resample indices depend only on
  the phase's seed and the part's number of cases, so every entry is resampled alike), and
- the primary metric per subgroup cell, with the cell's counts.

A board then combines stored vectors (heldout_kernel.stats.ranking.rank_vectors): a new result costs
one entry's bootstrap, a recomputation without new results costs reading vectors. This is the shape
a data station returns too: aggregates only, no per-case values.

Vectors are float64, not float32: boards then equal a full recomputation from per-case
scores to the last bits of summation order (the tests compare), at 8 KB per metric and part
for B = 1000.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import Any

import numpy as np

from challenges.models import Phase
from challenges.stations import source_datasets
from heldout_kernel.aggregates import PartStats, part_stats
from heldout_kernel.cases import part_mask, parts
from heldout_kernel.scores import Cases
from heldout_kernel.stats.detection import Evidence
from heldout_kernel.stats.ranking import resample_counts
from scoring.arrays import from_bytes
from scoring.labels import LabelTable, load_labels

VERSION = 2  # 2: one array, rows in `_rows` order


def metric_names(phase: Phase) -> list[str]:
    return list(dict.fromkeys([phase.primary_metric, *phase.secondary_metrics]))


def scored_key(phase: Phase) -> str:
    """What a result was scored against: the phase's evaluation set as it is now (the sha256
    over its files, or its stations' dataset fingerprints) and its metrics. A stored result
    with another key is stale: its labels were replaced or its metrics changed since, and
    only a re-score brings it up to date."""
    evaluation = phase.evaluation_set
    if evaluation is None:
        return ""
    if evaluation.is_remote:
        data = sorted(str((d.fingerprint or {}).get("sha256", "")) if d else ""
                      for d in source_datasets(evaluation))
    else:
        data = sorted(f"{path} {digest}" for path, digest in evaluation.checksums.items())
    body = f"{evaluation.pk}|{'|'.join(data)}|{','.join(metric_names(phase))}"
    return hashlib.sha256(body.encode()).hexdigest()


def stats_key(phase: Phase) -> str:
    """What stored vectors were computed for; another key means they must be recomputed."""
    return f"v{VERSION}:{phase.bootstrap_resamples}:{phase.pk}:{','.join(metric_names(phase))}"


def compute(phase: Phase, table: LabelTable, scores: np.ndarray,
            labels: np.ndarray | None, evidence: Evidence | None = None) -> dict[str, PartStats]:
    """The result's statistics for the phase's boards (heldout_kernel.aggregates.part_stats)."""
    return part_stats(table, Cases(table.y, scores, labels, evidence),
                      names=metric_names(phase), primary=phase.primary_metric,
                      n_resamples=phase.bootstrap_resamples, seed=phase.pk)


def _rows(phase: Phase, stats_parts: list[str]) -> list[tuple[str, str]]:
    """The (part, metric) order of a packed array's rows: parts sorted, metrics as phased."""
    return [(part, name) for part in sorted(stats_parts) for name in metric_names(phase)]


def pack(phase: Phase, stats: dict[str, PartStats]) -> tuple[bytes, dict[str, Any]]:
    """(one .npy array of every part's vectors, one row per (part, metric) in `_rows`
    order, and the JSON of every part's subgroup cells). One array reads back in
    microseconds, which a board of a thousand entries needs."""
    rows = _rows(phase, list(stats))
    matrix = np.vstack([stats[part].samples[name] for part, name in rows]) if rows else (
        np.empty((0, 0)))
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    return buffer.getvalue(), {part: item.subgroups for part, item in stats.items()}


def unpack(phase: Phase, blob: bytes | memoryview,
           subgroups: dict[str, Any]) -> dict[str, PartStats]:
    matrix = np.load(io.BytesIO(bytes(blob)), allow_pickle=False)
    samples: dict[str, dict[str, np.ndarray]] = {}
    for (part, name), values in zip(_rows(phase, list(subgroups)), matrix, strict=True):
        samples.setdefault(part, {})[name] = values
    return {part: PartStats(values, subgroups.get(part, {})) for part, values in samples.items()}


class NoCases(Exception):
    """The result's statistics are stale and its per-case scores are not here (they were
    combined at data stations): only a re-score can renew them."""


def of_result(result: Any, phase: Phase, table: LabelTable | None) -> dict[str, PartStats]:
    """A result's stored statistics, computed (and stored) first when missing or stale: a
    result scored before vectors existed, or after the phase changed B or its metrics."""
    if result.resample_key == stats_key(phase) and result.resamples is not None:
        return unpack(phase, result.resamples, result.part_subgroups)
    if table is None or not result.case_scores:
        raise NoCases(f"result {result.pk}")
    scores = from_bytes(result.case_scores)
    labels = None if result.case_labels is None else from_bytes(result.case_labels)
    evidence = (None if result.case_detections is None
                else Evidence.from_bytes(result.case_detections))
    stats = compute(phase, table, scores, labels, evidence)
    blob, subgroups = pack(phase, stats)
    type(result).objects.filter(pk=result.pk).update(
        resamples=blob, part_subgroups=subgroups, resample_key=stats_key(phase))
    return stats


def warm(phases: Iterable[Phase]) -> int:
    """Draw the paired resamples of each phase's board parts into this process's cache (see
    heldout_kernel.stats.ranking.resample_counts); returns how many parts were drawn. A worker's
    parent process does this for the open phases before it forks, so its children share the counts
    instead of each drawing them for its first result (about 0.6 s per part of 12,000 cases)."""
    drawn = 0
    for phase in phases:
        if phase.evaluation_set is None or phase.evaluation_set.is_remote:
            continue  # at data stations: the stations draw their own
        table = load_labels(phase.evaluation_set)
        for part in parts(table):
            n_cases = int(part_mask(table, part).sum())
            if n_cases:
                resample_counts(n_cases, phase.bootstrap_resamples, phase.pk)
                drawn += 1
    return drawn
