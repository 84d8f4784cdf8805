"""A tiny, clearly synthetic challenge bundle for importer tests (not real patient data)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def phase_spec(**overrides: Any) -> dict[str, Any]:
    spec = {
        "slug": "leaderboard", "title": "Leaderboard round",
        "opens": "2026-01-01T00:00:00Z", "closes": "2030-01-01T00:00:00Z",
        "submission_kinds": ["bundle", "image"],
        "quota": {"per_day": 5, "total": 100, "concurrent": 2, "count_failed": False},
        "metrics": {"primary": "auroc", "secondary": ["auprc", "f1", "brier"]},
        "evaluation": {"inputs": "hidden/inputs", "labels": "hidden/labels.csv"},
        "sanity": {"inputs": "sanity/inputs", "labels": "sanity/labels.csv"},
        "limits": {"cpus": 1, "memory_mb": 512, "seconds": 60},
        "scores": "live", "show_logs": False,
    }
    spec.update(overrides)
    return spec


def write_bundle(root: Path, *, n_cases: int = 40, **overrides: Any) -> Path:
    """Write a valid synthetic bundle; `overrides` replace top-level challenge.yaml keys."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("# Synthetic test challenge\nNot real data.\n")
    (root / "TERMS.md").write_text("Test terms.\n")
    _write_csv(root / "public/train.csv", ["id", "age", "label"],
               [[f"t{i}", 40 + i % 30, i % 2] for i in range(20)])
    ids = [f"c{i:03d}" for i in range(n_cases)]
    _write_csv(root / "hidden/inputs/features.csv", ["id", "age"],
               [[case, 30 + n % 50] for n, case in enumerate(ids)])
    _write_csv(root / "hidden/labels.csv", ["id", "label", "split", "sex"],
               [[case, n % 3 == 0, "public" if n % 2 else "private", "F" if n % 4 else "M"]
                for n, case in enumerate(ids)])
    # csv writes booleans as True/False; the contract wants 0/1
    text = (root / "hidden/labels.csv").read_text().replace("True", "1").replace("False", "0")
    (root / "hidden/labels.csv").write_text(text)
    sanity = [f"s{i}" for i in range(10)]
    _write_csv(root / "sanity/inputs/features.csv", ["id", "age"], [[s, 50] for s in sanity])
    _write_csv(root / "sanity/labels.csv", ["id", "label"],
               [[s, i % 2] for i, s in enumerate(sanity)])
    document = {
        "slug": "synthetic-test", "title": "[SYNTHETIC] Test challenge", "summary": "For tests.",
        "task": "binary", "description": "README.md", "terms": "TERMS.md", "max_team_size": 3,
        "public_files": ["public/train.csv"], "phases": [phase_spec()],
    }
    document.update(overrides)
    (root / "challenge.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return root


# --- detection --------------------------------------------------------------------------

FILM_PX = 48  # small synthetic films: grey noise, bright disks as "lesions"


def _film(path: Path, disks: list[tuple[int, int, int, int]], seed: int) -> None:
    """A FILM_PX square PNG of noise in 0..40 with disks (x, y, radius, brightness)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 41, (FILM_PX, FILM_PX)).astype(np.uint8)
    rows, cols = np.mgrid[0:FILM_PX, 0:FILM_PX]
    for x, y, radius, brightness in disks:
        pixels[(cols - x) ** 2 + (rows - y) ** 2 <= radius**2] = brightness
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)  # uint8, 2-D: greyscale


def _detection_set(root: Path, prefix: str, n_films: int, *, split: bool) -> None:
    """Films `<prefix>NNN`: every third normal, the others with one or two lesions; some
    lesions are faint (as dim as the noise), so a brightest-pixel model misses them."""
    labels, lesions, manifest = [], [], []
    for n in range(n_films):
        ident = f"{prefix}{n:03d}"
        disks = [] if n % 3 == 0 else [(10 + n % 20, 12 + (3 * n) % 20, 3 + n % 3,
                                         40 if n % 5 == 0 else 120 + 4 * n % 130)]
        if n % 7 == 1:
            disks.append((36, 36, 4, 90 + n % 60))
        _film(root / "inputs" / "images" / f"{ident}.png", disks, seed=n)
        manifest.append([ident, "A" if n % 2 else "B"])
        row = [ident, int(bool(disks))]
        labels.append(row + (["public" if n % 2 else "private"] if split else []) +
                      ["dense" if n % 4 < 2 else "fatty"])
        lesions += [[ident, x, y, r, "small" if r < 5 else "large"] for x, y, r, _ in disks]
    _write_csv(root / "inputs" / "manifest.csv", ["id", "view"], manifest)
    _write_csv(root / "labels.csv", ["id", "label", *(["split"] if split else []), "density"],
               labels)
    _write_csv(root / "lesions.csv", ["id", "x", "y", "radius", "size"], lesions)


def detection_phase_spec(**overrides: Any) -> dict[str, Any]:
    spec = phase_spec(
        slug="detection", title="Lesion detection", task="detection",
        metrics={"primary": "froc", "secondary": ["auroc", "auprc"]},
        evaluation={"inputs": "hidden/inputs", "labels": "hidden/labels.csv",
                    "lesions": "hidden/lesions.csv"},
        sanity={"inputs": "sanity/inputs", "labels": "sanity/labels.csv",
                "lesions": "sanity/lesions.csv"},
        bootstrap_resamples=200,
    )
    spec.update(overrides)
    return spec


def write_detection_bundle(root: Path, *, n_films: int = 36, **overrides: Any) -> Path:
    """A valid synthetic detection bundle (task: detection): hidden films `f000...` with a
    public/private split, sanity films `s000...`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("# Synthetic detection challenge\nNot real data.\n")
    (root / "TERMS.md").write_text("Test terms.\n")
    _detection_set(root / "hidden", "f", n_films, split=True)
    _detection_set(root / "sanity", "s", 6, split=False)
    document = {
        "slug": "synthetic-detection", "title": "[SYNTHETIC] Detection test",
        "summary": "For tests.", "task": "detection", "description": "README.md",
        "terms": "TERMS.md", "max_team_size": 3, "phases": [detection_phase_spec()],
    }
    document.update(overrides)
    (root / "challenge.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return root


# --- data stations ----------------------------------------------------------------------


def write_station_data(root: Path, name: str, ids: list[str], *, seed: int) -> Path:
    """A station's dataset folder `root/name`: inputs/features.csv (id, age) and labels.csv
    (id, label, split, sex), synthetic. Returns the dataset folder."""
    import random

    rng = random.Random(seed)
    folder = root / name
    rows = [(case, 20 + rng.randrange(70), int(rng.random() < 0.4)) for case in ids]
    _write_csv(folder / "inputs" / "features.csv", ["id", "age"],
               [[case, age] for case, age, _ in rows])
    _write_csv(folder / "labels.csv", ["id", "label", "split", "sex"],
               [[case, label, "public" if n % 2 else "private", "F" if n % 3 else "M"]
                for n, (case, _, label) in enumerate(rows)])
    return folder


def write_station_bundle(root: Path, sources: list[dict[str, str]], **phase: Any) -> Path:
    """A bundle whose hidden cases are at data stations (`sources`), with a central public
    sanity set."""
    bundle = write_bundle(root)
    evaluation = sources[0] if len(sources) == 1 else {"stations": sources}
    document = yaml.safe_load((bundle / "challenge.yaml").read_text())
    document["slug"] = "station-test"
    document["phases"] = [phase_spec(evaluation=evaluation, bootstrap_resamples=200,
                                     metrics={"primary": "auroc",
                                              "secondary": ["auprc", "f1", "brier"]},
                                     **phase)]
    (bundle / "challenge.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return bundle
