"""What leaves the place where per-case scores live: per part, metric values, their values on
the phase's paired resamples and the primary metric per subgroup cell. Pure numpy, no Django:
the central worker (for its own boards) and data stations (for what they send back) compute
them with this one module.

Across sites (several data stations holding one phase's hidden cases), each site resamples
its own cases (a stratified bootstrap: the same indices for every entry, so K stays paired)
and a combined value is a weighted mean of the sites' values, on all cases and on each
resample. The weights make the combination exact where the metric allows it:

| metric | site weight | combined |
|---|---|---|
| accuracy, brier, log_loss | cases | exact (pooled) |
| sensitivity | positives | exact (pooled) |
| specificity | negatives | exact (pooled) |
| f1 | 2TP + FP + FN (= positives + predicted positives) | exact (pooled) |
| auroc | positives x negatives | site-stratified |
| auprc | positives | site-stratified |
| ece | cases | site-stratified |
| froc | lesions | site-stratified |

A site whose value is undefined (nan) or whose weight is 0 leaves that value out.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from heldout_kernel.cases import LabelTable, part_mask, parts
from heldout_kernel.scores import Cases, finite_or_none, metric_values, subgroup_scores
from heldout_kernel.stats.curves import coarsen_points
from heldout_kernel.stats.detection import froc_resampled
from heldout_kernel.stats.metrics import is_detection_metric, validate_labels
from heldout_kernel.stats.ranking import resample_values, resample_weight_chunks

EXACT = frozenset({"accuracy", "brier", "log_loss", "sensitivity", "specificity", "f1"})


@dataclass(frozen=True)
class PartStats:
    samples: dict[str, np.ndarray]
    subgroups: dict[str, dict[str, dict[str, Any]]]  # column -> value -> n, n_positive, score


def part_stats(table: LabelTable, cases: Cases, *, names: Sequence[str], primary: str,
               n_resamples: int, seed: int) -> dict[str, PartStats]:
    """Per part: every metric on the paired resamples of the part's films (detection metrics
    on the same film resamples: a drawn film brings its lesions and detections), and the
    primary metric per subgroup cell.

    Parts are computed side by side in threads (numpy releases the GIL in its loops; about a
    tenth faster, as both parts share the memory bandwidth), each with one BLAS thread:
    BLAS's own threads doubled the CPU time of these thin products without shortening
    them, CPU the containers next to the scorer need."""
    masks = {part: part_mask(table, part) for part in parts(table)}
    masks = {part: mask for part, mask in masks.items() if mask.any()}

    def one(part: str) -> PartStats:
        return _one_part(table, cases.select(masks[part]), masks[part], names=names,
                         primary=primary, n_resamples=n_resamples, seed=seed)

    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(
            max_workers=max(1, len(masks)), thread_name_prefix="part-stats") as pool:
        return dict(zip(masks, pool.map(one, masks), strict=True))


def _one_part(table: LabelTable, inside: Cases, mask: np.ndarray, *, names: Sequence[str],
              primary: str, n_resamples: int, seed: int) -> PartStats:
    film_level = [name for name in names if not is_detection_metric(name)]
    samples = resample_values(
        inside.y, inside.scores, inside.labels, film_level,
        n_resamples=n_resamples, seed=seed) if film_level else {}
    for name in names:
        if is_detection_metric(name):
            if inside.evidence is None:
                raise ValueError(f"{name} needs the result's matched detections")
            samples[name] = froc_resampled(inside.evidence, n_resamples=n_resamples, seed=seed)
    return PartStats(samples, subgroup_scores(table, inside, mask, primary))


@cache
def _blas() -> ThreadpoolController:
    # Made once: it inspects the loaded libraries.
    return ThreadpoolController()


# --------------------------------------------------------------------------- site weights


def _weight_columns(names: Sequence[str], cases: Cases) -> dict[str, np.ndarray]:
    """Per metric, each case's contribution to the site weight (a weight is linear in the
    cases, so on a resample it is these columns times the case multiplicities)."""
    y = cases.y.astype(np.float64)
    hard = validate_labels(cases.labels, cases.scores).astype(float)  # given, or >= 0.5
    ones = np.ones_like(y)
    lesions = (np.bincount(cases.evidence.lesion_film, minlength=y.size).astype(float)
               if cases.evidence is not None else np.zeros_like(y))
    columns = {"n": ones, "pos": y, "neg": 1 - y, "f1": y + hard, "froc": lesions}
    out = {}
    for name in names:
        if name == "auroc":  # positives x negatives: a product, summed factor by factor
            out["auroc_pos"], out["auroc_neg"] = y, 1 - y
        else:
            out[name] = columns[_WEIGHT_OF.get(name, "n")]
    return out


_WEIGHT_OF = {"sensitivity": "pos", "auprc": "pos", "specificity": "neg", "f1": "f1",
              "froc": "froc"}


def _weights(names: Sequence[str], columns: dict[str, np.ndarray],
             multiplicity: np.ndarray) -> dict[str, np.ndarray]:
    """Site weights for `multiplicity` (cases x k resamples, or cases x 1)."""
    summed = {key: column @ multiplicity for key, column in columns.items()}
    out = {name: summed[name] for name in names if name != "auroc"}
    if "auroc" in names:
        out["auroc"] = summed["auroc_pos"] * summed["auroc_neg"]
    return out


def site_weights(names: Sequence[str], cases: Cases, *, n_resamples: int,
                 seed: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(weight on all cases, weight on each paired resample) of every metric."""
    columns = _weight_columns(names, cases)
    whole = {k: float(v[0]) for k, v in _weights(names, columns,
                                                  np.ones((cases.y.size, 1))).items()}
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for weights in resample_weight_chunks(cases.y.size, n_resamples, seed):
        for name, values in _weights(names, columns, weights).items():
            chunks[name].append(values)
    return whole, {name: np.concatenate(values) for name, values in chunks.items()}


# --------------------------------------------------------------------------- one site


@dataclass(frozen=True)
class SiteAggregate:
    """One part of one site: all that a data station sends back for it."""

    n_cases: int
    n_positive: int
    metrics: dict[str, float | None]
    weights: dict[str, float]
    samples: dict[str, np.ndarray]          # metric -> (B,)
    sample_weights: dict[str, np.ndarray]   # metric -> (B,)
    subgroups: dict[str, dict[str, dict[str, Any]]]  # small cells: {"suppressed": True}
    roc: list[list[float]] | None = None    # coarsened (leaderboards.charts rule)


def _suppress(subgroups: dict[str, dict[str, dict[str, Any]]], min_cases: int,
              min_positives: int) -> dict[str, dict[str, dict[str, Any]]]:
    return {column: {value: cell if cell["n"] >= min_cases and cell["n_positive"] >= min_positives
                     else {"suppressed": True} for value, cell in cells.items()}
            for column, cells in subgroups.items()}


def _cell_weights(table: LabelTable, cases: Cases, mask: np.ndarray, primary: str,
                  cells: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each film-subgroup cell's weight for the primary metric (for combining sites)."""
    for column, values in table.subgroups.items():
        part = values[mask]
        for value, cell in cells.get(column, {}).items():
            inside = cases.select(part == value)
            columns = _weight_columns([primary], inside)
            cell["weight"] = float(_weights([primary], columns,
                                            np.ones((inside.y.size, 1)))[primary][0])
    for column, cells_of in cells.items():
        if column not in table.subgroups:  # lesion columns: weighted by their lesions
            for cell in cells_of.values():
                cell["weight"] = float(cell["n"])


def site_aggregates(
    table: LabelTable, cases: Cases, *, names: Sequence[str], primary: str, n_resamples: int,
    seed: int, min_cases: int, min_positives: int, roc: Any = None,
) -> dict[str, SiteAggregate]:
    """Everything a station sends for one result, per part; `roc(y, scores)` draws the
    coarsened ROC points (or None)."""
    stats = part_stats(table, cases, names=names, primary=primary, n_resamples=n_resamples,
                       seed=seed)
    out = {}
    for part, item in stats.items():
        mask = part_mask(table, part)
        inside = cases.select(mask)
        whole, on_resamples = site_weights(names, inside, n_resamples=n_resamples, seed=seed)
        cells = {c: {v: dict(cell) for v, cell in vs.items()}  # part_stats computed them
                 for c, vs in item.subgroups.items()}
        _cell_weights(table, inside, mask, primary, cells)
        out[part] = SiteAggregate(
            n_cases=int(mask.sum()), n_positive=int(inside.y.sum()),
            metrics={k: finite_or_none(v) for k, v in metric_values(names, inside).items()},
            weights=whole, samples=item.samples, sample_weights=on_resamples,
            subgroups=_suppress(cells, min_cases, min_positives),
            roc=roc(inside.y, inside.scores) if roc is not None else None,
        )
    return out


# --------------------------------------------------------------------------- combining


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over sites (axis 0), leaving out nan values and zero weights."""
    usable = np.isfinite(values) & (weights > 0)
    num = np.where(usable, values * weights, 0.0).sum(axis=0)
    den = np.where(usable, weights, 0.0).sum(axis=0)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def combine_metrics(sites: Sequence[SiteAggregate], names: Sequence[str]
                    ) -> dict[str, float | None]:
    out = {}
    for name in names:
        values = np.array([np.nan if s.metrics.get(name) is None else s.metrics[name]
                           for s in sites], dtype=float)
        weights = np.array([s.weights.get(name, 0.0) for s in sites], dtype=float)
        out[name] = finite_or_none(float(_weighted(values, weights)))
    return out


def combine_samples(sites: Sequence[SiteAggregate], names: Sequence[str]
                    ) -> dict[str, np.ndarray]:
    return {name: _weighted(np.vstack([s.samples[name] for s in sites]),
                            np.vstack([s.sample_weights[name] for s in sites]))
            for name in names}


def combine_subgroups(sites: Sequence[SiteAggregate]) -> dict[str, dict[str, dict[str, Any]]]:
    """Cells by (column, value) over sites; a cell any site suppressed stays suppressed (its
    score would leave that site's cases out)."""
    gathered: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for site in sites:
        for column, cells in site.subgroups.items():
            for value, cell in cells.items():
                gathered.setdefault((column, value), []).append(cell)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (column, value), cells in sorted(gathered.items()):
        if any(cell.get("suppressed") for cell in cells):
            out.setdefault(column, {})[value] = {"suppressed": True}
            continue
        scores = np.array([np.nan if c["score"] is None else c["score"] for c in cells])
        weights = np.array([c.get("weight", 0.0) for c in cells])
        out.setdefault(column, {})[value] = {
            "n": sum(c["n"] for c in cells), "n_positive": sum(c["n_positive"] for c in cells),
            "score": finite_or_none(float(_weighted(scores, weights)))}
    return out


# --------------------------------------------------------------------------- wire format


def _array(values: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float64), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _from_array(text: str) -> np.ndarray:
    try:
        values = np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)
    except (EOFError, OSError) as error:  # truncated or not .npy: the station's fault
        raise ValueError(f"a resample vector cannot be read: {error}") from None
    if values.dtype != np.float64 or values.ndim != 1:
        raise ValueError("resample vectors must be one-dimensional float64 arrays")
    return values


def to_json(aggregate: SiteAggregate) -> dict[str, Any]:
    return {"n_cases": aggregate.n_cases, "n_positive": aggregate.n_positive,
            "metrics": aggregate.metrics, "weights": aggregate.weights,
            "samples": {k: _array(v) for k, v in aggregate.samples.items()},
            "sample_weights": {k: _array(v) for k, v in aggregate.sample_weights.items()},
            "subgroups": aggregate.subgroups, "roc": aggregate.roc}


def from_json(raw: dict[str, Any], *, names: Sequence[str], n_resamples: int) -> SiteAggregate:
    """A station's part, checked: every metric present, vectors of the phase's length."""
    item = SiteAggregate(
        n_cases=int(raw["n_cases"]), n_positive=int(raw["n_positive"]),
        metrics={k: None if v is None else float(v) for k, v in raw["metrics"].items()},
        weights={k: float(v) for k, v in raw["weights"].items()},
        samples={k: _from_array(v) for k, v in raw["samples"].items()},
        sample_weights={k: _from_array(v) for k, v in raw["sample_weights"].items()},
        subgroups=dict(raw.get("subgroups") or {}), roc=raw.get("roc"),
    )
    for name in names:
        if name not in item.metrics or name not in item.weights:
            raise ValueError(f"the station sent no {name}")
        for vectors in (item.samples, item.sample_weights):
            if name not in vectors or vectors[name].shape != (n_resamples,):
                raise ValueError(f"the station's {name} vectors do not have "
                                 f"{n_resamples} resamples")
    return item


# --------------------------------------------------------------------------- a station's answer
# What the platform keeps of a station's part is rebuilt from checked values, never stored
# as sent: only these keys, the phase's metrics, vectors of its length, subgroup cells of
# counts and a score under the small-cell rule again, and the ROC coarsened again
# (heldout_kernel.stats.curves.coarsen_points). Free text has no field to travel in.

PART_KEYS = frozenset({"n_cases", "n_positive", "metrics", "weights", "samples",
                       "sample_weights", "subgroups", "roc"})
CELL_KEYS = frozenset({"n", "n_positive", "score", "weight"})
#: Subgroup column and value names: short labels ("sex", "F", "40-49", "site A").
CELL_NAME = re.compile(r"^[\w .,:+<>=/()-]{1,64}\Z")
MAX_COLUMNS, MAX_VALUES = 32, 64


def from_station(raw: Any, *, names: Sequence[str], n_resamples: int, min_cases: int,
                 min_positives: int) -> SiteAggregate:
    """A station's part, checked and rebuilt (ValueError names the first problem)."""
    if not isinstance(raw, dict) or set(raw) != PART_KEYS:
        raise ValueError(f"a part has exactly the keys {sorted(PART_KEYS)}")
    n_cases, n_positive = _count(raw["n_cases"]), _count(raw["n_positive"])
    if n_positive > n_cases:
        raise ValueError("n_positive exceeds n_cases")
    wanted = set(names)
    for key in ("metrics", "weights", "samples", "sample_weights"):
        if not isinstance(raw[key], dict) or set(raw[key]) != wanted:
            raise ValueError(f"{key} must name exactly the phase's metrics {sorted(wanted)}")
    item = from_json(raw, names=names, n_resamples=n_resamples)
    if not all(v is None or math.isfinite(v) for v in item.metrics.values()) or not all(
            math.isfinite(v) and v >= 0 for v in item.weights.values()):
        raise ValueError("metrics must be finite (or null) and weights finite and >= 0")
    return SiteAggregate(
        n_cases=n_cases, n_positive=n_positive, metrics=item.metrics, weights=item.weights,
        samples=item.samples, sample_weights=item.sample_weights,
        subgroups=_station_cells(raw["subgroups"], min_cases, min_positives),
        roc=_station_roc(raw["roc"], n_positive, n_cases - n_positive, min_cases,
                         min_positives))


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("counts must be whole numbers of at least 0")
    return value


def _number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError("a subgroup score and weight must be finite numbers")
    return float(value)


def _station_cells(raw: Any, min_cases: int, min_positives: int
                   ) -> dict[str, dict[str, dict[str, Any]]]:
    """{column: {value: cell}} rebuilt; a cell under the small-cell rule is suppressed here
    whatever the station decided."""
    if not isinstance(raw, dict) or len(raw) > MAX_COLUMNS or not all(
            isinstance(cells, dict) and len(cells) <= MAX_VALUES for cells in raw.values()):
        raise ValueError(f"subgroups map at most {MAX_COLUMNS} columns to at most "
                         f"{MAX_VALUES} cells each")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column, cells in raw.items():
        if not all(CELL_NAME.match(name) for name in (column, *cells)):
            raise ValueError("subgroup columns and values are short labels "
                             "(letters, digits, spaces and .,:+<>=/()-)")
        out[column] = {value: _station_cell(cell, min_cases, min_positives)
                       for value, cell in cells.items()}
    return out


def _station_cell(cell: Any, min_cases: int, min_positives: int) -> dict[str, Any]:
    if cell == {"suppressed": True}:
        return {"suppressed": True}
    if not isinstance(cell, dict) or set(cell) != CELL_KEYS:
        raise ValueError(f"a subgroup cell is {{suppressed: true}} or has exactly the keys "
                         f"{sorted(CELL_KEYS)}")
    n, n_positive = _count(cell["n"]), _count(cell["n_positive"])
    if n_positive > n:
        raise ValueError("a subgroup cell's n_positive exceeds its n")
    if n < min_cases or n_positive < min_positives:
        return {"suppressed": True}
    score = None if cell["score"] is None else _number(cell["score"])
    return {"n": n, "n_positive": n_positive, "score": score, "weight": _number(cell["weight"])}


def _station_roc(raw: Any, n_positive: int, n_negative: int, min_cases: int,
                 min_positives: int) -> list[list[float]] | None:
    """The station's ROC coarsened again (None stays None)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
                for v in p) for p in raw):
        raise ValueError("roc must be a list of [false positive rate, true positive rate]")
    points = coarsen_points(raw, n_positive=n_positive, n_negative=n_negative,
                            min_cases=min_cases, min_positives=min_positives)
    return None if points is None else [list(point) for point in points]
