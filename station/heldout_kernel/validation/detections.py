"""Detections CSV (lesion-detection phases): `/output/detections.csv` with header
`id,x,y,score`, any number of rows per film up to `MAX_PER_FILM`, x and y in pixels of the
film's image (origin top-left, x to the right, y down), scores in [0, 1].

Read only at scoring time, against the evaluation ids and (when known) each film's image
size. Messages name the offending rows; the scorer shows them on the public sanity lane only.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heldout_kernel.errors import InvalidPredictions
from heldout_kernel.lesions import finite_number
from heldout_kernel.validation.predictions import _open_csv
from heldout_kernel.validation.shared import DEFAULT_LIMITS, UploadLimits, _Problems, _quote

MAX_PER_FILM = 100
HEADER = ("id", "x", "y", "score")


# eq=False: dataclass equality would compare numpy arrays element-wise and raise.
@dataclass(frozen=True, eq=False)
class Detections:
    film: np.ndarray   # intp: index of the detection's film in the expected ids
    x: np.ndarray      # float64
    y: np.ndarray
    score: np.ndarray

    def best_per_film(self, n_films: int) -> np.ndarray:
        """A film's score when the model gives none: its highest detection score, 0 when
        it has none (scores are in [0, 1])."""
        best = np.zeros(n_films)
        np.maximum.at(best, self.film, self.score)
        return best


@dataclass
class _Columns:
    film: array[int] = field(default_factory=lambda: array("q"))
    x: array[float] = field(default_factory=lambda: array("d"))
    y: array[float] = field(default_factory=lambda: array("d"))
    score: array[float] = field(default_factory=lambda: array("d"))


def _row_problem(row: list[str], position: Mapping[str, int],
                 sizes: Mapping[str, tuple[int, int]]) -> str | None:
    if len(row) != len(HEADER):
        return f"expected {len(HEADER)} columns, found {len(row)}"
    ident, *values = row
    if ident not in position:
        return f"id {_quote(ident)} is not part of this evaluation set"
    x, y, score = (finite_number(v) for v in values)
    if x is None or y is None:
        return "x and y must be finite numbers"
    if score is None or not 0.0 <= score <= 1.0:
        return f"score {_quote(values[2])} must be a number in [0, 1]"
    if ident in sizes:
        width, height = sizes[ident]
        if not (0 <= x < width and 0 <= y < height):
            return f"({values[0]}, {values[1]}) is outside the {width}x{height} image"
    return None


def read_detections(
    path: Path, *, expected_ids: Sequence[str],
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    max_per_film: int = MAX_PER_FILM, limits: UploadLimits = DEFAULT_LIMITS,
) -> Detections:
    """Read a detections file; raise InvalidPredictions naming the offending rows."""
    position = {ident: index for index, ident in enumerate(expected_ids)}
    sizes = image_sizes or {}
    with _open_csv(path, limits.max_predictions_bytes, InvalidPredictions,
                   "detections file") as text:
        reader = csv.reader(text, strict=True)
        try:
            _check_header(next(reader, None))
            columns = _read_rows(reader, position, sizes, limits)
        except UnicodeDecodeError:
            raise InvalidPredictions(
                f"The detections file is not UTF-8 text (around row {reader.line_num + 1})."
            ) from None
        except csv.Error as exc:
            raise InvalidPredictions(
                f"Row {reader.line_num}: the detections file is not valid CSV ({exc}).") from None
    film = np.frombuffer(columns.film, dtype=np.int64).astype(np.intp)
    _check_per_film(film, expected_ids, max_per_film)
    return Detections(film=film, x=np.frombuffer(columns.x), y=np.frombuffer(columns.y),
                      score=np.frombuffer(columns.score))


def _check_header(header: list[str] | None) -> None:
    if header is None:
        raise InvalidPredictions("The detections file is empty (it needs the header "
                                 "id,x,y,score even when there are no detections).")
    if tuple(name.strip() for name in header) != HEADER:
        raise InvalidPredictions(
            f'The header must be "id,x,y,score", but it is {_quote(",".join(header))}.')


def _read_rows(reader: object, position: Mapping[str, int],
               sizes: Mapping[str, tuple[int, int]], limits: UploadLimits) -> _Columns:
    columns, problems, seen = _Columns(), _Problems(), 0
    for row in reader:  # type: ignore[attr-defined]
        if len(row) < 2 and not "".join(row).strip():
            continue
        seen += 1
        if seen > limits.max_rows:
            raise InvalidPredictions(
                f"The detections file has more than the limit of {limits.max_rows:,} rows.")
        problem = _row_problem(row, position, sizes)
        if problem is not None:
            problems.add(f"Row {reader.line_num}: {problem}.")  # type: ignore[attr-defined]
            continue
        columns.film.append(position[row[0]])
        for name, text in zip(("x", "y", "score"), row[1:], strict=True):
            getattr(columns, name).append(float(text))
    summary = problems.message("rows with problems")
    if summary:
        raise InvalidPredictions(summary)
    return columns


def _check_per_film(film: np.ndarray, expected_ids: Sequence[str], cap: int) -> None:
    counts = np.bincount(film, minlength=len(expected_ids))
    over = np.flatnonzero(counts > cap)
    if over.size:
        named = ", ".join(f"{_quote(expected_ids[i])} ({counts[i]})" for i in over[:5])
        more = f" and {over.size - 5} more" if over.size > 5 else ""
        raise InvalidPredictions(
            f"At most {cap} detections per film are scored; these films have more: "
            f"{named}{more}.")
