"""Code bundles: a zip with `predict.py` at its root, checked and then safely extracted.

The member count is read from the end-of-central-directory record before zipfile loads the
central directory; then the declared totals, each member (path rules, links, special files,
encryption, compression method, per-member ratio) and the presence of `predict.py` are
checked. Extraction trusts none of the declared sizes: it counts the bytes really written,
creates files with O_EXCL and O_NOFOLLOW and fixed modes, and removes everything it wrote
when anything fails.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from heldout_kernel.errors import InvalidUpload
from heldout_kernel.validation.shared import (
    DEFAULT_LIMITS,
    UploadLimits,
    _path_issue,
    _Problems,
    _quote,
    _regular_file_size,
    _size,
)

_CHUNK = 1024 * 1024

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# Small files legitimately compress far beyond any bomb ratio (a page of spaces, an empty
# array) and cannot exhaust anything alone; the total-size limit still covers many of them.
_RATIO_FLOOR = 1024 * 1024
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
               NotImplementedError, RuntimeError, ValueError)


def _zip64_entry_count(handle: IO[bytes], tail: bytes, pos: int) -> int | None:
    if pos < _ZIP64_LOCATOR.size:
        return None
    signature, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, pos - _ZIP64_LOCATOR.size)
    if signature != b"PK\x06\x07":
        return None
    handle.seek(offset)
    record = handle.read(_ZIP64_EOCD.size)
    if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
        return None
    return int(_ZIP64_EOCD.unpack(record)[7])


def _zip_entry_count(path: Path) -> int | None:
    """Member count from the end-of-central-directory record.

    Read before zipfile parses the central directory, which it holds in memory whole: a
    small archive can declare millions of members.
    """
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, end - (_EOCD.size + 0xFFFF)))
        tail = handle.read()
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + _EOCD.size > len(tail):
            return None
        entries = int(_EOCD.unpack_from(tail, pos)[4])
        if entries != 0xFFFF:
            return entries
        return _zip64_entry_count(handle, tail, pos)


def _member_issue(info: zipfile.ZipInfo, ratio: float) -> str | None:
    path_issue = _path_issue(info.filename)
    if path_issue:
        return path_issue
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link; links are not allowed"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file (device, pipe or socket); only files and folders are allowed"
    if info.flag_bits & 0x1:
        return "is encrypted; upload a zip without a password"
    if info.compress_type not in _ZIP_METHODS:
        return "uses an unsupported compression method; use standard (deflate) compression"
    if info.file_size > _RATIO_FLOOR and info.file_size > ratio * max(info.compress_size, 1):
        return (f"expands {info.file_size / max(info.compress_size, 1):,.0f} times "
                f"(limit {ratio:,.0f}); this looks like a zip bomb")
    return None


def _check_members(infos: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    problems = _Problems()
    seen: set[str] = set()
    for info in infos:
        issue = _member_issue(info, limits.max_bundle_ratio)
        normalised = posixpath.normpath(info.filename)
        if issue is None and normalised in seen:
            issue = "appears more than once"
        seen.add(normalised)
        if issue:
            problems.add(f"{_quote(info.filename)} {issue}.")
    summary = problems.message("problem members")
    if summary:
        raise InvalidUpload(f"The zip cannot be used: {summary}")


def _check_totals(infos: list[zipfile.ZipInfo], archive_size: int, limits: UploadLimits) -> None:
    if len(infos) > limits.max_bundle_members:
        raise InvalidUpload(
            f"The zip has {len(infos):,} files; the limit is {limits.max_bundle_members:,}."
        )
    total = sum(info.file_size for info in infos)
    if total > limits.max_bundle_uncompressed:
        raise InvalidUpload(
            f"The zip expands to {_size(total)}, more than the "
            f"{_size(limits.max_bundle_uncompressed)} limit."
        )
    if total > _RATIO_FLOOR and total > limits.max_bundle_ratio * archive_size:
        raise InvalidUpload(
            f"The zip expands {total / archive_size:,.0f} times its size (limit "
            f"{limits.max_bundle_ratio:,.0f}); this looks like a zip bomb."
        )


def _require_predict_py(infos: list[zipfile.ZipInfo]) -> None:
    files = {posixpath.normpath(info.filename) for info in infos if not info.is_dir()}
    if "predict.py" in files:
        return
    nested = sorted((n for n in files if posixpath.basename(n) == "predict.py"),
                    key=lambda n: (n.count("/"), n))
    if nested:
        raise InvalidUpload(
            f"predict.py must be at the root of the zip, but it is at {_quote(nested[0])}. "
            "Zip the files inside the folder, not the folder itself."
        )
    raise InvalidUpload(
        "The zip has no predict.py at its root; the platform runs `python predict.py` "
        "from the top of the bundle."
    )


@contextmanager
def _open_bundle(path: Path, limits: UploadLimits) -> Iterator[zipfile.ZipFile]:
    size = _regular_file_size(path, limits.max_bundle_bytes, "zip bundle")
    not_a_zip = InvalidUpload("The bundle is not a zip archive (expected a .zip with predict.py).")
    if not zipfile.is_zipfile(path):
        raise not_a_zip
    count = _zip_entry_count(path)
    if count is None:
        raise not_a_zip
    if count > limits.max_bundle_members:
        raise InvalidUpload(
            f"The zip has {count:,} files; the limit is {limits.max_bundle_members:,}."
        )
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise InvalidUpload("The zip archive is damaged and could not be read.") from exc
    with archive:
        infos = archive.infolist()
        _check_totals(infos, size, limits)
        _check_members(infos, limits)
        _require_predict_py(infos)
        yield archive


def check_bundle(path: Path, *, limits: UploadLimits = DEFAULT_LIMITS) -> None:
    """Check a bundle zip without extracting it; raise InvalidUpload."""
    with _open_bundle(path, limits):
        pass


class _Budget:
    """Counts bytes really written: declared sizes in a zip are attacker-controlled."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, amount: int, name: str) -> None:
        self.used += amount
        if self.used > self.limit:
            raise InvalidUpload(
                f"The zip expands to more than the {_size(self.limit)} limit (reached while "
                f"extracting {_quote(name)}); its declared sizes are wrong."
            )


def _read_chunk(source: IO[bytes], name: str) -> bytes:
    try:
        return source.read(_CHUNK)
    except _ZIP_ERRORS as exc:
        message = f"The zip is damaged: {_quote(name)} could not be decompressed."
        raise InvalidUpload(message) from exc


def _open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    try:
        return archive.open(info)
    except _ZIP_ERRORS as exc:
        message = f"The zip is damaged: {_quote(info.filename)} could not be read."
        raise InvalidUpload(message) from exc


def _target(root: Path, name: str) -> Path:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    target = root.joinpath(*parts)
    if target != root and root not in target.parents:  # defence in depth: names were checked
        raise InvalidUpload(f"{_quote(name)} points outside the archive.")
    return target


def _make_dirs(root: Path, directory: Path, name: str) -> None:
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                message = f"{_quote(name)} conflicts with a file of the same name."
                raise InvalidUpload(message) from None
            continue
        current.chmod(0o755)  # explicit: the umask must not hide files from the container user


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path,
                  budget: _Budget) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise InvalidUpload(f"{_quote(info.filename)} conflicts with another member.") from None
    with os.fdopen(fd, "wb") as out, _open_member(archive, info) as source:
        os.fchmod(fd, 0o644)
        while chunk := _read_chunk(source, info.filename):
            budget.take(len(chunk), info.filename)
            out.write(chunk)


def _extract_members(archive: zipfile.ZipFile, root: Path, limit: int) -> None:
    budget = _Budget(limit)
    for info in archive.infolist():
        target = _target(root, info.filename)
        if info.is_dir():
            _make_dirs(root, target, info.filename)
            continue
        _make_dirs(root, target.parent, info.filename)
        _write_member(archive, info, target, budget)


def _prepare_destination(dest: Path) -> bool:
    """Return whether `dest` was created here (and so may be removed on failure)."""
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise ValueError(f"{dest} must be an empty directory")
        created = False
    else:
        dest.mkdir(parents=True)
        created = True
    dest.chmod(0o755)
    return created


def _remove_output(dest: Path, *, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def extract_bundle(path: Path, dest: Path, *, limits: UploadLimits = DEFAULT_LIMITS) -> None:
    """Check the bundle, then extract it into `dest` (new or empty); raise InvalidUpload.

    Files get mode 0o644 and folders 0o755 so a non-root container user can read them. On
    any failure nothing extracted is left behind.
    """
    with _open_bundle(path, limits) as archive:
        created = _prepare_destination(dest)
        try:
            _extract_members(archive, dest.resolve(), limits.max_bundle_uncompressed)
        except BaseException:
            _remove_output(dest, created=created)
            raise
