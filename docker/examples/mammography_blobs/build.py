"""Build the lesion-detection example as a `bundle` zip.

    from build import build_bundle, build_rule_bundle
    build_bundle(Path("train"), Path("blobs.zip"))         # logistic regression
    build_rule_bundle(Path("blobs-rule.zip"), max_detections=3)  # fixed rule, no fitting

`train_dir` holds `images/<id>.png`, `labels.csv` (`id,label`) and `lesions.csv`
(`id,x,y,radius` in pixels of those images, origin top-left: the bundle's
`public/lesions.csv`). Every candidate blob predict.py finds on a training film is labelled
a hit when it lies within the radius of one of the film's lesions, and a logistic regression
learns hit vs miss from the candidates' features. The fit runs inside the platform runtime
image (demo.runtime.run_in_runtime_image), so model.joblib is pickled by the same Debian
scikit-learn that loads it. `python build.py fit TRAIN_DIR MODEL_OUT` is the in-container
step. Host side needs the project on sys.path and Docker.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fit_model(train_dir: Path, model_out: Path) -> Path:
    """Fit in the runtime image with `train_dir` mounted read-only; write `model_out`."""
    from demo.runtime import fit_model_in_runtime_image

    return fit_model_in_runtime_image(HERE, train_dir, model_out)


def build_bundle(train_dir: Path, out_zip: Path) -> Path:
    """Fit and zip predict.py + model.joblib at the zip root; returns `out_zip`."""
    from demo.runtime import write_bundle_zip

    with tempfile.TemporaryDirectory(prefix="heldout-blobs-") as tmp:
        model = fit_model(train_dir, Path(tmp) / "model.joblib")
        return write_bundle_zip(out_zip, {"predict.py": HERE / "predict.py", "model.joblib": model})


def build_rule_bundle(out_zip: Path, *, max_detections: int = 3) -> Path:
    """predict.py without a model (its fixed contrast rule), `max_detections` per film."""
    from demo.runtime import write_bundle_zip

    with tempfile.TemporaryDirectory(prefix="heldout-blobs-") as tmp:
        settings = Path(tmp) / "settings.json"
        settings.write_text(json.dumps({"max_detections": max_detections}) + "\n")
        members = {"predict.py": HERE / "predict.py", "settings.json": settings}
        return write_bundle_zip(out_zip, members)


def fit(train_dir: Path, model_out: Path) -> None:
    """Runs inside the runtime image."""
    import joblib
    import numpy as np
    import pandas as pd
    from predict import FEATURES, candidates, load_film, to_image_pixels
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ids = pd.read_csv(train_dir / "labels.csv", dtype={"id": str})["id"]
    lesions = pd.read_csv(train_dir / "lesions.csv", dtype={"id": str})
    tables = []
    for case in ids:
        film = load_film(train_dir / "images" / f"{case}.png")
        table = candidates(film)
        x, y = to_image_pixels(film, table["wx"].to_numpy(), table["wy"].to_numpy())
        hit = np.zeros(len(table), dtype=bool)
        for lesion in lesions[lesions["id"] == case].itertuples():
            hit |= (x - lesion.x) ** 2 + (y - lesion.y) ** 2 <= lesion.radius**2
        tables.append(table.assign(hit=hit))
    train = pd.concat(tables, ignore_index=True)
    if train["hit"].nunique() < 2:
        sys.exit(f"need candidates that hit and miss lesions; got {int(train['hit'].sum())} hits")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(train[list(FEATURES)].to_numpy(), train["hit"].astype(int))
    joblib.dump(model, model_out)
    print(
        f"fitted on {len(ids)} films: {len(train)} candidates, {int(train['hit'].sum())} hit "
        f"one of {len(lesions)} lesions"
    )


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "fit":
        sys.exit("usage: python build.py fit TRAIN_DIR MODEL_OUT")
    fit(Path(sys.argv[2]), Path(sys.argv[3]))
