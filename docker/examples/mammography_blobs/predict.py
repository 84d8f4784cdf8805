"""Example detection model: bright-blob candidates scored by a logistic regression.

For each id in $HELDOUT_INPUT/manifest.csv it reads images/<id>.png, works on a copy
downsampled to WORK pixels, finds the breast (the largest bright region), and takes the
strongest local maxima of a scale-normalised Laplacian-of-Gaussian inside it as candidate
lesions (masses are brighter than the tissue around them). Each candidate is described by
its blob response, size, brightness, local contrast and position, and scored by the
logistic regression in model.joblib (fitted by build.py on the public training films).

Writes $HELDOUT_OUTPUT/detections.csv (`id,x,y,score`; pixels of the given image, origin
top-left; at most MAX_DETECTIONS per film) and predictions.csv (`id,score`, a film's
highest detection score). Without model.joblib it falls back to a fixed rule (local
contrast through a logistic curve): the demo's weaker entry. settings.json beside this file
may override `max_detections`. Works as a `bundle` (run from /submission); numpy, scipy,
PIL, pandas and joblib only, no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

HERE = Path(__file__).resolve().parent
WORK = 256  # working resolution (long side): lesions of radius 3..200 px at 1024 stay visible
SIGMAS = (2.0, 3.0, 4.5, 6.5, 9.0)  # blob scales in working pixels (radius ~ sigma * sqrt 2)
N_CANDIDATES = 20
MAX_DETECTIONS = 20  # the contract allows 100 per film; FROC looks at most at 8 FP per film
PEAK_WINDOW = 9  # local maxima closer than this (working px) are one candidate
BACKGROUND = 0.1  # fraction of the film's peak grey level; mini-MIAS background is ~0
EDGE_MARGIN = 3  # candidates this close to the breast edge are skin line, not lesions
FEATURES = (
    "response", "log_sigma", "centre", "contrast", "z_centre", "rank_in_breast",
    "edge_distance", "from_chest_wall", "height", "relative_response", "breast_mean",
    "breast_std",
)  # fmt: skip


@dataclass(frozen=True)
class Film:
    """A film at working resolution and what is known about its breast region."""

    pixels: np.ndarray  # float32 in 0..1, WORK on the long side
    factor: float  # original pixels per working pixel
    shape: tuple[int, int]  # original (height, width)
    breast: np.ndarray  # bool mask
    chest_wall_left: bool


def load_film(path: Path) -> Film:
    image = Image.open(path)
    values = np.asarray(image, dtype=np.float32)
    if values.ndim == 3:
        values = values[..., :3].mean(axis=2)
    peak = float(values.max())
    values = values / peak if peak > 0 else values
    height, width = values.shape
    factor = max(height, width) / WORK
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    resample = Image.Resampling.BOX if factor >= 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(values).resize(size, resample), np.float32)
    breast = breast_mask(small)
    columns = breast.sum(axis=0)
    left_heavy = columns[: columns.size // 2].sum() >= columns[columns.size // 2 :].sum()
    return Film(small, factor, (height, width), breast, chest_wall_left=bool(left_heavy))


def breast_mask(pixels: np.ndarray) -> np.ndarray:
    """The largest connected region brighter than the film background, holes filled.

    Film labels and scanner marks are separate bright regions, so keeping the largest
    component drops them. A film with no such region gives the whole image.
    """
    regions, count = ndimage.label(ndimage.binary_opening(pixels > BACKGROUND, iterations=2))
    if count == 0:
        return np.ones_like(pixels, dtype=bool)
    sizes = ndimage.sum_labels(np.ones_like(regions), regions, index=np.arange(1, count + 1))
    mask: np.ndarray = ndimage.binary_fill_holes(regions == 1 + int(np.argmax(sizes)))
    return mask


def blob_response(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best scale-normalised -LoG over SIGMAS (bright blobs positive) and its scale index."""
    stack = np.stack([-(s**2) * ndimage.gaussian_laplace(pixels, s) for s in SIGMAS])
    return stack.max(axis=0), stack.argmax(axis=0)


def candidates(film: Film) -> pd.DataFrame:
    """Up to N_CANDIDATES blobs: working-pixel position, scale and features (FEATURES)."""
    response, scale = blob_response(film.pixels)
    inside = film.breast & (ndimage.distance_transform_edt(film.breast) > EDGE_MARGIN)
    peaks = (response == ndimage.maximum_filter(response, size=PEAK_WINDOW)) & inside
    peaks &= response > 0
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-response[ys, xs], kind="stable")[:N_CANDIDATES]
    ys, xs = ys[order], xs[order]
    columns = ["wx", "wy", "sigma", *FEATURES]
    if ys.size == 0:
        return pd.DataFrame(columns=columns, dtype=float)
    return pd.DataFrame(_describe(film, response, scale, ys, xs), columns=columns)


def _describe(
    film: Film, response: np.ndarray, scale: np.ndarray, ys: np.ndarray, xs: np.ndarray
) -> list[list[float]]:
    smooth = ndimage.gaussian_filter(film.pixels, 1.0)
    tissue = smooth[film.breast]
    mean, std = float(tissue.mean()), float(tissue.std()) + 1e-6
    edge = ndimage.distance_transform_edt(film.breast)
    height, width = film.pixels.shape
    yy, xx = np.mgrid[0:height, 0:width]
    sorted_tissue = np.sort(tissue)
    top = float(response[ys[0], xs[0]]) + 1e-6
    rows = []
    for y, x in zip(ys, xs, strict=True):
        sigma = SIGMAS[int(scale[y, x])]
        radius = sigma * np.sqrt(2)
        box = (slice(max(0, y - int(3 * radius) - 1), y + int(3 * radius) + 2),
               slice(max(0, x - int(3 * radius) - 1), x + int(3 * radius) + 2))  # fmt: skip
        dist = np.hypot(yy[box] - y, xx[box] - x)
        patch, in_breast = smooth[box], film.breast[box]
        disk = patch[(dist <= radius) & in_breast]
        ring = patch[(dist > radius) & (dist <= 2.5 * radius) & in_breast]
        centre = float(smooth[y, x])
        wall = x if film.chest_wall_left else width - 1 - x
        rows.append([
            float(x), float(y), sigma,
            float(response[y, x]), float(np.log(sigma)), centre,
            float(disk.mean() - ring.mean()) if disk.size and ring.size else 0.0,
            (centre - mean) / std,
            float(np.searchsorted(sorted_tissue, centre)) / max(1, sorted_tissue.size),
            float(edge[y, x]) / WORK, wall / WORK, y / height,
            float(response[y, x]) / top, mean, std,
        ])  # fmt: skip
    return rows


def to_image_pixels(film: Film, wx: np.ndarray, wy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Working-pixel centres to pixel coordinates of the original image (inside it)."""
    height, width = film.shape
    x = np.clip((wx + 0.5) * film.factor - 0.5, 0, width - 1)
    y = np.clip((wy + 0.5) * film.factor - 0.5, 0, height - 1)
    return x, y


def score_candidates(table: pd.DataFrame, model: Any) -> np.ndarray:
    """Hit probability per candidate: `model`'s (a fitted classifier), else the fixed rule."""
    if table.empty:
        return np.zeros(0)
    if model is None:  # the fixed rule: a blob much brighter than its surround is suspicious
        contrast = table["contrast"].to_numpy(dtype=float)
        return np.asarray(1 / (1 + np.exp(-(contrast - 0.05) / 0.03)))
    return np.asarray(model.predict_proba(table[list(FEATURES)].to_numpy())[:, 1])


def detect(path: Path, model: Any, max_detections: int) -> pd.DataFrame:
    film = load_film(path)
    table = candidates(film)
    score = score_candidates(table, model)
    order = np.argsort(-score, kind="stable")[:max_detections]
    table, score = table.iloc[order], score[order]
    x, y = to_image_pixels(film, table["wx"].to_numpy(), table["wy"].to_numpy())
    return pd.DataFrame({"x": x.round(2), "y": y.round(2), "score": np.clip(score, 0, 1).round(6)})


def main() -> None:
    input_dir = Path(os.environ.get("HELDOUT_INPUT", "/input"))
    output_dir = Path(os.environ.get("HELDOUT_OUTPUT", "/output"))
    settings_file = HERE / "settings.json"
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    max_detections = min(100, int(settings.get("max_detections", MAX_DETECTIONS)))
    model_file = HERE / "model.joblib"
    model = None
    if model_file.exists():
        import joblib

        model = joblib.load(model_file)
    ids = pd.read_csv(input_dir / "manifest.csv", dtype={"id": str})["id"]
    found, films = [], []
    for case in ids:
        detections = detect(input_dir / "images" / f"{case}.png", model, max_detections)
        found.append(detections.assign(id=case))
        films.append(float(detections["score"].max()) if len(detections) else 0.0)
    columns = ["id", "x", "y", "score"]
    table = pd.concat(found, ignore_index=True)[columns] if found else pd.DataFrame(columns=columns)
    table.to_csv(output_dir / "detections.csv", index=False)
    pd.DataFrame({"id": ids, "score": films}).to_csv(output_dir / "predictions.csv", index=False)
    rule = "logistic regression" if model is not None else "fixed rule"
    print(f"wrote {len(table)} detections for {len(ids)} films ({rule})")


if __name__ == "__main__":
    main()
