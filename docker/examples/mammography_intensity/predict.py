"""Example imaging model: mammogram suspicion score from intensity statistics (contract v1).

For each id in $HELDOUT_INPUT/manifest.csv it reads images/<id>.png (or .dcm), describes the
breast region by its intensity histogram and percentiles, and scores it with the logistic
regression in model.joblib (beside this file). Writes $HELDOUT_OUTPUT/predictions.csv
(`id,score`). Works as a `bundle` (run from /submission) and inside the example `image`.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from PIL import Image

HERE = Path(__file__).resolve().parent
SIDE = 256  # films are described at this resolution: the statistics need no more
BINS = 16
PERCENTILES = (5, 10, 25, 50, 75, 90, 95, 99)
TISSUE_THRESHOLD = 0.12  # fraction of full scale that separates breast from background


def load_pixels(path: Path) -> np.ndarray:
    """Grey levels scaled to 0..1, downsampled so the long side is at most SIDE."""
    if path.suffix == ".dcm":
        import pydicom

        pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
        image = Image.fromarray(pixels)
    else:
        image = Image.open(path)
        image = image.convert("I") if image.mode.startswith("I") else image.convert("L")
    image.thumbnail((SIDE, SIDE))
    values = np.asarray(image, dtype=np.float32)
    peak = float(values.max())
    return values / peak if peak > 0 else values


def image_features(path: Path) -> np.ndarray:
    values = load_pixels(path)
    tissue = values[values > TISSUE_THRESHOLD]
    if tissue.size < 16:
        tissue = values.ravel()
    histogram, _ = np.histogram(tissue, bins=BINS, range=(0.0, 1.0))
    mean, std = float(tissue.mean()), float(tissue.std()) + 1e-6
    bright = float((tissue > mean + 2 * std).mean())
    skew = float((((tissue - mean) / std) ** 3).mean())
    summary = [tissue.size / values.size, mean, std, bright, skew]
    return np.concatenate([summary, np.percentile(tissue, PERCENTILES), histogram / tissue.size])


def find_image(images: Path, case_id: str) -> Path:
    for suffix in (".png", ".dcm"):
        candidate = images / f"{case_id}{suffix}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no image for id {case_id}")


def main() -> None:
    input_dir = Path(os.environ.get("HELDOUT_INPUT", "/input"))
    output_dir = Path(os.environ.get("HELDOUT_OUTPUT", "/output"))
    model = joblib.load(HERE / "model.joblib")
    ids = pd.read_csv(input_dir / "manifest.csv", dtype={"id": str})["id"]
    matrix = np.stack([image_features(find_image(input_dir / "images", i)) for i in ids])
    scores = model.predict_proba(matrix)[:, 1]
    pd.DataFrame({"id": ids, "score": scores.round(6)}).to_csv(
        output_dir / "predictions.csv", index=False
    )
    print(f"wrote {len(ids)} predictions")


if __name__ == "__main__":
    main()
