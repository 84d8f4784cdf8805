"""Build the two demo challenge bundles (challenge-as-code folders) from the shared real data.

A bundle is a folder: challenge.yaml, README.md, TERMS.md, public/, hidden/, sanity/ (see the
challenge importer for how it is read). Two recipes live here:

* ``readmission-30d``: UCI Diabetes 130-US hospitals, 30-day readmission, split by patient.
* ``mammography-screening``: mini-MIAS films, "is this film suspicious?", split by woman
  (left/right film pairs).

When the source files are absent the recipes fall back to clearly labelled synthetic stand-ins
with the same layout. Builds are deterministic (same inputs -> byte-identical files) and a
``.built`` stamp (hash of recipe, parameters and input files) lets a rebuild be skipped.

Pure Python on purpose (pandas, numpy, PIL; no Django): the importer, the demo command and the
tests all call it, and it must run on a machine that has only the data.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import lzma
import os
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
import yaml
from PIL import Image

logger = logging.getLogger(__name__)

RECIPE_VERSION = "1"
DEFAULT_SEED = 20261123
STAMP_NAME = ".built"
SYNTHETIC_PREFIX = "[SYNTHETIC] "
OPENS, CLOSES = "2026-01-01T00:00:00Z", "2027-12-31T23:59:59Z"

DIABETES_CSV = Path("diabetes_130_us_hospitals/diabetic_data.csv.gz")
DIABETES_IDS = Path("diabetes_130_us_hospitals/IDs_mapping.csv")
MIAS_DIR = Path("mini_mias")
# Encounters ending in death or hospice cannot be followed by a readmission (Strack et al.).
DEATH_OR_HOSPICE = frozenset({"11", "13", "14", "19", "20", "21"})
NOT_FEATURES = ("encounter_id", "patient_nbr", "readmitted")
MIAS_PX = 1024
MIAS_CLASSES = frozenset({"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM"})


@dataclass(frozen=True)
class BuiltBundle:
    path: Path
    slug: str
    synthetic: bool
    n_train: int
    n_test: int


def default_data_dir() -> Path | None:
    """HELDOUT_DATA_DIR if set, else <repo>/../shared/data if it exists, else None."""
    env = os.environ.get("HELDOUT_DATA_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return shared if shared.is_dir() else None


# --------------------------------------------------------------------------- shared helpers


def _unit(key: object, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for `key` (Python's hash() is salted per run)."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_text(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8"))


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def _write_zip(zip_path: Path, members: Sequence[tuple[str, Path]]) -> None:
    """Stored (PNGs are already compressed), fixed timestamps and modes: byte-reproducible."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, source in members:
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())


def _phase(
    *, secondary: list[str], seconds: int, labels: str = "hidden/labels.csv"
) -> dict[str, Any]:
    return {
        "slug": "leaderboard",
        "title": "Leaderboard round",
        "opens": OPENS,
        "closes": CLOSES,
        "submission_kinds": ["bundle", "image"],
        "quota": {"per_day": 5, "total": 100, "concurrent": 2, "count_failed": False},
        "metrics": {"primary": "auroc", "secondary": secondary},
        "evaluation": {"inputs": "hidden/inputs", "labels": labels},
        "sanity": {"inputs": "sanity/inputs", "labels": "sanity/labels.csv"},
        "limits": {"cpus": 1, "memory_mb": 2048, "seconds": seconds},
        "scores": "live",
        "show_logs": False,
    }


def _write_challenge_yaml(
    root: Path, *, meta: dict[str, str], public_files: list[str], phase: dict[str, Any]
) -> None:
    document = {
        **meta,
        "description": "README.md",
        "terms": "TERMS.md",
        "max_team_size": 5,
        "visibility": "public",
        "public_files": public_files,
        "phases": [phase],
    }
    _write_text(root / "challenge.yaml", yaml.safe_dump(document, sort_keys=False, width=100))


# --------------------------------------------------------------------------- stamp and swap


def _recipe_key(parts: dict[str, Any]) -> str:
    recipe = {"version": RECIPE_VERSION, "code": _sha256_file(Path(__file__)), **parts}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _valid_stamp(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The stamp if `out_dir` holds a complete bundle built from the same recipe, else None."""
    try:
        stamp = json.loads((out_dir / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("key") != key:
        return None
    files = stamp.get("files", {})
    for rel, entry in files.items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != entry["size"]:
            return None
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    return stamp if present - {STAMP_NAME} == set(files) else None


def _write_stamp(
    root: Path, *, key: str, slug: str, synthetic: bool, counts: tuple[int, int]
) -> None:
    files = {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    stamp = {
        "slug": slug,
        "key": key,
        "recipe_version": RECIPE_VERSION,
        "synthetic": synthetic,
        "n_train": counts[0],
        "n_test": counts[1],
        "files": files,
    }
    _write_text(root / STAMP_NAME, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def _refuse_foreign(out_dir: Path) -> None:
    # Building replaces out_dir wholesale, so never delete a folder that is not one of ours.
    if out_dir.exists() and any(out_dir.iterdir()):
        if not ((out_dir / STAMP_NAME).is_file() or (out_dir / "challenge.yaml").is_file()):
            raise FileExistsError(
                f"{out_dir} exists and does not look like a bundle; not replacing it"
            )


def _build(
    out_dir: Path,
    *,
    slug: str,
    synthetic: bool,
    key: str,
    force: bool,
    write: Callable[[Path], tuple[int, int]],
) -> BuiltBundle:
    out_dir = Path(out_dir)
    stamp = None if force else _valid_stamp(out_dir, key)
    if stamp is not None:
        logger.info("%s: up to date in %s, not rebuilt", slug, out_dir)
        return BuiltBundle(out_dir, slug, synthetic, stamp["n_train"], stamp["n_test"])
    _refuse_foreign(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        counts = write(staging)
        _write_stamp(staging, key=key, slug=slug, synthetic=synthetic, counts=counts)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: built in %s (%d train, %d test)", slug, out_dir, *counts)
    return BuiltBundle(out_dir, slug, synthetic, *counts)


def _present(data_dir: Path | None, relative: Path) -> Path | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / relative
    if not path.exists():
        logger.warning("%s not found: using synthetic stand-in data", path)
        return None
    return path


# --------------------------------------------------------------------------- readmission


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
        phase=_phase(secondary=["auprc", "f1", "brier"], seconds=600),
    )
    return len(cohort.train), len(cohort.test)


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


# --------------------------------------------------------------------------- mammography


@dataclass(frozen=True)
class Lesion:
    cls: str
    severity: str
    x: int | None  # Info.txt convention: pixels on the 1024 grid, origin bottom-left
    y: int | None
    radius: int | None

    def top_left(self, scale: float) -> tuple[float, float, float] | None:
        """(x, y, radius) in output pixels with the origin top-left; None when unlocated."""
        if self.x is None or self.y is None or self.radius is None:
            return None
        return self.x * scale, (MIAS_PX - self.y) * scale, self.radius * scale


@dataclass(frozen=True)
class Film:
    id: str
    tissue: str
    lesions: tuple[Lesion, ...]  # abnormalities only; a NORM film has none

    @property
    def label(self) -> int:
        return int(bool(self.lesions))

    @property
    def pair(self) -> int:
        # mdb001+mdb002, mdb003+mdb004, ...: the two films of one woman.
        return (int(self.id[3:]) + 1) // 2

    @property
    def severity(self) -> str:
        found = {lesion.severity for lesion in self.lesions}
        return "M" if "M" in found else "B" if "B" in found else ""


_INFO_ROW = re.compile(
    r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})(?:\s+([BM]))?"
    r"(?:\s+(\d+)\s+(\d+)\s+(\d+))?(?:\s+\*NOTE 3\*)?\s*$"
)


def parse_info(content: str) -> list[Film]:
    """Films from mini-MIAS Info.txt: NORM rows, rows with and without coordinates
    (mdb059; *NOTE 3* = widely distributed calcifications), several rows per film."""
    rows: dict[str, list[Lesion]] = {}
    tissue: dict[str, str] = {}
    for line in content.splitlines():
        if not line.startswith("mdb"):
            continue
        match = _INFO_ROW.match(line)
        if (
            match is None
            or match[3] not in MIAS_CLASSES
            or (match[3] == "NORM") != (match[4] is None)
        ):
            raise ValueError(f"unexpected Info.txt row: {line!r}")
        ref, background, cls, severity, *xyr = match.groups()
        if tissue.setdefault(ref, background) != background:
            raise ValueError(f"{ref}: conflicting background tissue")
        rows.setdefault(ref, [])
        if cls != "NORM":
            x, y, r = (int(v) if v is not None else None for v in xyr)
            rows[ref].append(Lesion(cls=cls, severity=severity, x=x, y=y, radius=r))
    return [Film(id=ref, tissue=tissue[ref], lesions=tuple(rows[ref])) for ref in sorted(rows)]


@dataclass(frozen=True)
class _FilmSplit:
    train: list[Film]
    test: list[Film]
    sanity: list[Film]
    public_test: frozenset[str]


def _take_pairs(pairs: dict[int, list[Film]], *, salt: str, fraction: float) -> set[int]:
    """A seeded, stratified (by abnormal films per pair) share of the pairs."""
    chosen: set[int] = set()
    for stratum in (0, 1, 2):
        members = sorted(
            (p for p, films in pairs.items() if sum(f.label for f in films) == stratum),
            key=lambda p: _unit(p, salt),
        )
        chosen.update(members[: round(fraction * len(members))])
    return chosen


def _split_films(films: list[Film], *, seed: int) -> _FilmSplit:
    pairs: dict[int, list[Film]] = {}
    for film in films:
        pairs.setdefault(film.pair, []).append(film)
    test_pairs = _take_pairs(pairs, salt=f"{seed}:mias-test", fraction=0.3)
    train_pairs = {p: fs for p, fs in pairs.items() if p not in test_pairs}
    public_pairs = _take_pairs(
        {p: pairs[p] for p in test_pairs}, salt=f"{seed}:mias-split", fraction=0.5
    )
    ordered = sorted(train_pairs, key=lambda p: _unit(p, f"{seed}:mias-sanity"))
    abnormal = [p for p in ordered if any(f.label for f in train_pairs[p])]
    normal = [p for p in ordered if p not in abnormal]
    sanity_pairs = set(abnormal[:3] + normal[:2])
    train = [f for f in films if f.pair not in test_pairs]
    test = [f for f in films if f.pair in test_pairs]
    if {f.pair for f in train} & {f.pair for f in test}:
        raise RuntimeError("mammography split separates a left/right pair")
    return _FilmSplit(
        train=train,
        test=test,
        sanity=[f for f in train if f.pair in sanity_pairs],
        public_test=frozenset(f.id for f in test if f.pair in public_pairs),
    )


def _lesion_rows(films: Iterable[Film], scale: float) -> pd.DataFrame:
    """Located lesions only, in output pixels with the origin TOP-LEFT."""
    rows = [
        (f.id, *(_num(v) for v in xyr), les.cls, les.severity)
        for f in films
        for les in f.lesions
        if (xyr := les.top_left(scale)) is not None
    ]
    return pd.DataFrame(rows, columns=["id", "x", "y", "radius", "class", "severity"])


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


def _film_table(
    films: Sequence[Film], columns: Sequence[str], public: frozenset[str] = frozenset()
) -> pd.DataFrame:
    values: dict[str, Callable[[Film], object]] = {
        "id": lambda f: f.id,
        "label": lambda f: f.label,
        "tissue": lambda f: f.tissue,
        "severity": lambda f: f.severity,
        "n_lesions": lambda f: len(f.lesions),
        "abnormality": lambda f: ";".join(sorted({les.cls for les in f.lesions})) or "NORM",
        "split": lambda f: "public" if f.id in public else "private",
    }
    return pd.DataFrame([{c: values[c](f) for c in columns} for f in films], columns=list(columns))


def _save_images(
    films: Sequence[Film], folder: Path, load: Callable[[Film], Image.Image], size: int
) -> None:
    folder.mkdir(parents=True, exist_ok=True)

    def one(film: Film) -> None:
        image = load(film).convert("L")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        image.save(folder / f"{film.id}.png", format="PNG")

    # lzma and the PNG encoder release the GIL, so two threads use both cores.
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        list(pool.map(one, films))


def _write_image_set(root: Path, films: Sequence[Film], images_from: Path) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for film in films:
        shutil.copyfile(images_from / f"{film.id}.png", root / "images" / f"{film.id}.png")
    _write_csv(root / "manifest.csv", _film_table(films, ["id", "tissue"]))


def build_mammography_bundle(
    out_dir: Path,
    *,
    data_dir: Path | None,
    seed: int = DEFAULT_SEED,
    image_size: int = MIAS_PX,
    force: bool = False,
) -> BuiltBundle:
    """Screening bundle; `image_size` < 1024 writes smaller PNGs (for fast tests)."""
    if not 16 <= image_size <= MIAS_PX:
        raise ValueError("image_size must be between 16 and 1024")
    mias = _present(data_dir, MIAS_DIR / "Info.txt")
    mias = mias.parent if mias else None
    films = parse_info(mias.joinpath("Info.txt").read_text(encoding="latin-1")) if mias else None
    if mias and films:
        missing = [f.id for f in films if not (mias / "pgm_xz" / f"{f.id}.pgm.xz").is_file()]
        if missing:  # a half-present data set is an error, not a reason to go synthetic
            raise FileNotFoundError(f"{mias}/pgm_xz lacks {len(missing)} films, e.g. {missing[:3]}")
        sources = sorted(
            [
                mias / "Info.txt",
                mias / "Licence.txt",
                *(mias / "pgm_xz" / f"{f.id}.pgm.xz" for f in films),
            ]
        )
        inputs = {p.relative_to(mias).as_posix(): _sha256_file(p) for p in sources if p.is_file()}
    else:
        films, inputs = _synthetic_films(seed), {"synthetic": "synthetic"}
    size = image_size if mias else min(image_size, 256)
    key = _recipe_key(
        {"slug": "mammography-screening", "seed": seed, "size": size, "inputs": inputs}
    )
    load = (
        (lambda f: _load_pgm(mias / "pgm_xz" / f"{f.id}.pgm.xz"))
        if mias
        else _synthetic_film_image(seed)
    )

    def write(root: Path) -> tuple[int, int]:
        return _write_mammography(root, films, load=load, size=size, seed=seed, licence_dir=mias)

    return _build(
        out_dir,
        slug="mammography-screening",
        synthetic=mias is None,
        key=key,
        force=force,
        write=write,
    )


def _load_pgm(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(lzma.decompress(path.read_bytes())))
    image.load()
    return image


def _write_mammography(
    root: Path,
    films: list[Film],
    *,
    load: Callable[[Film], Image.Image],
    size: int,
    seed: int,
    licence_dir: Path | None,
) -> tuple[int, int]:
    split = _split_films(films, seed=seed)
    scale = size / MIAS_PX
    train_images = root / "public/train/images"
    _save_images(split.train, train_images, load, size)
    _save_images(split.test, root / "hidden/inputs/images", load, size)
    _write_csv(root / "hidden/inputs/manifest.csv", _film_table(split.test, ["id", "tissue"]))
    _write_image_set(root / "sanity/inputs", split.sanity, train_images)
    label_columns = ["id", "label", "tissue", "severity", "abnormality", "n_lesions"]
    _write_csv(root / "public/train/labels.csv", _film_table(split.train, label_columns))
    _write_csv(root / "public/lesions.csv", _lesion_rows(split.train, scale))
    _write_csv(
        root / "hidden/labels.csv",
        _film_table(split.test, ["id", "label", "split", "tissue"], split.public_test),
    )
    _write_csv(root / "hidden/lesions.csv", _lesion_rows(split.test, scale))
    _write_csv(root / "sanity/labels.csv", _film_table(split.sanity, ["id", "label"]))
    members = [(f"images/{f.id}.png", train_images / f"{f.id}.png") for f in split.train]
    public_files = ["public/train/labels.csv", "public/lesions.csv", "public/train_images.zip"]
    if licence_dir is not None and (licence_dir / "Licence.txt").is_file():
        shutil.copyfile(licence_dir / "Licence.txt", root / "public/MIAS_Licence.txt")
        members.append(("MIAS_Licence.txt", root / "public/MIAS_Licence.txt"))
        public_files.append("public/MIAS_Licence.txt")
    _write_zip(root / "public/train_images.zip", members)
    synthetic = licence_dir is None
    stats = {
        "n_train": len(split.train),
        "n_test": len(split.test),
        "size": size,
        "pos_train": sum(f.label for f in split.train),
        "pos_test": sum(f.label for f in split.test),
        "n_sanity": len(split.sanity),
        "pairs_train": len({f.pair for f in split.train}),
        "pairs_test": len({f.pair for f in split.test}),
    }
    _write_text(root / "README.md", _mammography_readme(stats, synthetic=synthetic))
    _write_text(root / "TERMS.md", _mammography_terms(synthetic=synthetic))
    meta = {
        "slug": "mammography-screening",
        "title": (SYNTHETIC_PREFIX if synthetic else "")
        + "Screening mammography: is this film suspicious?",
        "summary": "Score each mammogram for the presence of any abnormality (mini-MIAS).",
        "task": "binary",
    }
    _write_challenge_yaml(
        root,
        meta=meta,
        public_files=public_files,
        phase=_phase(secondary=["auprc", "sensitivity", "specificity"], seconds=900),
    )
    return len(split.train), len(split.test)


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
        return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="L")

    return render


# --------------------------------------------------------------------------- documents
# Markdown templates (string.Template: `$name` placeholders), filled from the built split.

MEDICATIONS = (
    "metformin repaglinide nateglinide chlorpropamide glimepiride acetohexamide glipizide "
    "glyburide tolbutamide pioglitazone rosiglitazone acarbose miglitol troglitazone tolazamide "
    "examide citoglipton insulin glyburide-metformin glipizide-metformin glimepiride-pioglitazone "
    "metformin-rosiglitazone metformin-pioglitazone"
).split()

_COLUMN_NOTES = dict(
    line.split(": ", 1)
    for line in """\
id: Encounter identifier (the source's `encounter_id`), unique per row.
race: Caucasian, AfricanAmerican, Hispanic, Asian, Other; empty = unknown.
gender: Female, Male, Unknown/Invalid.
age: Ten-year age band, e.g. `[70-80)`.
weight: Weight band in pounds; empty for about 97% of encounters.
admission_type_id: Coded admission type (table below).
discharge_disposition_id: Coded discharge destination (table below); deaths and hospice \
(11, 13, 14, 19, 20, 21) were removed.
admission_source_id: Coded admission source (table below).
time_in_hospital: Length of stay in days (1-14).
payer_code: Payer, e.g. MC (Medicare), HM, SP, BC; empty = unknown.
medical_specialty: Specialty of the admitting physician; empty = unknown.
num_lab_procedures: Number of lab tests during the encounter.
num_procedures: Number of procedures other than lab tests.
num_medications: Number of distinct generic drugs given during the encounter.
number_outpatient: Outpatient visits in the year before the encounter.
number_emergency: Emergency visits in the year before the encounter.
number_inpatient: Inpatient stays in the year before the encounter.
diag_1: Primary diagnosis, ICD-9 code (e.g. 428, 250.83, V57); empty = unknown.
diag_2: Secondary diagnosis, ICD-9 code; empty = unknown.
diag_3: Additional secondary diagnosis, ICD-9 code; empty = unknown.
number_diagnoses: Number of diagnoses entered.
max_glu_serum: Glucose serum test: >200, >300, Norm, or the text `None` (not measured).
A1Cresult: HbA1c test: >8, >7, Norm, or the text `None` (not measured).
change: `Ch` if any diabetic medication was changed, else `No`.
diabetesMed: `Yes` if any diabetic medication was prescribed.
label: 1 if readmitted within 30 days (source `readmitted == "<30"`), else 0.""".splitlines()
)
_MEDICATION_NOTE = "No / Steady / Up / Down: prescribed, and whether the dose changed."

_SYNTHETIC_BANNER = """\
> **SYNTHETIC DATA.** The real data set was not available when this bundle was built, so
> every row and image here was randomly generated by `challenges/demo_data.py`. It has the
> real layout and a planted signal, and means nothing clinically.

"""

_DICTIONARY = Template("""\
# Data dictionary: 30-day readmission

$banner`public/train.csv` has one row per hospital encounter: `id`, the features below and
`label`. The evaluation inputs (`/input/features.csv`) have the same columns without `label`.
Values are kept as in the source file, except that the source's missing-value code `?` is
written as an **empty cell**. `max_glu_serum` and `A1Cresult` use the text `None` for "not
measured" (read with `keep_default_na=False` in pandas to keep it). `patient_nbr`,
`encounter_id` (now `id`) and `readmitted` (now `label`) are not features.

$columns$codes
## Provenance

$provenance
""")

_READMISSION_SOURCE = """\
UCI Machine Learning Repository, *Diabetes 130-US hospitals for years 1999-2008* (id 296):
101,766 inpatient encounters of diabetic patients at 130 US hospitals, licensed CC BY 4.0.
Cite: Strack B, DeShazo JP, Gennings C, Olmo JL, Ventura S, Cios KJ, Clore JN. Impact of HbA1c
Measurement on Hospital Readmission Rates: Analysis of 70,000 Clinical Database Patient
Records. BioMed Research International 2014:781670. doi:10.1155/2014/781670. Dataset:
doi:10.24432/C5230J. The data are public, so hidden labels could be looked up: this demo
leaderboard runs on trust."""

_SYNTHETIC_READMISSION_SOURCE = """\
Synthetic, shaped like the UCI *Diabetes 130-US hospitals* data (Strack et al. 2014,
CC BY 4.0); no real patient is represented."""

_CONTRACT_OUTPUT = """\
Write `/output/predictions.csv` with header `id,score`: one row per input id, `score` the
probability of the positive class (0..1); an optional `label` column (0/1) overrides the
default `score >= 0.5`. Exit 0 when done. `HELDOUT_INPUT=/input`, `HELDOUT_OUTPUT=/output`
and `HELDOUT_TASK=binary` are set. There is no network."""

_PHASE = Template("""\
## Phase and scoring

- One phase, *Leaderboard round*: $opens to $closes.
- Submit a code bundle (a zip with `predict.py` at its root, run as `python predict.py` in the
  platform runtime image) or a Docker image archive.
- Limits per run: 1 CPU, 2048 MB memory, $seconds s, no network. Quota: 5 runs a day, 100 in
  total, 2 at a time; failed runs do not count.
- Metrics: $metrics.
- Scores appear live on the public leaderboard (half of the held-out cases, `split = public`);
  the other half forms the private leaderboard. Ties are called with a paired bootstrap.
- Each submission first runs on a small public sanity set (`sanity/`, a slice of the training
  data) whose logs you see in full; logs of the run on hidden data are not shown.
""")


_READMISSION_README = Template("""\
# ${prefix}Predict 30-day readmission

${banner}Given one hospital encounter of a patient with diabetes, predict whether the patient
is readmitted within 30 days of discharge (`readmitted == "<30"` in the source). Encounters
that ended in death or hospice (discharge codes 11, 13, 14, 19, 20, 21) are excluded: they
cannot be followed by a readmission.

## Data

- `public/train.csv`: $n_train encounters of $patients_train patients, $pos_train positive
  ($rate). Columns: see `public/data_dictionary.md`.
- Held out: $n_test encounters of $patients_test other patients$cap, $pos_test positive.
  Train and held-out sets share no patient (the split is by patient); one patient can have
  several encounters.
- Results are broken down by sex, age band and race for every scored run.

## Container contract

`/input/features.csv` (read-only) holds the held-out encounters: `id` first, then the same
feature columns as `train.csv`, without `label`.
$output

```python
import os, pandas as pd
X = pd.read_csv(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"),
                dtype=str, keep_default_na=False)
score = X["number_inpatient"].astype(int).clip(0, 5) / 5
out = os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv")
pd.DataFrame({"id": X["id"], "score": score}).to_csv(out, index=False)
```

$phase
## Data provenance

$source
""")

_READMISSION_TERMS = """\
# Data-use terms

1. Use the data for research and education on this challenge.
2. Do not attempt to re-identify any patient or hospital, or link the records to other data
   for that purpose.
3. Attribute the source in any publication: the UCI Diabetes 130-US hospitals data set
   (CC BY 4.0) and Strack et al., BioMed Research International 2014,
   doi:10.1155/2014/781670.
4. Do not try to obtain the held-out labels from any other source.
"""

_SYNTHETIC_TERMS = """\
# Data-use terms

The data in this challenge are synthetic. Use them for any purpose; do not present results
on them as clinical findings.
"""

_MIAS_SOURCE = """\
The mini-MIAS database (Mammographic Image Analysis Society MiniMammographic Database, 1995
PEIPA release): 322 digitised mammograms at 200 micron pixels, 1024 x 1024. Cite: J Suckling
et al. (1994) "The Mammographic Image Analysis Society Digital Mammogram Database", Exerpta
Medica, International Congress Series 1069, pp. 375-378.

**Licence: research use only.** Copyright MIAS (UK). MIAS grants the right to use the database
for research purposes only; it may not be rented, leased or sold, and any publication using it
must reference it. The licence text is included as `public/MIAS_Licence.txt` (also inside the
zip). The database is public, so hidden labels could be looked up: this demo leaderboard runs
on trust."""

_SYNTHETIC_MIAS_SOURCE = """\
Synthetic films (noise with bright blobs as "lesions"), laid out like mini-MIAS (Suckling et
al. 1994); no real image is included."""

_MAMMOGRAPHY_README = Template("""\
# ${prefix}Screening mammography: is this film suspicious?

${banner}Score each mammogram for the presence of **any** abnormality (mass, calcification,
architectural distortion or asymmetry, benign or malignant): label 1 when the film's ground
truth lists an abnormality, 0 for a normal film. This is the screening question "should a
radiologist look again?", not a malignancy diagnosis.

## Data

- `public/train_images.zip` (also unpacked under `public/train/images/`): $n_train grayscale
  PNG films, $size x $size pixels, $pos_train abnormal.
- `public/train/labels.csv`: `id,label,tissue,severity,abnormality,n_lesions`; tissue F fatty /
  G fatty-glandular / D dense-glandular; severity of the worst finding (B or M); abnormality
  classes CALC, CIRC, SPIC, MISC, ARCH, ASYM (or NORM).
- `public/lesions.csv`: `id,x,y,radius,class,severity`, centre and radius of each located
  abnormality in pixels of the $size-pixel PNG, **origin top-left** (the original table counts
  y from the bottom; it was converted). Findings the source gives no location for (such as
  widely distributed calcifications) are not in this file.
- Held out: $n_test films ($pos_test abnormal). Films come in left/right pairs of one woman;
  the split keeps both films of a woman together ($pairs_train women in training,
  $pairs_test held out).

## Container contract

`/input/images/<id>.png` (read-only) holds the held-out films and `/input/manifest.csv` lists
them as `id,tissue`.
$output
Optionally also write `/output/detections.csv` with `id,x,y,score` (pixel coordinates, origin
top-left); it is kept for a later localisation metric and not scored in this phase.

$phase
## Data provenance and licence

$source
""")

_MAMMOGRAPHY_TERMS = """\
# Data-use terms

1. **Research use only.** The mini-MIAS images are licensed by the Mammographic Image Analysis
   Society for research purposes only (see `public/MIAS_Licence.txt`): no commercial use, and
   you may not rent, lease or sell the database.
2. Reference the database in any publication: J Suckling et al. (1994), Exerpta Medica,
   International Congress Series 1069, pp. 375-378.
3. Do not attempt to re-identify anyone, and do not try to obtain the held-out labels from the
   original database or any other source.
"""


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _readmission_dictionary(
    train: pd.DataFrame, *, id_tables: dict[str, list[tuple[str, str]]], synthetic: bool
) -> str:
    rows = []
    for column in train.columns:
        values = train[column]
        note = _COLUMN_NOTES.get(column, _MEDICATION_NOTE if column in MEDICATIONS else "")
        common = values[values != ""].value_counts().index[:4] if column != "id" else []
        rows.append(
            (
                f"`{column}`",
                note,
                values.nunique(),
                f"{(values == '').mean():.1%}",
                ", ".join(f"`{v}`" for v in common),
            )
        )
    codes = "".join(
        f"\n## Codes of `{name}`\n\n" + _md_table([name, "description"], table)
        for name, table in id_tables.items()
    )
    return _DICTIONARY.substitute(
        banner=_SYNTHETIC_BANNER if synthetic else "",
        codes=codes,
        columns=_md_table(["column", "meaning", "distinct", "empty", "most common"], rows),
        provenance=_SYNTHETIC_READMISSION_SOURCE if synthetic else _READMISSION_SOURCE,
    )


def _phase_text(metrics: str, seconds: int) -> str:
    return _PHASE.substitute(opens=OPENS, closes=CLOSES, seconds=seconds, metrics=metrics)


def _readmission_readme(stats: dict[str, Any], *, synthetic: bool) -> str:
    cap = f" (subsampled to at most {stats['n_test_cap']:,})" if stats["n_test_cap"] else ""
    counts = {k: f"{v:,}" for k, v in stats.items() if isinstance(v, int)}
    return _READMISSION_README.substitute(
        counts,
        prefix=SYNTHETIC_PREFIX if synthetic else "",
        cap=cap,
        banner=_SYNTHETIC_BANNER if synthetic else "",
        output=_CONTRACT_OUTPUT,
        rate=f"{stats['pos_train'] / max(stats['n_train'], 1):.1%}",
        phase=_phase_text("AUROC (primary); AUPRC, F1 and Brier score (secondary)", 600),
        source=_SYNTHETIC_READMISSION_SOURCE if synthetic else _READMISSION_SOURCE,
    )


def _readmission_terms(*, synthetic: bool) -> str:
    return _SYNTHETIC_TERMS if synthetic else _READMISSION_TERMS


def _mammography_readme(stats: dict[str, Any], *, synthetic: bool) -> str:
    return _MAMMOGRAPHY_README.substitute(
        stats,
        prefix=SYNTHETIC_PREFIX if synthetic else "",
        banner=_SYNTHETIC_BANNER if synthetic else "",
        output=_CONTRACT_OUTPUT,
        phase=_phase_text("AUROC (primary); AUPRC, sensitivity and specificity (secondary)", 900),
        source=_SYNTHETIC_MIAS_SOURCE if synthetic else _MIAS_SOURCE,
    )


def _mammography_terms(*, synthetic: bool) -> str:
    return _SYNTHETIC_TERMS if synthetic else _MAMMOGRAPHY_TERMS


# --------------------------------------------------------------------------- both + CLI


def build_demo_bundles(
    out_root: Path, *, data_dir: Path | None, force: bool = False
) -> list[BuiltBundle]:
    out_root = Path(out_root)
    return [
        build_readmission_bundle(out_root / "readmission-30d", data_dir=data_dir, force=force),
        build_mammography_bundle(
            out_root / "mammography-screening", data_dir=data_dir, force=force
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m challenges.demo_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "out_root", type=Path, help="folder that receives one bundle folder per challenge"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="shared data folder (default: $HELDOUT_DATA_DIR or ../shared/data)",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="ignore real data, build stand-ins"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    data_dir = None if args.synthetic else (args.data_dir or default_data_dir())
    print(f"data: {data_dir or 'none (synthetic stand-ins)'}", flush=True)
    builders: list[Callable[[], BuiltBundle]] = [
        lambda: build_readmission_bundle(
            args.out_root / "readmission-30d", data_dir=data_dir, force=args.force
        ),
        lambda: build_mammography_bundle(
            args.out_root / "mammography-screening", data_dir=data_dir, force=args.force
        ),
    ]
    for build in builders:
        started = time.perf_counter()
        bundle = build()
        kind = "SYNTHETIC" if bundle.synthetic else "real"
        print(
            f"{bundle.slug}: {kind} data, {bundle.n_train} train / {bundle.n_test} test "
            f"-> {bundle.path} ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
