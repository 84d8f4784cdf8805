"""Build the mammography example as a `bundle` zip or as an `image` archive.

    from build import build_bundle, build_image
    build_bundle(Path("public/train"), Path("mammography.zip"))
    build_image(Path("public/train"), Path("mammography.tar.gz"))

`train_dir` holds `images/<id>.png` and `labels.csv` (`id,label`). The model is fitted inside
the platform runtime image (demo.runtime.run_in_runtime_image) so model.joblib matches the
Debian scikit-learn that loads it. `build_image` then runs `docker build` (legacy builder,
no registry: FROM the local runtime tag) and `docker save`. `python build.py fit TRAIN_DIR
MODEL_OUT` is the in-container step. Host side needs the project on sys.path and Docker.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGE_TAG = "heldout-example/mammography-intensity:latest"
DOCKERFILE = """\
FROM {base}
COPY predict.py model.joblib /app/
WORKDIR /app
USER 65534:65534
CMD ["python", "/app/predict.py"]
"""


def fit_model(train_dir: Path, model_out: Path) -> Path:
    """Fit in the runtime image with `train_dir` mounted read-only; write `model_out`."""
    from demo.runtime import fit_model_in_runtime_image

    return fit_model_in_runtime_image(HERE, train_dir, model_out)


def build_bundle(train_dir: Path, out_zip: Path) -> Path:
    """Fit and zip predict.py + model.joblib at the zip root; returns `out_zip`."""
    from demo.runtime import write_bundle_zip

    with tempfile.TemporaryDirectory(prefix="heldout-mammography-") as tmp:
        model = fit_model(train_dir, Path(tmp) / "model.joblib")
        return write_bundle_zip(out_zip, {"predict.py": HERE / "predict.py", "model.joblib": model})


def build_image(train_dir: Path, out_tar: Path, *, compress: bool | None = None) -> Path:
    """Fit, `docker build` FROM the runtime image, `docker save` to `out_tar`.

    Gzipped when `compress` is True, or when None and the name ends in .gz. Returns out_tar.
    """
    from heldout_kernel.runtime_image import ensure_runtime_image

    base = ensure_runtime_image()
    with tempfile.TemporaryDirectory(prefix="heldout-mammography-") as tmp:
        context = Path(tmp)
        fit_model(train_dir, context / "model.joblib")
        shutil.copyfile(HERE / "predict.py", context / "predict.py")
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        for path in context.iterdir():
            path.chmod(0o644)
        _docker("build", "--quiet", "--tag", IMAGE_TAG, str(context))
    if compress is None:
        compress = out_tar.name.endswith(".gz")
    _save(IMAGE_TAG, out_tar, compress)
    return out_tar


def _docker(*args: str) -> None:
    # The legacy builder: no buildx plugin and no registry are needed for FROM a local tag.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def _save(tag: str, out_tar: Path, compress: bool) -> None:
    out_tar.parent.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        opener = gzip.GzipFile(out_tar, "wb", compresslevel=1) if compress else out_tar.open("wb")
        with opener as sink:
            shutil.copyfileobj(proc.stdout, sink, 1024 * 1024)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, ["docker", "save", tag])


def fit(train_dir: Path, model_out: Path) -> None:
    """Runs inside the runtime image."""
    import joblib
    import numpy as np
    import pandas as pd
    from predict import find_image, image_features
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = pd.read_csv(train_dir / "labels.csv", dtype={"id": str})
    matrix = np.stack([image_features(find_image(train_dir / "images", i)) for i in labels["id"]])
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)
    )
    model.fit(matrix, labels["label"].astype(int))
    joblib.dump(model, model_out)
    print(f"fitted on {len(labels)} films, {matrix.shape[1]} features")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "fit":
        sys.exit("usage: python build.py fit TRAIN_DIR MODEL_OUT")
    fit(Path(sys.argv[2]), Path(sys.argv[3]))
