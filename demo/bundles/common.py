"""Constants, the result type and the small deterministic helpers every demo recipe shares.

Everything a recipe writes goes through the writers here (UTF-8 text, CSV with "\\n" line
ends, stored zips with fixed timestamps), which is what makes a build byte-reproducible; the
`challenge.yaml` skeleton and its phases are also built here so that both challenges
describe their phases the same way. `_unit` replaces random draws wherever a split
must stay stable when the input grows or is reordered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

logger = logging.getLogger(__name__)

# 2: the mammography bundle gained its detection phase and sanity/lesions.csv.
RECIPE_VERSION = "2"
DEFAULT_SEED = 20261123
STAMP_NAME = ".built"
SYNTHETIC_PREFIX = "[SYNTHETIC] "
OPENS, CLOSES = "2026-01-01T00:00:00Z", "2027-12-31T23:59:59Z"


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
    # parents: bundles/, demo/, <repo>/, then the folder that holds the repository.
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    return shared if shared.is_dir() else None


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
    *, secondary: list[str], seconds: int, labels: str = "hidden/labels.csv",
    release: Any = "exact", slug: str = "leaderboard", title: str = "Leaderboard round",
    primary: str = "auroc", task: str | None = None, lesions: bool = False,
) -> dict[str, Any]:
    """One phase of challenge.yaml. `task` is written only when it is given: a phase without
    it has the challenge's task, so the single-task bundles keep their historical output.
    `lesions` adds `lesions.csv` next to the labels of both lanes (detection phases)."""
    evaluation = {"inputs": "hidden/inputs", "labels": labels}
    sanity = {"inputs": "sanity/inputs", "labels": "sanity/labels.csv"}
    if lesions:
        evaluation["lesions"] = str(Path(labels).parent / "lesions.csv")
        sanity["lesions"] = "sanity/lesions.csv"
    return {
        "slug": slug,
        "title": title,
        **({"task": task} if task is not None else {}),
        "opens": OPENS,
        "closes": CLOSES,
        "submission_kinds": ["bundle", "image"],
        "quota": {"per_day": 5, "total": 100, "concurrent": 2, "count_failed": False},
        "metrics": {"primary": primary, "secondary": secondary},
        "evaluation": evaluation,
        "sanity": sanity,
        "limits": {"cpus": 1, "memory_mb": 2048, "seconds": seconds},
        "scores": "live",
        "score_release": release,
        "show_logs": False,
    }


def _write_challenge_yaml(
    root: Path, *, meta: dict[str, str], public_files: list[str], phases: list[dict[str, Any]]
) -> None:
    document = {
        **meta,
        "description": "README.md",
        "terms": "TERMS.md",
        "max_team_size": 5,
        "visibility": "public",
        "public_files": public_files,
        "phases": phases,
    }
    _write_text(root / "challenge.yaml", yaml.safe_dump(document, sort_keys=False, width=100))


def _present(data_dir: Path | None, relative: Path) -> Path | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / relative
    if not path.exists():
        logger.warning("%s not found: using synthetic stand-in data", path)
        return None
    return path
