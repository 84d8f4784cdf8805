"""Fixtures for data station tests: a fake platform in a thread, a small synthetic dataset
(SYNTHETIC: 40 cases, not patient data), bundles and job offers.

Container tests use the real Docker engine; without one they fail, never skip.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The engine helpers and the runtime-image fixture are the backend tests' own.
from tests.backends.conftest import docker_cli, engine, leftovers, runtime_image  # noqa: F401
from tests.station.fake_platform import FakePlatform, serve

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".venv" / "bin" / "heldout-station"
TOKEN = "st-token-6c1f0e9b2d"
SECRET = "q7zk"  # in every id, so an id cannot turn up in base64 text by chance
N_CASES = 40
RESAMPLES = 50
PHASE_SEED = 12
CHALLENGE = "chest-xray"

AGE_MODEL = """
import csv, os
rows = list(csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"))))
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for n, row in enumerate(rows):
        out.write(f"{row['id']},{(int(row['age']) % 90) / 100 + 0.0001234 + n * 1e-6:.9f}\\n")
"""


@dataclass(frozen=True)
class Hidden:
    """The synthetic dataset as the test knows it (what must never leave the station)."""

    root: Path
    ids: list[str]
    labels: dict[str, int]
    split: dict[str, str]




@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform(token=TOKEN)
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def hidden(tmp_path: Path) -> Hidden:
    """DIR/north: features.csv (id, age), labels with a split and a sex subgroup."""
    root = tmp_path / "data"
    ids = [f"pt_{SECRET}_{n:03d}" for n in range(N_CASES)]
    ages = [20 + (n * 37) % 70 for n in range(N_CASES)]
    labels = {i: int((age > 55) != (n % 5 == 0))
              for n, (i, age) in enumerate(zip(ids, ages, strict=True))}
    split = {i: "public" if n % 2 else "private" for n, i in enumerate(ids)}
    _write_csv(root / "north" / "inputs" / "features.csv", ["id", "age"],
               [[i, age] for i, age in zip(ids, ages, strict=True)])
    _write_csv(root / "north" / "labels.csv", ["id", "label", "split", "sex"],
               [[i, labels[i], split[i], "F" if n % 3 else "M"] for n, i in enumerate(ids)])
    (root / ".snapshots" / "old").mkdir(parents=True)  # hidden: not a dataset
    for path in [root, *root.rglob("*")]:  # the sandbox runs as uid 65534
        path.chmod(0o755 if path.is_dir() else 0o644)
    return Hidden(root, ids, labels, split)


def bundle(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("predict.py", source)
    return buffer.getvalue()


@pytest.fixture
def offer(platform: FakePlatform) -> Callable[..., dict[str, Any]]:
    """Queue a job for `artefact` on dataset north; keyword arguments change the job."""

    def _offer(artefact: bytes, *, job: int = 17, seconds: int = 30,
               sha256: str | None = None, dataset: str = "north",
               lease_seconds: int = 60, challenge: str = CHALLENGE,
               container_name: str | None = None) -> dict[str, Any]:
        offered = {
            "job": job, "claim": 2, "lease_seconds": lease_seconds, "dataset": dataset,
            "challenge": challenge,
            "container_name": container_name or platform.container_name(job, 2),
            "submission": {
                "uid": f"sub-{uuid.uuid4().hex[:12]}", "kind": "bundle",
                "sha256": sha256 or hashlib.sha256(artefact).hexdigest(),
                "size": len(artefact), "artefact": f"/api/v1/station/jobs/{job}/artefact?claim=2",
            },
            "phase": {
                "task": "binary", "metrics": ["auroc", "auprc"], "primary": "auroc",
                "bootstrap_resamples": RESAMPLES, "seed": PHASE_SEED,
                "limits": {"cpus": 1.0, "memory_mb": 256, "seconds": seconds},
                "small_cells": {"min_cases": 5, "min_positives": 2},
            },
        }
        platform.offer(offered, artefact)
        return offered

    return _offer


@pytest.fixture
def station_args(platform: FakePlatform, hidden: Hidden, tmp_path: Path) -> list[str]:
    return ["--url", platform.url, "--data", str(hidden.root), "--state",
            str(tmp_path / "state"), "--work", str(tmp_path / "work"), "--once",
            "--allow", CHALLENGE]


def failure_body(error_class: str, claim: int = 2) -> dict[str, Any]:
    """All a station may post for a failed job."""
    return {"claim": claim, "error_class": error_class}


def clean_env() -> dict[str, str]:
    """The environment of a station host: no Django settings, no database."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL",
                        "HELDOUT_CACHE_URL", "PYTHONPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


PYTHON = sys.executable
