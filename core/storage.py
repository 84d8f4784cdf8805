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


# (path, size, mtime, inode) -> sha256. A file replaced or changed in place gets a new key
# (a new inode, size or modification time), so it is hashed again before anyone trusts it.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_MAX_DIGESTS = 100_000


def sha256_file_cached(path: Path) -> str:
    """sha256 of a file, computed once per file version (hidden data are verified before
    every run; re-reading gigabytes of unchanged images each time would dominate a lane)."""
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
    digest = _DIGESTS.get(key)
    if digest is None:
        if len(_DIGESTS) >= _MAX_DIGESTS:
            _DIGESTS.clear()
        digest = _DIGESTS[key] = sha256_file(path)
    return digest


def checksum_tree_cached(folder: Path) -> dict[str, str]:
    """checksum_tree through the per-version cache."""
    return {
        path.relative_to(folder).as_posix(): sha256_file_cached(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
