"""Fixtures for the Docker backend tests: a real engine, the runtime image, staged inputs.

No engine means FAILED tests, never skipped ones (DESIGN.md: no test may pass by pretending
a container ran).
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from heldout_kernel.runtime_image import ensure_runtime_image
from heldout_kernel.sandbox.base import Limits, RunResult, RunSpec
from heldout_kernel.sandbox.docker import DockerBackend

HOSTILE = Path(__file__).parent / "hostile"
EXAMPLES = Path(__file__).resolve().parents[2] / "docker" / "examples"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DIABETES = SHARED_DATA / "diabetes_130_us_hospitals" / "diabetic_data.csv.gz"
MINI_MIAS = SHARED_DATA / "mini_mias"
SESSION_PREFIX = f"heldout-test-{uuid.uuid4().hex[:8]}-"
SMALL = Limits(
    cpus=1.0, memory_mb=256, seconds=15, pids=64, output_mb=16, tmp_mb=16, log_bytes=4096
)


def docker_cli(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=300
    ).stdout


def readable(root: Path) -> Path:
    """The container runs as uid 65534: pytest's 0700 temp folders must be opened up."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def leftovers(run_name: str) -> list[str]:
    containers = docker_cli("ps", "-a", "--filter", f"name={run_name}", "--format", "{{.Names}}")
    volumes = docker_cli("volume", "ls", "--filter", f"name={run_name}", "--format", "{{.Name}}")
    return (containers + volumes).split()


@pytest.fixture(scope="session")
def engine() -> None:
    try:
        docker_cli("info", "--format", "{{.ServerVersion}}")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"these tests need a running Docker engine: {exc}")


@pytest.fixture(scope="session")
def runtime_image(engine: None) -> str:
    return ensure_runtime_image()


@pytest.fixture(scope="session")
def backend(runtime_image: str) -> Iterator[DockerBackend]:
    backend = DockerBackend()
    yield backend
    backend.remove_orphans(prefix=SESSION_PREFIX)


@pytest.fixture(scope="session")
def sandbox_runtime(backend: DockerBackend) -> str:
    """What the default runtime (HELDOUT_SANDBOX_RUNTIME, else auto) resolved to here."""
    return backend.runtime()


@pytest.fixture
def run_name(request: pytest.FixtureRequest) -> str:
    return f"{SESSION_PREFIX}{request.node.name[:40].replace('[', '-').strip(']')}"


@pytest.fixture(scope="session")
def readmission_frame() -> pd.DataFrame:
    """Real encounters (id, features, label) from the UCI diabetes data; synthetic if absent."""
    if not DIABETES.exists():
        rng = np.random.default_rng(0)
        n = 3000
        return pd.DataFrame(  # SYNTHETIC stand-in: the shared data folder is missing
            {
                "id": np.arange(n).astype(str),
                "time_in_hospital": rng.integers(1, 14, n),
                "num_medications": rng.integers(1, 60, n),
                "gender": rng.choice(["Female", "Male"], n),
                "label": rng.integers(0, 2, n),
            }
        )
    raw = pd.read_csv(DIABETES, nrows=6000, low_memory=False).replace("?", "")
    frame = raw.drop(columns=["encounter_id", "patient_nbr", "readmitted"])
    frame.insert(0, "id", raw["encounter_id"].astype(str))
    frame["label"] = (raw["readmitted"] == "<30").astype(int)
    return frame


@pytest.fixture(scope="session")
def input_dir(tmp_path_factory: pytest.TempPathFactory, readmission_frame: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("input")
    test_rows = readmission_frame.iloc[-500:].drop(columns=["label"])
    test_rows.to_csv(folder / "features.csv", index=False)
    return readable(folder)


@dataclass(frozen=True)
class Outcome:
    result: RunResult
    output_dir: Path

    def report(self) -> dict[str, object]:
        import json

        return dict(json.loads((self.output_dir / "report.json").read_text()))


@pytest.fixture
def run_model(
    backend: DockerBackend, input_dir: Path, run_name: str, tmp_path: Path
) -> Callable[..., Outcome]:
    """Run tests/backends/hostile/<script>.py as a bundle's predict.py; check cleanup."""

    def run(
        script: str,
        limits: Limits = SMALL,
        env: dict[str, str] | None = None,
        inputs: Path = input_dir,
    ) -> Outcome:
        submission = tmp_path / "submission"
        submission.mkdir()
        shutil.copyfile(HOSTILE / f"{script}.py", submission / "predict.py")
        readable(tmp_path)
        spec = RunSpec(
            name=run_name,
            image=backend_image(),
            input_dir=inputs,
            output_dir=tmp_path / "output",
            limits=limits,
            env=env or {"HELDOUT_TASK": "binary"},
            command=("python", "predict.py"),
            submission_dir=submission,
        )
        result = backend.run(spec)
        backend.wait_for_cleanup()  # finished runs are removed off the critical path
        assert leftovers(run_name) == [], "the run left a container or volume behind"
        return Outcome(result, tmp_path / "output")

    return run


def backend_image() -> str:
    from heldout_kernel.runtime_image import runtime_image_tag

    return runtime_image_tag()


@pytest.fixture(scope="session")
def mammography_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train_dir, test input_dir) of small PNGs from real mini-MIAS films."""
    root = tmp_path_factory.mktemp("mammography")
    films = _mias_films()
    normal = [f for f, label in films if label == 0]
    abnormal = [f for f, label in films if label == 1]
    train = normal[:14] + abnormal[:14]
    test = normal[14:19] + abnormal[14:19]
    labels = dict(films)
    for folder, chosen in ((root / "train", train), (root / "test", test)):
        (folder / "images").mkdir(parents=True)
        for film in chosen:
            _film_png(film, folder / "images" / f"{film}.png")
    pd.DataFrame({"id": train, "label": [labels[f] for f in train]}).to_csv(
        root / "train" / "labels.csv", index=False
    )
    pd.DataFrame({"id": test, "tissue": "F"}).to_csv(root / "test" / "manifest.csv", index=False)
    readable(root)
    return root / "train", root / "test"


def _mias_films() -> list[tuple[str, int]]:
    if not MINI_MIAS.exists():
        return [(f"syn{i:03d}", i % 2) for i in range(40)]  # SYNTHETIC stand-in films
    films: dict[str, int] = {}
    for line in (MINI_MIAS / "Info.txt").read_text().splitlines():
        parts = line.split()
        if parts and parts[0].startswith("mdb") and len(parts) >= 3:
            films[parts[0]] = max(films.get(parts[0], 0), int(parts[2] != "NORM"))
    return sorted(films.items())


def _film_png(film: str, target: Path) -> None:
    source = MINI_MIAS / "pgm_xz" / f"{film}.pgm.xz"
    if source.exists():
        import io

        image = Image.open(io.BytesIO(lzma.decompress(source.read_bytes())))
    else:
        rng = np.random.default_rng(int(film[3:]))
        image = Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8))
    image.convert("L").resize((128, 128)).save(target)
