"""Cases for the metric and bootstrap benches: 30-day readmission in the real Diabetes
130-US hospitals set (../shared/data), scored by a logistic regression on five numeric
columns, which gives realistic prevalence and many tied scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

DIABETES = (Path(__file__).resolve().parents[2] / "shared" / "data"
            / "diabetes_130_us_hospitals" / "diabetic_data.csv.gz")
FEATURES = [
    "time_in_hospital",
    "num_lab_procedures",
    "num_medications",
    "number_inpatient",
    "number_emergency",
]


def fitted_readmission_model() -> tuple[np.ndarray, Pipeline, np.ndarray] | None:
    """(labels, fitted model, features) for every encounter; None, with a printed note,
    when the data set is absent (the caller then uses labelled synthetic data)."""
    if not DIABETES.is_file():
        print(f"NOTE: {DIABETES} is absent; using SYNTHETIC data.")
        return None
    import pandas as pd

    df = pd.read_csv(DIABETES, usecols=[*FEATURES, "readmitted"])
    y = (df["readmitted"] == "<30").to_numpy().astype(np.int64)
    x = df[FEATURES].to_numpy(dtype=np.float64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return y, model.fit(x, y), x
