"""Judging what a model run wrote, with trusted code and no Django: the central scorer and
data stations decide error classes, validate output and match detections alike.

Error classes and what a team reads of them are the container contract's
(heldout_kernel.contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heldout_kernel import validation
from heldout_kernel.cases import LabelTable
from heldout_kernel.contract import Error
from heldout_kernel.errors import InvalidPredictions
from heldout_kernel.sandbox.base import RunResult
from heldout_kernel.stats.detection import Evidence, match

OVERLAY_PER_FILM = 20  # detections kept per public sanity film for the overlay pictures


@dataclass(frozen=True)
class ModelOutput:
    """What a run wrote, validated: film-level predictions and, for detection phases, the
    detections (a film's score is its best detection unless predictions.csv gives one)."""

    predictions: validation.Predictions
    detections: validation.Detections | None = None


def judge(
    result: RunResult, output: Path, expected: tuple[str, ...], seconds: int,
    image_sizes: dict[str, tuple[int, int]] | None = None,
) -> tuple[str, str, ModelOutput | None]:
    """(error class, detailed message, what the model wrote). The details go to the Run
    (organisers) and, on the sanity lane, to the team. `image_sizes` marks a detection
    phase: the model writes detections.csv, and predictions.csv only if it wants to."""
    if result.timed_out:
        return Error.TIMEOUT, f"The model did not finish within {seconds} seconds.", None
    if result.oom_killed:
        return Error.OUT_OF_MEMORY, "The model used more memory than the phase allows.", None
    if result.output_too_large:  # the root cause even when the model then crashed on ENOSPC
        return Error.INVALID_OUTPUT, "The model filled the /output size limit.", None
    if result.exit_code != 0:
        return Error.NONZERO_EXIT, f"The model exited with code {result.exit_code}.", None
    if image_sizes is not None:
        return _judge_detections(output, expected, image_sizes)
    path = output / "predictions.csv"
    if not path.is_file():
        return Error.MISSING_OUTPUT, "The model wrote no /output/predictions.csv.", None
    try:
        return "", "", ModelOutput(validation.read_predictions(path, expected_ids=expected))
    except InvalidPredictions as error:
        return Error.INVALID_OUTPUT, error.message, None  # details: sanity lane, organisers


def _judge_detections(
    output: Path, expected: tuple[str, ...], image_sizes: dict[str, tuple[int, int]],
) -> tuple[str, str, ModelOutput | None]:
    path = output / "detections.csv"
    if not path.is_file():
        return Error.MISSING_OUTPUT, "The model wrote no /output/detections.csv.", None
    try:
        detections = validation.read_detections(path, expected_ids=expected,
                                                image_sizes=image_sizes)
        films = output / "predictions.csv"
        if films.exists():
            predictions = validation.read_predictions(films, expected_ids=expected)
        else:
            predictions = _film_scores(detections, expected)
    except InvalidPredictions as error:
        return Error.INVALID_OUTPUT, error.message, None
    return "", "", ModelOutput(predictions, detections)


def _film_scores(detections: validation.Detections,
                 expected: tuple[str, ...]) -> validation.Predictions:
    scores = detections.best_per_film(len(expected))
    scores.flags.writeable = False
    return validation.Predictions(ids=expected, scores=scores, labels=None)


def overlay_detections(detections: validation.Detections,
                       ids: tuple[str, ...]) -> dict[str, list[list[float]]]:
    """A public sanity run's detections per film, best first, for the overlay pictures."""
    out: dict[str, list[list[float]]] = {}
    for index in np.argsort(-detections.score, kind="stable"):
        film = out.setdefault(ids[int(detections.film[index])], [])
        if len(film) < OVERLAY_PER_FILM:
            film.append([round(float(detections.x[index]), 1),
                         round(float(detections.y[index]), 1),
                         round(float(detections.score[index]), 4)])
    return out


def matched_evidence(table: LabelTable,
                     detections: validation.Detections | None) -> Evidence | None:
    """Detections matched against the true lesions: what detection metrics read, with
    coordinates and ids gone."""
    if detections is None or table.lesions is None:
        return None
    lesions = table.lesions
    return match(n_films=len(table.ids), lesion_film=lesions.film, lesion_x=lesions.x,
                 lesion_y=lesions.y, lesion_radius=lesions.radius, det_film=detections.film,
                 det_x=detections.x, det_y=detections.y, det_score=detections.score)
