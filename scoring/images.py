"""The platform runtime image that `bundle` submissions run in.

The recipe lives in `docker/runtime/` (a package list and `build.sh`, which debootstraps Debian
bookworm and imports the root file system). The image tag is derived from the recipe, so a
changed recipe gives a new tag and an unchanged one is never rebuilt:
`heldout-runtime:<first 12 hex of sha256(packages.txt + build.sh)>`.

This module does not import the docker SDK (only `scoring/backends/docker.py` does): building
goes through `build.sh`, which uses the docker CLI.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import tempfile
import time
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scoring.backends.base import BackendError, Limits, RunResult, RunSpec

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "docker" / "runtime"
# Same files, same order as recipe_hash() in build.sh.
RECIPE_FILES = ("packages.txt", "build.sh")
RUNTIME_REPOSITORY = "heldout-runtime"
# Every bundle run asks for the image; asking the engine (through build.sh) costs ~50 ms, so
# a confirmation is trusted this long. An image deleted under a worker fails runs as internal
# errors (which do not count against quotas) for at most this long.
CONFIRMED_FOR_S = 60.0
_confirmed: dict[str, float] = {}
# debootstrap plus package downloads; generous so a slow mirror does not fail a worker start.
BUILD_TIMEOUT_S = 3600


def runtime_image_tag(runtime_dir: Path = RUNTIME_DIR) -> str:
    """The tag the current recipe builds, computed from the files alone (no engine needed)."""
    digest = hashlib.sha256()
    for name in RECIPE_FILES:
        digest.update((runtime_dir / name).read_bytes())
    return f"{RUNTIME_REPOSITORY}:{digest.hexdigest()[:12]}"


def ensure_runtime_image(client: Any = None, runtime_dir: Path = RUNTIME_DIR) -> str:
    """Return the runtime image tag, building the image first when the engine lacks it.

    `client` (a docker SDK client) is optional and only used for a fast "already there?"
    check; without it `build.sh` does the same check itself. Needs root and the Debian
    mirror only when a build is actually required. Raises BackendError on failure.
    """
    tag = runtime_image_tag(runtime_dir)
    if time.monotonic() - _confirmed.get(tag, -math.inf) < CONFIRMED_FOR_S:
        return tag
    if client is None or not _has_image(client, tag):
        built = _run_build_script(runtime_dir)
        if built != tag:
            raise BackendError(f"build.sh produced {built!r}, expected {tag!r}")
    _confirmed[tag] = time.monotonic()
    return tag


def _has_image(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
    except Exception:  # noqa: BLE001 - any failure just means "build it": build.sh re-checks
        return False
    return True


def _run_build_script(runtime_dir: Path) -> str:
    try:
        proc = subprocess.run(
            ["bash", str(runtime_dir / "build.sh")],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"runtime image build could not run: {exc}") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr[-4000:]
        raise BackendError(f"runtime image build failed (exit {proc.returncode}):\n{tail}")
    return lines[-1].strip()


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
    from scoring.backends.docker import DockerBackend  # the docker SDK only when used

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
        result = DockerBackend().run(spec)
    if result.exit_code != 0:
        raise BackendError(f"{' '.join(command)} failed in the runtime image:\n{result.log_tail}")
    return result


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
