"""Docker image archives (`docker save`, optionally gzipped) and the digest they pin.

The tar is read forwards once in stream mode, so a gzipped archive is never held in memory;
member count and uncompressed size are checked from each header before its data is read,
and links, absolute paths and special files are refused. The image's config digest is
recomputed from the configuration blob that manifest.json names, so the returned
"sha256:<hex>" can be trusted to pin what `docker load` will create.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from heldout_kernel.errors import InvalidUpload
from heldout_kernel.validation.shared import (
    DEFAULT_LIMITS,
    UploadLimits,
    _listing,
    _path_issue,
    _Problems,
    _quote,
    _regular_file_size,
    _size,
)

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


def _unpacked_limit(limits: UploadLimits, size: int, gzipped: bool) -> int:
    """How far the archive may go once uncompressed: a gzipped one at most `max_image_ratio`
    times its own size (a 1.5 MB gzip bomb is refused at the first large header, before its
    gigabytes of zeros are inflated), and never past `max_image_unpacked`."""
    if not gzipped:
        return min(size, limits.max_image_unpacked)
    return int(min(limits.max_image_unpacked, limits.max_image_ratio * size))


def _scan_image(path: Path, limits: UploadLimits, size: int) -> _ImageScan:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        limit = _unpacked_limit(limits, size, gzipped)
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


def check_image_header(path: Path) -> None:
    """A cheap look at the first tar block (decompressing at most that much): refuses what
    is plainly not a `docker save` archive at upload, leaving the full scan to the worker."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        try:
            head = (gzip.GzipFile(fileobj=raw).read(512) if gzipped else raw.read(512))
        except (OSError, EOFError, zlib.error):
            raise InvalidUpload(_NOT_AN_IMAGE) from None
    if len(head) < 512 or head[257:262] != b"ustar":
        raise InvalidUpload(_NOT_AN_IMAGE)


def check_image_archive(path: Path, *, limits: UploadLimits = DEFAULT_LIMITS) -> str:
    """Check a `docker save` archive and return its image's config digest ("sha256:<hex>").

    The digest is recomputed from the configuration blob, so it can be trusted to pin the
    image that `docker load` will create.
    """
    size = _regular_file_size(path, limits.max_image_bytes, "image archive")
    return _config_digest(_scan_image(path, limits, size))
