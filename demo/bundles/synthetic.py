"""Synthetic stand-ins used when the real source files are absent.

They have the real layout (the diabetes file's 50 text columns and value styles; mini-MIAS
film ids, left/right pairs and lesion rows) and a planted, learnable signal, so every code
path downstream (split, documents, scoring, baselines) runs on a machine without the data.
Everything is drawn from numpy generators seeded by the recipe seed, so a synthetic build is
as reproducible as a real one. The bundles they produce are labelled as synthetic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from PIL import Image

from demo.bundles.documents import MEDICATIONS
from demo.bundles.mias import MIAS_PX, Film, Lesion


def _synthetic_diabetic(seed: int, n_rows: int = 5100) -> pd.DataFrame:
    """A stand-in with the real file's 50 columns, value styles and a learnable signal."""
    rng = np.random.default_rng(seed)
    n_patients = 3800
    patient = np.sort(rng.integers(0, n_patients, n_rows))

    def pick(values: list[str], p: list[float] | None = None) -> np.ndarray:
        return rng.choice(values, n_rows, p=p)

    age_idx = np.minimum(rng.binomial(9, 0.72, n_patients), 9)[patient]
    inpatient = rng.poisson(0.6, n_rows)
    emergency = rng.poisson(0.2, n_rows)
    days = rng.integers(1, 15, n_rows)
    insulin = pick(["No", "Steady", "Up", "Down"], [0.47, 0.3, 0.11, 0.12])
    logit = (
        -2.9
        + 0.55 * inpatient
        + 0.35 * emergency
        + 0.06 * (days - 4)
        + 0.25 * (age_idx >= 7)
        + 0.35 * np.isin(insulin, ["Up", "Down"])
    )
    label = rng.random(n_rows) < 1 / (1 + np.exp(-logit))
    codes = ["428", "414", "786", "410", "486", "427", "250.8", "276", "V57", "?"]
    frame = pd.DataFrame(
        {
            "encounter_id": (1000 + np.arange(n_rows) * 37).astype(str),
            "patient_nbr": (500000 + patient * 11).astype(str),
            "race": np.array(["Caucasian", "AfricanAmerican", "Hispanic", "Asian", "Other", "?"])[
                rng.choice(6, n_patients, p=[0.74, 0.19, 0.02, 0.01, 0.015, 0.025])
            ][patient],
            "gender": np.array(["Female", "Male"])[rng.integers(0, 2, n_patients)][patient],
            "age": np.array([f"[{10 * i}-{10 * i + 10})" for i in range(10)])[age_idx],
            "weight": pick(["?", "[50-75)", "[75-100)"], [0.96, 0.02, 0.02]),
            "admission_type_id": pick(["1", "2", "3", "5", "6"], [0.53, 0.18, 0.19, 0.05, 0.05]),
            "discharge_disposition_id": pick(
                ["1", "3", "6", "18", "11", "13"], [0.6, 0.14, 0.13, 0.09, 0.02, 0.02]
            ),
            "admission_source_id": pick(["7", "1", "17", "4"], [0.57, 0.3, 0.07, 0.06]),
            "time_in_hospital": days.astype(str),
            "payer_code": pick(["?", "MC", "HM", "SP", "BC"], [0.4, 0.32, 0.1, 0.09, 0.09]),
            "medical_specialty": pick(
                ["?", "InternalMedicine", "Emergency/Trauma", "Cardiology"], [0.5, 0.25, 0.15, 0.1]
            ),
            "num_lab_procedures": rng.integers(1, 100, n_rows).astype(str),
            "num_procedures": rng.integers(0, 7, n_rows).astype(str),
            "num_medications": rng.integers(1, 60, n_rows).astype(str),
            "number_outpatient": rng.poisson(0.4, n_rows).astype(str),
            "number_emergency": emergency.astype(str),
            "number_inpatient": inpatient.astype(str),
            "diag_1": pick(codes[:-1]),
            "diag_2": pick(codes),
            "diag_3": pick(codes),
            "number_diagnoses": rng.integers(1, 17, n_rows).astype(str),
            "max_glu_serum": pick(["None", "Norm", ">200", ">300"], [0.94, 0.03, 0.015, 0.015]),
            "A1Cresult": pick(["None", ">8", "Norm", ">7"], [0.83, 0.08, 0.05, 0.04]),
        }
    )
    for drug in MEDICATIONS:
        frame[drug] = (
            insulin
            if drug == "insulin"
            else pick(["No", "Steady", "Up", "Down"], [0.85, 0.13, 0.01, 0.01])
        )
    frame["change"] = pick(["No", "Ch"], [0.54, 0.46])
    frame["diabetesMed"] = pick(["Yes", "No"], [0.77, 0.23])
    frame["readmitted"] = np.where(label, "<30", pick([">30", "NO"], [0.4, 0.6]))
    return frame


def _synthetic_films(seed: int, n_films: int = 40) -> list[Film]:
    rng = np.random.default_rng(seed + 1)
    films = []
    for number in range(1, n_films + 1):
        lesions: tuple[Lesion, ...] = ()
        if rng.random() < 0.4:
            cls = str(rng.choice(["CIRC", "SPIC", "MISC", "CALC"]))
            severity = str(rng.choice(["B", "M"]))
            x, y, r = (
                int(v)
                for v in (rng.integers(380, 640), rng.integers(300, 720), rng.integers(40, 90))
            )
            lesions = (Lesion(cls, severity, x, y, r),)
        if number == 7:  # like mdb216: diffuse calcifications, no coordinates
            lesions = (Lesion("CALC", "M", None, None, None),)
        films.append(
            Film(id=f"mdb{number:03d}", tissue=str(rng.choice(["F", "G", "D"])), lesions=lesions)
        )
    return films


def _synthetic_film_image(seed: int, px: int = 256) -> Callable[[Film], Image.Image]:
    """Noisy half-ellipse "breast" on black; each located lesion is a bright Gaussian blob."""
    yy, xx = np.mgrid[0:px, 0:px].astype(float)

    def render(film: Film) -> Image.Image:
        rng = np.random.default_rng([seed, int(film.id[3:])])
        side = 0.0 if film.pair * 2 == int(film.id[3:]) else px
        breast = ((xx - side) / (0.75 * px)) ** 2 + ((yy - px / 2) / (0.48 * px)) ** 2 < 1
        image = np.where(breast, 95.0 + 25 * rng.standard_normal((px, px)), 4.0)
        for les in film.lesions:
            located = les.top_left(px / MIAS_PX)
            if located is None:  # diffuse calcifications: scattered bright specks
                image += breast * (rng.random((px, px)) < 0.004) * 120.0
                continue
            cx, cy, radius = located
            image += 110.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (radius / 2) ** 2))
        return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))  # 2-D uint8: mode L

    return render
