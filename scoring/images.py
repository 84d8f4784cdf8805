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
import subprocess
import time
from pathlib import Path
from typing import Any

from scoring.backends.base import BackendError

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
