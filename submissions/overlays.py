"""Overlay pictures for detection phases: on each public sanity film, the true lesions and
the team's detections from its sanity run. Only the public sanity set is ever drawn; the
hidden films, lesions and detections never reach a page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from challenges.models import EvaluationSet
from core.storage import private_path
from heldout_kernel.lesions import image_sizes, lesion_rows

OVERLAY_CAP = 20  # the scorer keeps this many detections per public film (heldout_kernel.judge)


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    r: float
    score: float | None = None

    @property
    def cross(self) -> str:
        """SVG path of a cross centred on the mark."""
        x, y, r = self.x, self.y, self.r
        return f"M{x - r:.1f} {y:.1f}H{x + r:.1f}M{x:.1f} {y - r:.1f}V{y + r:.1f}"


@dataclass(frozen=True)
class Overlay:
    film: str
    width: int
    height: int
    lesions: tuple[Mark, ...]
    detections: tuple[Mark, ...]

    @property
    def stroke(self) -> float:
        return round(max(self.width, self.height) / 200, 2)


def public_film_path(evaluation_set: EvaluationSet | None, film: str) -> Any:
    """The image of a film of a public (sanity) set, or None: hidden sets are never served."""
    if evaluation_set is None or not evaluation_set.is_public:
        return None
    folder = private_path(evaluation_set.inputs_dir) / "images"
    path = folder / f"{film}.png"
    if path.parent != folder or not path.is_file():
        return None
    return path


def overlays(sanity_set: EvaluationSet | None, detections: dict[str, list[list[float]]]
             ) -> list[Overlay]:
    """One overlay per public sanity film (films in id order)."""
    if sanity_set is None or not sanity_set.is_public or not sanity_set.lesions_file:
        return []
    truth: dict[str, list[Mark]] = {}
    for row in lesion_rows(private_path(sanity_set.lesions_file)):
        truth.setdefault(row["id"], []).append(
            Mark(float(row["x"]), float(row["y"]), float(row["radius"])))
    films = sorted(detections)
    sizes = image_sizes(private_path(sanity_set.inputs_dir), films)
    out = []
    for film in films:
        if film not in sizes:
            continue
        width, height = sizes[film]
        marker = max(width, height) / 60  # a detection's cross, a little bigger than a pixel
        out.append(Overlay(film, width, height, tuple(truth.get(film, ())), tuple(
            Mark(x, y, marker, score) for x, y, score in detections[film])))
    return out
