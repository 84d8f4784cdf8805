"""The station's data folder: one dataset per visible sub-folder, and its fingerprint.

`DIR/<dataset>/` holds `inputs/` (mounted read-only into the sandbox), `labels.csv`
(`id,label[,split][,subgroups]`) and, for detection sets, `lesions.csv`. The fingerprint
tells the platform which data a station holds without sending any of it: a digest over
every file's digest, and counts.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heldout_kernel.cases import LabelTable, read_labels, read_lesions

logger = logging.getLogger(__name__)

HASH_CHUNK = 1024 * 1024
SANDBOX_ID = 65534  # the uid and gid models run as (heldout_kernel.sandbox.docker)


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def labels(self) -> Path:
        return self.root / "labels.csv"

    @property
    def lesions(self) -> Path:
        return self.root / "lesions.csv"


def discover(data_dir: Path) -> dict[str, Dataset]:
    """Every `DIR/<name>/` with `inputs/` and `labels.csv`, by name; hidden folders (".")
    are ignored, incomplete ones skipped with a warning."""
    found = {}
    for entry in sorted(data_dir.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        dataset = Dataset(entry.name, entry)
        if not dataset.inputs.is_dir() or not dataset.labels.is_file():
            logger.warning("skipping %s: it needs inputs/ and labels.csv", entry)
            continue
        found[dataset.name] = dataset
    return found


class FileHasher:
    """sha256 of files, streamed, remembered by (size, mtime_ns, inode) for the life of the
    process: re-fingerprinting an unchanged image folder costs one stat per file."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[tuple[int, int, int], str]] = {}

    def digest(self, path: Path, info: os.stat_result) -> str:
        key = (info.st_size, info.st_mtime_ns, info.st_ino)
        known = self._known.get(path)
        if known is not None and known[0] == key:
            return known[1]
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(HASH_CHUNK):
                digest.update(block)
        self._known[path] = (key, digest.hexdigest())
        return digest.hexdigest()


def regular_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """(relative posix path, path, lstat) of every regular file under `root`; symbolic
    links are neither followed nor counted."""
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                out.append((path.relative_to(root).as_posix(), path, info))
    out.sort(key=lambda item: item[0])
    return out


def fingerprint(dataset: Dataset, hasher: FileHasher) -> dict[str, Any]:
    """The dataset as the platform sees it: a sha256 over the sorted
    `"<relative path> <sha256>\\n"` lines of its files, and counts from the labels."""
    files = regular_files(dataset.root)
    lines = "".join(f"{relative} {hasher.digest(path, info)}\n" for relative, path, info in files)
    table = read_labels(dataset.labels)
    if table.split is not None:
        parts = {part: int(np.sum(table.split == part)) for part in ("public", "private")}
    else:
        parts = {"all": len(table.ids)}
    return {
        "sha256": hashlib.sha256(lines.encode("utf-8")).hexdigest(),
        "files": len(files),
        "n_cases": len(table.ids),
        "n_positive": int(np.sum(table.y == 1)),
        "n_lesions": _count_rows(dataset.lesions) if dataset.lesions.is_file() else None,
        "parts": parts,
    }


def _count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def unreadable_inputs(dataset: Dataset) -> list[str]:
    """Inputs the sandbox user (uid/gid 65534) cannot read: the model would fail on them
    and be blamed for the station's file modes."""
    problems = []
    for folder, dirs, files in os.walk(dataset.inputs, followlinks=False):
        if not _may(Path(folder).stat(), read=True, enter=True):
            problems.append(Path(folder).relative_to(dataset.root).as_posix() + "/")
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not _may(path.stat(), read=True, enter=False):
                problems.append(path.relative_to(dataset.root).as_posix())
        dirs.sort()
    return problems


def _may(info: os.stat_result, *, read: bool, enter: bool) -> bool:
    wanted = (4 if read else 0) | (1 if enter else 0)
    if info.st_uid == SANDBOX_ID:
        bits = (info.st_mode >> 6) & 7
    elif info.st_gid == SANDBOX_ID:
        bits = (info.st_mode >> 3) & 7
    else:
        bits = info.st_mode & 7
    return bits & wanted == wanted


def load_table(dataset: Dataset, *, detection: bool) -> LabelTable:
    """The labels (ids sorted) and, for a detection task, the lesions."""
    table = read_labels(dataset.labels)
    if detection:
        if not dataset.lesions.is_file():
            raise FileNotFoundError(f"dataset {dataset.name} has no lesions.csv")
        table = dataclasses.replace(table, lesions=read_lesions(dataset.lesions, table.ids))
    return table
