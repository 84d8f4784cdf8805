"""Example `bundle` model: 30-day readmission with logistic regression (container contract v1).

Reads $HELDOUT_INPUT/features.csv (an `id` column plus features), loads model.joblib from
beside this file and writes $HELDOUT_OUTPUT/predictions.csv with `id,score`.
Runs in the platform runtime image as `python predict.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import pandas as pd

HERE = Path(__file__).resolve().parent


def align(features: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Give every model column the dtype it was fitted with; absent columns become missing."""
    frame = pd.DataFrame(index=features.index)
    for column in numeric:
        values = features[column] if column in features else pd.Series(index=features.index)
        frame[column] = pd.to_numeric(values, errors="coerce")
    for column in categorical:
        values = features[column] if column in features else pd.Series(index=features.index)
        # An all-empty column would otherwise be read as float and break the encoder.
        frame[column] = values.astype("object")
    return frame


def main() -> None:
    input_dir = Path(os.environ.get("HELDOUT_INPUT", "/input"))
    output_dir = Path(os.environ.get("HELDOUT_OUTPUT", "/output"))
    bundle = joblib.load(HERE / "model.joblib")
    features = pd.read_csv(input_dir / "features.csv", dtype={"id": str}, low_memory=False)
    frame = align(features, bundle["numeric"], bundle["categorical"])
    scores = bundle["model"].predict_proba(frame)[:, 1]
    out = pd.DataFrame({"id": features["id"], "score": scores.round(6)})
    out.to_csv(output_dir / "predictions.csv", index=False)
    print(f"wrote {len(out)} predictions")


if __name__ == "__main__":
    main()
