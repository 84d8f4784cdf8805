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
