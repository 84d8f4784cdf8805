"""The lesion-detection example (docker/examples/mammography_blobs), fitted and run for real.

It is built from a synthetic mammography bundle (256-pixel films whose lesions are bright
blobs at known centres) through `demo.examples.mammography_detector`, i.e. fitted inside the
runtime image, then run once in the runtime image on the bundle's sanity films as the worker
runs a `bundle` (read-only /submission, no network, 1 CPU). The output must follow the
detection contract, and on blobs this plain the detector must find the lesions.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from demo.bundles import BuiltBundle, build_mammography_bundle
from demo.examples import mammography_detector
from heldout_kernel.runtime_image import ensure_runtime_image
from heldout_kernel.sandbox.base import Limits, RunSpec
from heldout_kernel.sandbox.docker import DockerBackend
from heldout_kernel.stats.metrics import Lesion, froc_sensitivity

pytestmark = pytest.mark.docker


def readable(root: Path) -> Path:
    """The container runs as uid 65534: pytest's 0700 temp folders must be opened up."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> BuiltBundle:
    built = build_mammography_bundle(
        tmp_path_factory.mktemp("detection") / "mammography-screening", data_dir=None,
        image_size=256,
    )  # fmt: skip
    assert built.synthetic
    readable(built.path)
    return built


@pytest.fixture(scope="module")
def sanity_run(bundle: BuiltBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fit the detector, run it on the sanity inputs; the output folder."""
    work = tmp_path_factory.mktemp("detector")
    model = mammography_detector(bundle.path, work / "models")
    with zipfile.ZipFile(model) as archive:
        assert sorted(archive.namelist()) == ["model.joblib", "predict.py"]
        archive.extractall(work / "submission")
    readable(work)
    backend = DockerBackend()
    result = backend.run(
        RunSpec(
            name=f"heldout-test-detector-{uuid.uuid4().hex[:8]}",
            image=ensure_runtime_image(),
            input_dir=bundle.path / "sanity" / "inputs",
            output_dir=work / "out",
            limits=Limits(cpus=1.0, memory_mb=2048, seconds=120),
            env={"HELDOUT_TASK": "detection"},
            command=("python", "predict.py"),
            submission_dir=work / "submission",
        )
    )
    backend.wait_for_cleanup()
    assert result.exit_code == 0 and not result.timed_out, result.log_tail
    assert "logistic regression" in result.log_tail
    return work / "out"


def test_it_writes_detections_that_follow_the_contract(
    bundle: BuiltBundle, sanity_run: Path
) -> None:
    inputs = bundle.path / "sanity" / "inputs"
    ids = list(pd.read_csv(inputs / "manifest.csv", dtype={"id": str})["id"])
    assert (sanity_run / "detections.csv").read_text().splitlines()[0] == "id,x,y,score"
    detections = pd.read_csv(sanity_run / "detections.csv", dtype={"id": str})
    assert len(detections) and set(detections["id"]) <= set(ids)
    assert detections.groupby("id").size().max() <= 100
    assert detections["score"].between(0, 1).all() and detections["score"].nunique() > 1
    for case, rows in detections.groupby("id"):
        width, height = Image.open(inputs / "images" / f"{case}.png").size
        assert rows["x"].between(0, width - 1).all() and rows["y"].between(0, height - 1).all()
    films = pd.read_csv(sanity_run / "predictions.csv", dtype={"id": str})
    assert list(films.columns) == ["id", "score"] and list(films["id"]) == ids
    best = detections.groupby("id")["score"].max()
    assert films.set_index("id")["score"].to_dict() == {i: best.get(i, 0.0) for i in ids}


def test_it_finds_the_synthetic_lesions(bundle: BuiltBundle, sanity_run: Path) -> None:
    """Blobs this plain are found at under one false positive per film; a flipped axis or
    a wrong scale would miss them all (FROC by the platform's documented rule)."""
    truth = pd.read_csv(bundle.path / "sanity" / "lesions.csv", dtype={"id": str})
    n_films = len(pd.read_csv(bundle.path / "sanity" / "labels.csv"))
    detections = pd.read_csv(sanity_run / "detections.csv", dtype={"id": str})
    lesions = [Lesion(r.id, r.x, r.y, r.radius) for r in truth.itertuples()]
    assert len(lesions) >= 2
    found = list(detections.itertuples(index=False, name=None))
    assert froc_sensitivity(found, lesions, n_films) >= 0.75


def test_the_weaker_variant_is_a_rule_with_fewer_detections(
    bundle: BuiltBundle, tmp_path: Path
) -> None:
    rule = mammography_detector(bundle.path, tmp_path, variant="rule")
    with zipfile.ZipFile(rule) as archive:
        assert sorted(archive.namelist()) == ["predict.py", "settings.json"]
        assert json.loads(archive.read("settings.json")) == {"max_detections": 3}
    with pytest.raises(ValueError):
        mammography_detector(bundle.path, tmp_path, variant="random")
