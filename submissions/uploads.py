"""Streaming uploads to disk: the web process never holds a whole file in memory."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.storage import CHUNK, private_root, sha256_file
from submissions.exceptions import InvalidUpload


@dataclass(frozen=True)
class StagedUpload:
    path: Path
    filename: str
    size: int
    sha256: str


def staging_dir() -> Path:
    folder = private_root() / "staging"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def safe_filename(name: str) -> str:
    base = Path(name.replace("\\", "/")).name.strip() or "upload"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:200]


def stage_chunks(chunks: Iterable[bytes], *, filename: str, max_bytes: int) -> StagedUpload:
    """Write chunks to a staging file, hashing as we go; refuse past `max_bytes`."""
    path = staging_dir() / f"{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("wb") as handle:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidUpload(
                        f"The file is larger than the limit of {max_bytes // 1024**2} MB."
                    )
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise InvalidUpload("The file is empty.")
    return StagedUpload(path=path, filename=safe_filename(filename), size=size,
                        sha256=digest.hexdigest())


def stage_existing(path: Path, *, filename: str) -> StagedUpload:
    """Stage a file already on disk (assembled chunked upload, organiser baseline)."""
    target = staging_dir() / f"{uuid.uuid4().hex}.part"
    shutil.copyfile(path, target)
    return StagedUpload(path=target, filename=safe_filename(filename),
                        size=target.stat().st_size, sha256=sha256_file(target))


def chunk_path(upload_uid: uuid.UUID) -> Path:
    return staging_dir() / f"chunked-{upload_uid.hex}.part"


def read_chunks(stream: object, *, chunk_size: int = CHUNK) -> Iterable[bytes]:
    read = stream.read  # type: ignore[attr-defined]
    while block := read(chunk_size):
        yield block
