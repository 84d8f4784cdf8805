"""Trusted validators for everything a participant uploads or a container writes.

Pure Python (no Django, no Docker) so the web process, the scoring worker and tests share one
implementation. Every exception message is shown to participants: it names the problem and at
most the first five offending rows or archive members, then "and N more".

Rows of a CSV are numbered like lines in an editor or rows in a spreadsheet: the header is
row 1, the first prediction is row 2.
"""

from __future__ import annotations

import codecs
import csv
import errno
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import posixpath
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from submissions.exceptions import InvalidPredictions, InvalidUpload, SubmissionError

MAX_LISTED = 5
_CHUNK = 1024 * 1024
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


# eq=False: dataclass equality would compare numpy arrays element-wise and raise.
@dataclass(frozen=True, eq=False)
class Predictions:
    ids: tuple[str, ...]  # in the order of `expected_ids` given to the validator
    scores: np.ndarray  # float64 aligned with ids, read-only
    labels: np.ndarray | None  # int8 0/1 aligned, read-only; None when there was no label column


# --- message helpers -----------------------------------------------------------------------


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


def _check_size(size: int, limit: int, what: str, error: type[SubmissionError]) -> None:
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


# --- predictions CSV -----------------------------------------------------------------------

_HEADERS = (("id", "score"), ("id", "score", "label"))
_LABELS = {"0": 0, "1": 1}


class _BadRow(Exception):
    pass


@dataclass
class _Table:
    index: dict[str, int] = field(default_factory=dict)  # id -> position of its first row
    rows: array[int] = field(default_factory=lambda: array("q"))  # row number of each position
    scores: array[float] = field(default_factory=lambda: array("d"))
    labels: array[int] | None = None
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # id -> all its rows
    seen: int = 0

    def add(self, row: int, ident: str, score: float, label: int | None) -> None:
        first = self.index.get(ident)
        if first is not None:
            self.duplicates.setdefault(ident, [self.rows[first]]).append(row)
            return
        self.index[ident] = len(self.scores)
        self.rows.append(row)
        self.scores.append(score)
        if self.labels is not None and label is not None:
            self.labels.append(label)


@contextmanager
def _open_csv(path: Path, limit: int, error: type[SubmissionError]) -> Iterator[IO[str]]:
    # O_NOFOLLOW and the S_ISREG check stop a container from pointing predictions.csv at a
    # host file (whose content would be echoed in messages) or at a FIFO (which would block).
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error("The predictions file was not found.") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise error("The predictions file must be a regular file, not a link.") from None
    raw = os.fdopen(fd, "rb")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error("The predictions file must be a regular file.")
        # The size is checked on the open descriptor before any byte is read.
        _check_size(info.st_size, limit, "predictions file", error)
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    finally:
        raw.close()


def _header_width(header: list[str] | None, error: type[SubmissionError]) -> int:
    if header is None:
        raise error("The predictions file is empty.")
    names = tuple(name.strip() for name in header)
    if names in _HEADERS:
        return len(names)
    hint = ""
    if "" in names or "Unnamed: 0" in names:
        hint = " Remove the unnamed column (with pandas: to_csv(path, index=False))."
    elif len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        hint = " Separate columns with commas."
    raise error(
        'The header must be "id,score" or "id,score,label", '
        f"but it is {_quote(','.join(header))}.{hint}"
    )


def _score_problem(text: str) -> str | None:
    if not text.strip():
        return "the score is empty"
    try:
        value = float(text)
    except ValueError:
        return f"score {_quote(text)} is not a number"
    if not math.isfinite(value):
        return f"score {_quote(text)} is not a finite number"
    if not 0.0 <= value <= 1.0:
        return f"score {_quote(text)} is outside [0, 1]"
    return None


def _row_problem(row: list[str], width: int) -> str | None:
    problem = _score_problem(row[1])
    if problem is None and width == 3 and row[2].strip() not in ("0", "1"):
        problem = f"label {_quote(row[2])} must be 0 or 1"
    return problem


def _parse_row(row: list[str], number: int, width: int) -> tuple[str, float, int | None]:
    if len(row) != width:
        raise _BadRow(f"Row {number}: expected {width} columns, found {len(row)}.")
    ident = row[0]
    if not ident.strip():
        raise _BadRow(f"Row {number}: the id is empty.")
    try:
        # Fast path for the millions of valid rows; messages are built only on failure.
        score = float(row[1])
        # Not int(): it also accepts "+1", "01" and "1_0"; the contract says exactly 0 or 1.
        label = _LABELS[row[2].strip()] if width == 3 else None
        if 0.0 <= score <= 1.0:
            return ident, score, label
    except (KeyError, ValueError):
        pass
    problem = _row_problem(row, width) or "the row could not be read"
    raise _BadRow(f"Row {number} (id {_quote(ident)}): {problem}.")


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _collect_rows(reader: _Reader, width: int, max_rows: int,
                  error: type[SubmissionError]) -> _Table:
    table = _Table(labels=array("b") if width == 3 else None)
    problems = _Problems()
    for row in reader:
        if len(row) < 2 and not "".join(row).strip():
            continue  # blank lines (often a trailing one) carry no prediction
        if table.seen >= max_rows:
            raise error(f"The predictions file has more than the limit of {max_rows:,} rows.")
        table.seen += 1
        try:
            table.add(reader.line_num, *_parse_row(row, reader.line_num, width))
        except _BadRow as exc:
            problems.add(str(exc))
    summary = problems.message("rows with problems")
    if summary:
        raise error(summary)
    if not table.seen:
        raise error("The predictions file has a header but no prediction rows.")
    return table


def _read_table(path: Path, limits: UploadLimits, error: type[SubmissionError]) -> _Table:
    with _open_csv(path, limits.max_predictions_bytes, error) as text:
        reader = csv.reader(text, strict=True)
        try:
            width = _header_width(next(reader, None), error)
            return _collect_rows(reader, width, limits.max_rows, error)
        except UnicodeDecodeError:
            raise error(
                f"The predictions file is not UTF-8 text (around row {reader.line_num + 1})."
            ) from None
        except csv.Error as exc:
            raise error(f"Row {reader.line_num}: the file is not valid CSV ({exc}).") from None


def _duplicates_message(table: _Table) -> str | None:
    problems = _Problems()
    for ident, rows in table.duplicates.items():
        problems.add(
            f"id {_quote(ident)} appears more than once (rows {_and_join([str(r) for r in rows])})."
        )
    return problems.message("duplicated ids")


def _id_set_message(count: int, sample: Iterable[str], what: str) -> str | None:
    if not count:
        return None
    shown = [_quote(ident) for _, ident in zip(range(MAX_LISTED), sample, strict=False)]
    return f"{_ids_are(count)} {what}, e.g. {_listing(shown, count)}."


def check_predictions_upload(path: Path, *, limits: UploadLimits = UploadLimits()) -> None:
    """Upload-time shape check (header, parse, finite scores in [0, 1], no duplicate ids).

    The hidden ids are not needed; the full check happens at scoring time.
    """
    table = _read_table(path, limits, InvalidUpload)
    duplicates = _duplicates_message(table)
    if duplicates:
        raise InvalidUpload(duplicates)


def read_predictions(
    path: Path, *, expected_ids: Sequence[str], limits: UploadLimits = UploadLimits()
) -> Predictions:
    """Read a predictions file against the evaluation ids; raise InvalidPredictions.

    Every expected id must appear exactly once and no other id may appear. The returned
    arrays follow the order of `expected_ids`.
    """
    expected = tuple(expected_ids)
    expected_set = set(expected)
    if len(expected_set) != len(expected):
        raise ValueError("expected_ids contains duplicates")  # organiser data bug, not a team's
    table = _read_table(path, limits, InvalidPredictions)
    extra = [ident for ident in table.index if ident not in expected_set]
    missing = [ident for ident in expected if ident not in table.index]
    parts = [
        _duplicates_message(table),
        _id_set_message(len(extra), extra, "not part of this evaluation set"),
        _id_set_message(len(missing), missing, "missing"),
    ]
    message = " ".join(part for part in parts if part)
    if message:
        raise InvalidPredictions(message)
    order = np.fromiter((table.index[i] for i in expected), dtype=np.intp, count=len(expected))
    scores = np.frombuffer(table.scores, dtype=np.float64)[order]
    scores.flags.writeable = False
    labels = None
    if table.labels is not None:
        labels = np.frombuffer(table.labels, dtype=np.int8)[order]
        labels.flags.writeable = False
    return Predictions(ids=expected, scores=scores, labels=labels)


# --- shared archive path rules -------------------------------------------------------------

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


# --- bundle (zip) ----------------------------------------------------------------------------

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


def check_bundle(path: Path, *, limits: UploadLimits = UploadLimits()) -> None:
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


def extract_bundle(path: Path, dest: Path, *, limits: UploadLimits = UploadLimits()) -> None:
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


# --- image archive (docker save) ---------------------------------------------------------

# docker save of even a 127-layer image has a few hundred members; tarfile keeps every header
# in memory, so a tar of millions of empty entries must stop early.
_MAX_IMAGE_MEMBERS = 10_000
_MAX_MANIFEST_BYTES = 1024 * 1024
_MAX_CONFIG_BYTES = 8 * 1024 * 1024
_CONFIG_NAME = re.compile(r"(?:blobs/sha256/([0-9a-f]{64}))|(?:([0-9a-f]{64})\.json)")
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
_NOT_AN_IMAGE = ("The file is not a Docker image archive: expected the tar written by "
                 "`docker save IMAGE -o image.tar`, optionally gzipped.")


@dataclass
class _ImageScan:
    manifest: bytes | None = None
    digests: dict[str, str] = field(default_factory=dict)  # candidate config -> its sha256
    links: dict[str, str] = field(default_factory=dict)  # symlink -> archive path it names
    members: int = 0
    problems: _Problems = field(default_factory=_Problems)


def _resolve_link(name: str, target: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(name), target))


def _link_issue(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        if member.linkname.startswith("/"):
            return "is a link to an absolute path"
        resolved = _resolve_link(member.name, member.linkname)
    elif member.islnk():
        resolved = posixpath.normpath(member.linkname)
    else:
        return None
    if resolved == ".." or resolved.startswith(("../", "/")):
        return "links outside the archive"
    return None


def _tar_member_issue(member: tarfile.TarInfo) -> str | None:
    issue = _path_issue(member.name) or _link_issue(member)
    if issue is None and (member.isdev() or not (member.isfile() or member.isdir()
                                                 or member.issym() or member.islnk())):
        issue = "is a special file (device or pipe)"
    return issue


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise InvalidUpload(f"{_quote(member.name)} in the image archive is unexpectedly large.")
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


def _record_member(tar: tarfile.TarFile, member: tarfile.TarInfo, scan: _ImageScan) -> None:
    name = posixpath.normpath(member.name)
    if name == "manifest.json":
        if scan.manifest is not None or not member.isfile():
            raise InvalidUpload("The image archive must contain exactly one manifest.json file.")
        scan.manifest = _read_small(tar, member, _MAX_MANIFEST_BYTES)
    elif member.issym():
        scan.links[name] = _resolve_link(name, member.linkname)
    elif member.islnk():
        scan.links[name] = posixpath.normpath(member.linkname)
    elif member.isfile() and member.size <= _MAX_CONFIG_BYTES and _CONFIG_NAME.fullmatch(name):
        scan.digests[name] = hashlib.sha256(_read_small(tar, member, _MAX_CONFIG_BYTES)).hexdigest()


def _scan_member(tar: tarfile.TarFile, member: tarfile.TarInfo, scan: _ImageScan,
                 limit: int) -> None:
    scan.members += 1
    if scan.members > _MAX_IMAGE_MEMBERS:
        raise InvalidUpload(f"The image archive has more than {_MAX_IMAGE_MEMBERS:,} entries.")
    # Checked from the header, before tarfile decompresses the member's data.
    if member.offset_data + member.size > limit:
        raise InvalidUpload(
            f"The image is larger than the {_size(limit)} limit once uncompressed."
        )
    issue = _tar_member_issue(member)
    if issue:
        scan.problems.add(f"{_quote(member.name)} {issue}.")
    else:
        _record_member(tar, member, scan)


def _scan_image(path: Path, limit: int) -> _ImageScan:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        scan = _ImageScan()
        try:
            # Stream mode reads forwards only, so a gzipped archive is never held in memory.
            with tarfile.open(fileobj=raw, mode="r|gz" if gzipped else "r|") as tar:
                for member in tar:
                    _scan_member(tar, member, scan, limit)
        except _TAR_ERRORS as exc:
            raise InvalidUpload(_NOT_AN_IMAGE) from exc
    summary = scan.problems.message("problem entries")
    if summary:
        raise InvalidUpload(f"The image archive cannot be used: {summary}")
    return scan


def _single_manifest_entry(data: bytes) -> dict[str, object]:
    try:
        entries = json.loads(data)
    except ValueError:
        raise InvalidUpload("manifest.json in the image archive is not valid JSON.") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidUpload("manifest.json in the image archive is not a docker save manifest.")
    if len(entries) != 1:
        tags = [_quote(str(tag)) for e in entries for tag in _repo_tags(e)]
        named = f" ({_listing(tags, len(tags))})" if tags else ""
        raise InvalidUpload(
            f"The archive contains {len(entries)} images{named}; upload exactly one "
            "(`docker save` a single image)."
        )
    entry: dict[str, object] = entries[0]
    return entry


def _repo_tags(entry: dict[str, object]) -> list[object]:
    tags = entry.get("RepoTags")
    return tags if isinstance(tags, list) else []


def _config_digest(scan: _ImageScan) -> str:
    if scan.manifest is None:
        raise InvalidUpload(
            "The image archive has no manifest.json; create it with "
            "`docker save IMAGE -o image.tar`."
        )
    config = _single_manifest_entry(scan.manifest).get("Config")
    name = posixpath.normpath(config) if isinstance(config, str) else ""
    match = _CONFIG_NAME.fullmatch(name)
    if match is None:
        raise InvalidUpload("manifest.json does not name the image configuration (Config).")
    expected = match.group(1) or match.group(2)
    for _ in range(8):  # follow a few links, never a cycle
        name = scan.links.get(name, name)
    actual = scan.digests.get(name)
    if actual is None:
        raise InvalidUpload(
            f"The image configuration {_quote(str(config))} is missing from the archive."
        )
    if actual != expected:
        raise InvalidUpload(
            "The image configuration does not match its digest; the archive is damaged."
        )
    return f"sha256:{expected}"


def check_image_archive(path: Path, *, limits: UploadLimits = UploadLimits()) -> str:
    """Check a `docker save` archive and return its image's config digest ("sha256:<hex>").

    The digest is recomputed from the configuration blob, so it can be trusted to pin the
    image that `docker load` will create.
    """
    _regular_file_size(path, limits.max_image_bytes, "image archive")
    return _config_digest(_scan_image(path, limits.max_image_bytes))


# --- kind sniffing ---------------------------------------------------------------------------

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
