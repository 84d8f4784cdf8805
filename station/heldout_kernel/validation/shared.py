"""Limits and the message helpers shared by every validator in this package.

`UploadLimits` holds every size and count limit in one place so the web process and the
scoring worker enforce the same numbers. The helpers keep messages uniform: participant text
is quoted and cut (`_quote`), sizes are human-readable (`_size`), and `_Problems` collects
per-row or per-member issues so that one exception names at most the first `MAX_LISTED` of
them. `_path_issue` holds the member-name rules that the zip and tar checks share.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from heldout_kernel.errors import DomainError, InvalidUpload

MAX_LISTED = 5
_ECHO_CHARS = 60  # participant text quoted back in messages is cut to keep them readable


@dataclass(frozen=True)
class UploadLimits:
    max_predictions_bytes: int = 200 * 1024**2
    max_rows: int = 2_000_000
    max_bundle_bytes: int = 500 * 1024**2
    max_bundle_uncompressed: int = 2 * 1024**3
    max_bundle_ratio: float = 200.0  # uncompressed/compressed, per member and overall
    max_bundle_members: int = 10_000
    max_image_bytes: int = 4 * 1024**3
    max_image_unpacked: int = 16 * 1024**3
    max_image_ratio: float = 50.0  # uncompressed/compressed for a gzipped archive



def _quote(value: str) -> str:
    if len(value) > _ECHO_CHARS:
        value = value[:_ECHO_CHARS] + "…"
    return json.dumps(value, ensure_ascii=False)


def _size(n: float) -> str:
    for factor, unit in ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB")):
        if n >= factor:
            return f"{n / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(n)} bytes"


def _listing(items: Sequence[str], total: int) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    rest = total - min(len(items), MAX_LISTED)
    return f"{shown} and {rest} more" if rest > 0 else shown


def _and_join(items: Sequence[str]) -> str:
    if len(items) > MAX_LISTED:
        return _listing(items, len(items))
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _ids_are(count: int) -> str:
    return "1 id is" if count == 1 else f"{count:,} ids are"


class _Problems:
    """Collects per-row or per-member problems so one message can name the first few."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.first) < MAX_LISTED:
            self.first.append(message)

    def message(self, more: str) -> str | None:
        if not self.count:
            return None
        text = " ".join(self.first)
        if self.count > MAX_LISTED:
            text += f" And {self.count - MAX_LISTED:,} more {more}."
        return text


def _check_size(size: int, limit: int, what: str, error: type[DomainError]) -> None:
    if size == 0:
        raise error(f"The {what} is empty.")
    if size > limit:
        raise error(f"The {what} is {_size(size)}, larger than the {_size(limit)} limit.")


def _regular_file_size(path: Path, limit: int, what: str) -> int:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise InvalidUpload(f"The {what} is not a regular file.")
    _check_size(info.st_size, limit, what, InvalidUpload)
    return info.st_size


_DRIVE = re.compile(r"^[A-Za-z]:")


def _path_issue(name: str) -> str | None:
    if "\\" in name:
        return "has a backslash in its path (re-create the archive with a standard tool)"
    if any(ord(char) < 32 for char in name):
        return "has control characters in its name"
    if name.startswith("/") or _DRIVE.match(name):
        return "has an absolute path"
    if ".." in name.split("/"):
        return 'points outside the archive (".." in its path)'
    return None


# One shared default: ruff's B008 cannot see across modules that UploadLimits is frozen.
DEFAULT_LIMITS = UploadLimits()
