"""The example models of docker/examples, built from a challenge bundle's public data.

Used by the demo (baselines and team entries), the tests and the benchmarks. Builds are
cached next to the bundle, keyed by the bundle's stamp and the example's source, so a
repeated demo start or test session does not refit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import zipfile
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "docker" / "examples"


def example_module(name: str) -> ModuleType:
    """The `build.py` of example `name`, imported.

    docker/examples is not a package (a top-level `docker` package would shadow the SDK).
    """
    path = EXAMPLES / name / "build.py"
    spec = importlib.util.spec_from_file_location(f"heldout_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cache_key(bundle: Path, example: str) -> str:
    digest = hashlib.sha256()
    stamp = bundle / ".built"
    digest.update(stamp.read_bytes() if stamp.exists() else str(bundle.resolve()).encode())
    for source in sorted((EXAMPLES / example).glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def readmission_bundle(bundle: Path, out_dir: Path) -> Path:
    """The logistic-regression bundle fitted on `bundle`/public/train.csv."""
    target = out_dir / f"readmission_logreg-{_cache_key(bundle, 'readmission_logreg')}.zip"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        example_module("readmission_logreg").build_bundle(bundle / "public" / "train.csv", target)
    return target


def _train_dir(bundle: Path, work: Path) -> Path:
    """public/train with images/ and labels.csv (images come from train_images.zip)."""
    train = bundle / "public" / "train"
    if (train / "images").is_dir():
        return train
    work.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle / "public" / "train_images.zip") as archive:
        archive.extractall(work)
    (work / "labels.csv").write_bytes((train / "labels.csv").read_bytes())
    return work


def mammography_model(bundle: Path, out_dir: Path, *, kind: str) -> Path:
    """The intensity model as a `bundle` zip or an `image` archive (gzipped docker save)."""
    key = _cache_key(bundle, "mammography_intensity")
    suffix = "zip" if kind == "bundle" else "tar.gz"
    target = out_dir / f"mammography_intensity-{key}.{suffix}"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    module = example_module("mammography_intensity")
    train = _train_dir(bundle, out_dir / f"train-{key}")
    if kind == "bundle":
        return module.build_bundle(train, target)  # type: ignore[no-any-return]
    return module.build_image(train, target, compress=True)  # type: ignore[no-any-return]


def _detection_train_dir(bundle: Path, work: Path) -> Path:
    """images/ (from the public zip), labels.csv and lesions.csv, readable by uid 65534.

    The fit runs in a container as nobody, so every folder on the way and every file must be
    world-readable (pytest's temp folders are 0700: callers open those up themselves).
    """
    if not (work / "lesions.csv").is_file():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with zipfile.ZipFile(bundle / "public" / "train_images.zip") as archive:
            archive.extractall(work)
        shutil.copyfile(bundle / "public" / "train" / "labels.csv", work / "labels.csv")
        shutil.copyfile(bundle / "public" / "lesions.csv", work / "lesions.csv")
    for path in [work, *work.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return work


def mammography_detector(bundle: Path, out_dir: Path, *, variant: str = "model") -> Path:
    """The lesion-detection example (docker/examples/mammography_blobs) as a `bundle` zip.

    `variant="model"`: blob candidates scored by a logistic regression fitted, inside the
    runtime image, on the bundle's public training films and lesions (up to 20 detections a
    film). `variant="rule"`: the same candidates scored by a fixed contrast rule, at most 3 a
    film, no fitting: a weaker entry, so the detection board has a spread.
    """
    if variant not in ("model", "rule"):
        raise ValueError(f"unknown detector variant {variant!r}")
    key = _cache_key(bundle, "mammography_blobs")
    target = out_dir / f"mammography_blobs-{variant}-{key}.zip"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    module = example_module("mammography_blobs")
    if variant == "rule":
        return module.build_rule_bundle(target, max_detections=3)  # type: ignore[no-any-return]
    train = _detection_train_dir(bundle, out_dir / f"train-blobs-{key}")
    return module.build_bundle(train, target)  # type: ignore[no-any-return]
