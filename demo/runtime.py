"""Running trusted platform code in the runtime image, for building the example models.

The examples' models are fitted inside the image that will run them, so pickles match its
scikit-learn and numpy (see docker/examples).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from heldout_kernel.runtime_image import ensure_runtime_image
from heldout_kernel.sandbox.base import BackendError, Limits, RunResult, RunSpec
from heldout_kernel.sandbox.docker import DockerBackend


def run_in_runtime_image(
    *,
    script_dir: Path,
    command: Sequence[str],
    input_dir: Path,
    output_dir: Path,
    limits: Limits | None = None,
) -> RunResult:
    """Run trusted platform code (e.g. fitting an example model) in the runtime image.

    Pickled models must be written by the same scikit-learn/numpy that will load them, i.e.
    the runtime image's Debian packages, not the worker's. The script folder is staged with
    world-readable copies (the container runs as uid 65534); `input_dir` must already be
    readable by that uid. Raises BackendError when the run does not exit 0.
    """
    image = ensure_runtime_image()
    with tempfile.TemporaryDirectory(prefix="heldout-build-") as tmp:
        staged = Path(tmp) / "script"
        shutil.copytree(script_dir, staged, ignore=shutil.ignore_patterns("__pycache__"))
        _make_world_readable(Path(tmp))
        spec = RunSpec(
            name=f"heldout-build-{uuid.uuid4().hex[:12]}",
            image=image,
            input_dir=input_dir,
            output_dir=output_dir,
            limits=limits or Limits(cpus=2.0, memory_mb=4096, seconds=1800, output_mb=512),
            command=tuple(command),
            submission_dir=staged,
        )
        backend = DockerBackend()
        result = backend.run(spec)
        backend.wait_for_cleanup()
    if result.exit_code != 0:
        raise BackendError(f"{' '.join(command)} failed in the runtime image:\n{result.log_tail}")
    return result


def fit_model_in_runtime_image(script_dir: Path, train_dir: Path, model_out: Path) -> Path:
    """Run `python build.py fit /input /output/model.joblib` of an example in the runtime
    image with `train_dir` mounted read-only, and copy the model to `model_out`: the pickle
    is then written by the same scikit-learn that loads it at scoring time."""
    with tempfile.TemporaryDirectory(prefix="heldout-fit-") as tmp:
        run_in_runtime_image(
            script_dir=script_dir,
            command=("python", "build.py", "fit", "/input", "/output/model.joblib"),
            input_dir=train_dir,
            output_dir=Path(tmp),
        )
        model_out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "model.joblib", model_out)
    return model_out


def write_bundle_zip(out_zip: Path, members: Mapping[str, Path]) -> Path:
    """Zip `members` (archive name -> file) deterministically: sorted, fixed times and modes."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name].read_bytes())
    return out_zip


def _make_world_readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
