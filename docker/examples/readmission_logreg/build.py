"""Build the readmission example bundle: fit in the runtime image, zip predict.py + model.

    from build import build_bundle
    build_bundle(Path("public/train.csv"), Path("readmission_logreg.zip"))

The model is fitted INSIDE the platform runtime image (via demo.runtime.run_in_runtime_image,
i.e. the sandboxed Docker backend), so model.joblib is pickled by the same Debian scikit-learn
(1.2.x) that unpickles it at scoring time; the worker's own scikit-learn may be newer.
`python build.py fit TRAIN_CSV MODEL_OUT` is that in-container step. Host side needs the
project on sys.path and a Docker engine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Low-cardinality text columns only: free-text-like codes (diagnoses) would explode one-hot.
MAX_CATEGORIES = 30
MAX_CATEGORICAL_COLUMNS = 12


def build_bundle(train_csv: Path, out_zip: Path) -> Path:
    """Fit on `train_csv` (`id`, features, `label`) and write the bundle zip; returns it."""
    from demo.runtime import run_in_runtime_image, write_bundle_zip

    with tempfile.TemporaryDirectory(prefix="heldout-readmission-") as tmp:
        input_dir, output_dir = Path(tmp) / "input", Path(tmp) / "output"
        input_dir.mkdir()
        shutil.copyfile(train_csv, input_dir / "train.csv")
        for path in (Path(tmp), input_dir, input_dir / "train.csv"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        run_in_runtime_image(
            script_dir=HERE,
            command=("python", "build.py", "fit", "/input/train.csv", "/output/model.joblib"),
            input_dir=input_dir,
            output_dir=output_dir,
        )
        members = {"predict.py": HERE / "predict.py", "model.joblib": output_dir / "model.joblib"}
        write_bundle_zip(out_zip, members)
    return out_zip


def fit(train_csv: Path, model_out: Path) -> None:
    """Runs inside the runtime image: fit the Pipeline and save it with its column lists."""
    import joblib
    import pandas as pd
    from predict import align

    train = pd.read_csv(train_csv, dtype={"id": str}, low_memory=False)
    labels = train.pop("label").astype(int)
    features = train.drop(columns=["id"])
    numeric = list(features.select_dtypes("number").columns)
    cardinality = features.select_dtypes(exclude="number").nunique().sort_values()
    categorical = list(cardinality[cardinality <= MAX_CATEGORIES].index[:MAX_CATEGORICAL_COLUMNS])
    model = make_model(numeric, categorical)
    model.fit(align(features, numeric, categorical), labels)
    joblib.dump({"model": model, "numeric": numeric, "categorical": categorical}, model_out)
    print(f"fitted on {len(labels)} rows: {len(numeric)} numeric, {len(categorical)} categorical")


def make_model(numeric: list[str], categorical: list[str]):  # noqa: ANN201 - sklearn is lazy
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical_steps = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    columns = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)]
    )
    return Pipeline([("columns", columns), ("classifier", LogisticRegression(max_iter=2000))])


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "fit":
        sys.exit("usage: python build.py fit TRAIN_CSV MODEL_OUT")
    fit(Path(sys.argv[2]), Path(sys.argv[3]))
