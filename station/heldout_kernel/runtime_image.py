"""The platform runtime image that `bundle` submissions run in.

The recipe lives in `station/heldout_kernel/runtime/` (a package list and `build.sh`, which
debootstraps Debian bookworm and imports the root file system). The image tag is derived from the
recipe, so a changed recipe gives a new tag and an unchanged one is never rebuilt:
`heldout-runtime:<first 12 hex of sha256(packages.txt + build.sh)>`.

This module does not import the docker SDK (only `scoring/backends/docker.py` does): building
goes through `build.sh`, which uses the docker CLI.

Participants test locally in the same image, which no registry serves: `export_runtime_archive`
writes it once per recipe as a gzipped `docker save` archive, `heldout-runtime-<hash>.tar.gz`,
with its sha256 in `heldout-runtime-<hash>.tar.gz.sha256` (`sha256sum -c` format), for the
site to offer. No Django here either: data stations import this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import math
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from heldout_kernel.sandbox.base import BackendError

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"  # shipped with the package
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


# --- The image as a file, for participants' own engines ------------------------------------
ARCHIVE_SUFFIX = ".tar.gz"
CHECKSUM_SUFFIX = ".sha256"
# 120 MB at level 6 against 135 MB at level 1, for 14 s instead of 6 s of one core, once per
# recipe (measured on the 347 MB runtime image); every participant downloads it.
ARCHIVE_GZIP_LEVEL = 6
SAVE_TIMEOUT_S = 1800
_OLD_RUNTIME_ARCHIVE = re.compile(rf"{RUNTIME_REPOSITORY}-[0-9a-f]{{12}}\.tar\.gz(\.sha256)?")


@dataclass(frozen=True)
class RuntimeArchive:
    """A finished archive of an image: `docker load -i path` restores `tag`."""

    tag: str
    path: Path
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def archive_name(tag: str) -> str:
    """`heldout-runtime:2b3c2149b116` -> `heldout-runtime-2b3c2149b116.tar.gz`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", tag) + ARCHIVE_SUFFIX


def runtime_archive(*, directory: Path, tag: str | None = None) -> RuntimeArchive | None:
    """The finished archive of `tag` (default: the recipe's image) in `directory`, or None.
    Never builds and never asks the engine, so a web request may call it. The checksum file
    is written last: while it is absent the archive is not finished."""
    tag = tag or runtime_image_tag()
    path = directory / archive_name(tag)
    try:
        digest = (directory / (path.name + CHECKSUM_SUFFIX)).read_text().split()[0]
        size = path.stat().st_size
    except (OSError, IndexError):
        return None
    return RuntimeArchive(tag=tag, path=path, sha256=digest, size=size)


def export_runtime_archive(*, directory: Path, tag: str | None = None) -> RuntimeArchive:
    """Write the gzipped `docker save` archive of `tag` (default: the recipe's image, built
    first when the engine lacks it) once: callers at the same time (two workers, a worker and
    `make`) wait on one file lock, and all but the first find it finished. Takes minutes on
    a first call; call it from a worker or a command, never from a web request. Raises
    BackendError when the engine cannot save the image."""
    tag = tag or ensure_runtime_image()
    directory.mkdir(parents=True, exist_ok=True)
    name = archive_name(tag)
    lock = directory / f".{name}.lock"
    with _exclusive(lock):
        finished = runtime_archive(directory=directory, tag=tag)
        if finished is not None:
            return finished
        _remove_parts(directory, name=name, lock=lock)
        digest = _save(tag, directory / name)
        _write_atomically(directory / (name + CHECKSUM_SUFFIX), f"{digest}  {name}\n")
    if tag == runtime_image_tag():
        _remove_older_runtime_archives(directory, keep=name)
    archive = runtime_archive(directory=directory, tag=tag)
    assert archive is not None  # just written under the lock
    return archive


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # flock, not a marker file: the kernel releases it when a holder dies mid-build.
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _HashingWriter:
    """A file that hashes what is written to it (the compressed bytes, as downloaded)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.digest = target, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def _save(tag: str, path: Path) -> str:
    """Stream `docker save` through gzip into a temporary file beside `path`, then rename it
    into place; return the archive's sha256. A failure leaves nothing behind."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) \
            as raw, tempfile.TemporaryFile() as errors:
        part = Path(raw.name)
        try:
            writer = _HashingWriter(raw)
            _stream_save(tag, writer, errors)
            raw.flush()
            os.fsync(raw.fileno())
            os.chmod(part, 0o644)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return writer.digest.hexdigest()


def _stream_save(tag: str, writer: _HashingWriter, errors: IO[bytes]) -> None:
    try:
        proc = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, stderr=errors)
    except OSError as exc:
        raise BackendError(f"docker save could not run: {exc}") from exc
    assert proc.stdout is not None
    try:
        # mtime=0 and no file name in the gzip header: the same image gives the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=writer,
                           compresslevel=ARCHIVE_GZIP_LEVEL, mtime=0) as compressed:
            while chunk := proc.stdout.read(1024 * 1024):
                compressed.write(chunk)
        code = proc.wait(timeout=SAVE_TIMEOUT_S)
    except BaseException as exc:
        proc.kill()
        proc.wait()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BackendError(f"docker save {tag} did not finish") from exc
        raise
    finally:
        proc.stdout.close()
    if code != 0:
        errors.seek(0)
        tail = errors.read()[-2000:].decode(errors="replace")
        raise BackendError(f"docker save {tag} failed (exit {code}): {tail}")


def _remove_parts(directory: Path, *, name: str, lock: Path) -> None:
    """Half-written files of a saver that was killed (under the lock, nobody else writes)."""
    for path in directory.glob(f".{name}.*"):
        if path != lock:
            path.unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(text)
    os.replace(draft, path)


def _remove_older_runtime_archives(directory: Path, *, keep: str) -> None:
    """A new recipe's archive replaces the older recipes' (each is over 100 MB)."""
    for path in directory.iterdir():
        if _OLD_RUNTIME_ARCHIVE.fullmatch(path.name) and not path.name.startswith(keep):
            path.unlink(missing_ok=True)
