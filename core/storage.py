"""Files under the private root (hidden data, submissions, public challenge files).

Nothing here is reachable by URL; callers pass paths relative to settings.PRIVATE_ROOT.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

CHUNK = 1024 * 1024


def private_root() -> Path:
    return Path(settings.PRIVATE_ROOT)


def private_path(relative: str) -> Path:
    """Resolve a stored relative path, refusing anything that escapes the private root."""
    root = private_root().resolve()
    path = (root / relative).resolve()
    if root not in path.parents and path != root:
        raise ValueError(f"path escapes the private root: {relative!r}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_tree(folder: Path) -> dict[str, str]:
    """sha256 of every regular file below `folder`, keyed by its relative POSIX path."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
