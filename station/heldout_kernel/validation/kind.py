"""Which validator an uploaded file needs, told from its first bytes rather than its name.

Zip magic means a code bundle, gzip or a ustar header means a `docker save` image archive
(a gzipped file must contain a tar), and anything else must be UTF-8 text without NUL bytes
to count as a predictions CSV; everything else is refused with a message listing the three
accepted kinds.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from pathlib import Path

from heldout_kernel.errors import InvalidUpload

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def _is_tar_block(block: bytes) -> bool:
    return block[257:262] == b"ustar"


def _gzip_kind(path: Path) -> str:
    try:
        with gzip.open(path, "rb") as handle:
            block = handle.read(512)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidUpload("The file looks gzipped but is damaged.") from exc
    if _is_tar_block(block):
        return "image"
    raise InvalidUpload(
        "The file is gzipped but is not a Docker image archive; upload predictions as plain CSV."
    )


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def detect_kind(path: Path) -> str:
    """Return "predictions", "bundle" or "image" from the file's content, not its name."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise InvalidUpload("The file is empty.")
    if head.startswith(_ZIP_MAGIC):
        return "bundle"
    if head.startswith(b"\x1f\x8b"):
        return _gzip_kind(path)
    if _is_tar_block(head):
        return "image"
    if _is_text(head):
        return "predictions"
    raise InvalidUpload(
        "Unrecognised file: upload a predictions CSV, a zip bundle with predict.py, or a "
        "Docker image archive from `docker save`."
    )
