"""The `readmission-30d` recipe: UCI Diabetes 130-US hospitals, 30-day readmission.

Encounters ending in death or hospice are dropped (they cannot be followed by a
readmission), the label is `readmitted == "<30"`, and the train/test split is by patient so
no patient's encounters are on both sides; a seeded `_unit` draw per patient makes the split
independent of row order. The held-out labels carry a public/private split and the subgroup
columns (sex, age band, race) that scoring breaks results down by. Without the source file the
recipe builds the same layout from `synthetic._synthetic_diabetic`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from demo.bundles.common import (
    DEFAULT_SEED,
    SYNTHETIC_PREFIX,
    BuiltBundle,
    _phase,
    _present,
    _sha256_file,
    _unit,
    _write_challenge_yaml,
    _write_csv,
    _write_text,
)
from demo.bundles.documents import (
    _readmission_dictionary,
    _readmission_readme,
    _readmission_terms,
)
from demo.bundles.stamp import _build, _recipe_key
from demo.bundles.synthetic import _synthetic_diabetic

DIABETES_CSV = Path("diabetes_130_us_hospitals/diabetic_data.csv.gz")
DIABETES_IDS = Path("diabetes_130_us_hospitals/IDs_mapping.csv")
# Encounters ending in death or hospice cannot be followed by a readmission (Strack et al.).
DEATH_OR_HOSPICE = frozenset({"11", "13", "14", "19", "20", "21"})
NOT_FEATURES = ("encounter_id", "patient_nbr", "readmitted")


def build_readmission_bundle(
    out_dir: Path,
    *,
    data_dir: Path | None,
    n_test: int | None = None,
    seed: int = DEFAULT_SEED,
    force: bool = False,
) -> BuiltBundle:
    """30-day readmission bundle; `n_test` subsamples the test patients (for fast tests)."""
    source = _present(data_dir, DIABETES_CSV)
    ids_file = source.parent / DIABETES_IDS.name if source else None
    inputs = {
        "csv": _sha256_file(source) if source else "synthetic",
        "ids": _sha256_file(ids_file) if ids_file and ids_file.is_file() else None,
    }
    key = _recipe_key({"slug": "readmission-30d", "seed": seed, "n_test": n_test, **inputs})

    def write(root: Path) -> tuple[int, int]:
        raw = _read_diabetic(source) if source else _synthetic_diabetic(seed)
        id_tables = _read_id_tables(ids_file) if ids_file and ids_file.is_file() else {}
        return _write_readmission(
            root, raw, seed=seed, n_test=n_test, synthetic=source is None, id_tables=id_tables
        )

    return _build(
        out_dir, slug="readmission-30d", synthetic=source is None, key=key, force=force, write=write
    )


def _read_diabetic(path: Path) -> pd.DataFrame:
    # Everything as text, and no NA guessing: "None" is a real value of max_glu_serum.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _read_id_tables(path: Path) -> dict[str, list[tuple[str, str]]]:
    """IDs_mapping.csv holds three code tables separated by a lone "," line."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if not row or not any(cell.strip() for cell in row):
                current = None
            elif current is None:
                current = row[0].strip()
                tables[current] = []
            else:
                tables[current].append((row[0].strip(), row[1].strip()))
    return tables


@dataclass(frozen=True)
class _Cohort:
    train: pd.DataFrame
    test: pd.DataFrame
    sanity: pd.DataFrame


def _first_patients(frame: pd.DataFrame, *, salt: str, max_rows: int, at_least: bool) -> set[str]:
    """Patients in a seeded order, taken until about `max_rows` encounters are covered."""
    counts = frame.groupby("patient_nbr", sort=True).size()
    order = sorted(counts.index, key=lambda p: _unit(p, salt))
    sizes = counts.loc[order].cumsum()
    keep = sizes <= max_rows
    if at_least:  # include the patient that crosses the line
        keep = sizes.shift(fill_value=0) < max_rows
    keep.iloc[0] = True
    return set(sizes.index[keep.to_numpy()])


def _cohort(raw: pd.DataFrame, *, seed: int, n_test: int | None) -> _Cohort:
    frame = raw[~raw["discharge_disposition_id"].isin(DEATH_OR_HOSPICE)].copy()
    frame["label"] = (frame["readmitted"] == "<30").astype(int)
    patients = frame["patient_nbr"].drop_duplicates()
    in_test = {p for p in patients if _unit(p, f"{seed}:test") >= 0.75}
    is_test = frame["patient_nbr"].isin(in_test)
    train, test = frame[~is_test], frame[is_test]
    if n_test is not None and n_test < len(test):
        chosen = _first_patients(test, salt=f"{seed}:subsample", max_rows=n_test, at_least=False)
        test = test[test["patient_nbr"].isin(chosen)]
    if set(train["patient_nbr"]) & set(test["patient_nbr"]):
        raise RuntimeError("readmission split is not patient-disjoint")
    sanity_patients = _first_patients(train, salt=f"{seed}:sanity", max_rows=200, at_least=True)
    sanity = train[train["patient_nbr"].isin(sanity_patients)]
    return _Cohort(train=train, test=test, sanity=sanity)


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in frame.columns if c not in NOT_FEATURES and c != "label"]
    # "?" is the source's missing-value code; an empty cell is what CSV readers expect.
    out = frame[columns].replace("?", "")
    out.insert(0, "id", frame["encounter_id"].astype(str))
    return out.reset_index(drop=True)


def _hidden_labels(test: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    split = test["patient_nbr"].map(
        lambda p: "public" if _unit(p, f"{seed}:split") < 0.5 else "private"
    )
    sex = test["gender"].map({"Female": "Female", "Male": "Male"}).fillna("Unknown")
    race = test["race"].replace("?", "Unknown")
    return pd.DataFrame(
        {
            "id": test["encounter_id"],
            "label": test["label"],
            "split": split,
            "sex": sex,
            "age_band": test["age"],
            "race": race,
        }
    ).reset_index(drop=True)


def _write_readmission(
    root: Path,
    raw: pd.DataFrame,
    *,
    seed: int,
    n_test: int | None,
    synthetic: bool,
    id_tables: dict[str, list[tuple[str, str]]],
) -> tuple[int, int]:
    cohort = _cohort(raw, seed=seed, n_test=n_test)
    train = _features(cohort.train)
    train["label"] = cohort.train["label"].to_numpy()
    _write_csv(root / "public/train.csv", train)
    _write_csv(root / "hidden/inputs/features.csv", _features(cohort.test))
    _write_csv(root / "hidden/labels.csv", _hidden_labels(cohort.test, seed=seed))
    _write_csv(root / "sanity/inputs/features.csv", _features(cohort.sanity))
    _write_csv(
        root / "sanity/labels.csv",
        pd.DataFrame({"id": cohort.sanity["encounter_id"], "label": cohort.sanity["label"]}),
    )
    stats = {
        "n_train": len(cohort.train),
        "n_test": len(cohort.test),
        "pos_train": int(cohort.train["label"].sum()),
        "pos_test": int(cohort.test["label"].sum()),
        "n_sanity": len(cohort.sanity),
        "patients_train": cohort.train["patient_nbr"].nunique(),
        "patients_test": cohort.test["patient_nbr"].nunique(),
        "n_test_cap": n_test,
    }
    _write_text(
        root / "public/data_dictionary.md",
        _readmission_dictionary(train, id_tables=id_tables, synthetic=synthetic),
    )
    _write_text(root / "README.md", _readmission_readme(stats, synthetic=synthetic))
    _write_text(root / "TERMS.md", _readmission_terms(synthetic=synthetic))
    meta = {
        "slug": "readmission-30d",
        "title": (SYNTHETIC_PREFIX if synthetic else "") + "Predict 30-day readmission",
        "summary": "Will a diabetic inpatient be readmitted within 30 days of discharge?",
        "task": "binary",
    }
    _write_challenge_yaml(
        root,
        meta=meta,
        public_files=["public/train.csv", "public/data_dictionary.md"],
        # DREAM's policy: teams see bootstrap means, new ones only with K > 3
        phases=[_phase(secondary=["auprc", "f1", "brier"], seconds=600,
                       release={"policy": "boot-ladder-boot"})],
    )
    return len(cohort.train), len(cohort.test)
