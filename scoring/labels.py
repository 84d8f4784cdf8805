"""Reading an evaluation set's hidden labels (trusted scorer code only)."""

from __future__ import annotations

import csv
import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from challenges.models import EvaluationSet
from core.storage import checksum_tree_cached, private_path, sha256_file_cached


@dataclass(frozen=True)
class Lesions:
    """A detection set's true lesions, by film index into the table's sorted ids."""

    film: np.ndarray                # intp
    x: np.ndarray                   # float64 pixels, origin top-left
    y: np.ndarray
    radius: np.ndarray
    subgroups: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelTable:
    ids: tuple[str, ...]            # sorted, so arrays of every submission align
    y: np.ndarray                   # int8 0/1
    split: np.ndarray | None        # "public"/"private" per case, when the set has a split
    subgroups: dict[str, np.ndarray] = field(default_factory=dict)
    lesions: Lesions | None = None  # detection sets only


class ChecksumMismatch(Exception):
    """Hidden data changed on disk since import; scoring stops (internal error)."""


def read_labels(path: Path) -> LabelTable:
    """Read a labels file into arrays sorted by id. The arrays are read-only: tables are
    shared between callers through the cache of `load_labels`."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = list(zip(*reader, strict=True)) or [() for _ in header]
    table = dict(zip(header, (np.array(column) for column in columns), strict=True))
    order = np.argsort(table["id"], kind="stable")
    extra = [c for c in header if c not in ("id", "label", "split")]
    return LabelTable(
        ids=tuple(table["id"][order].tolist()),
        y=_read_only(table["label"][order].astype(np.int8)),
        split=_read_only(table["split"][order]) if "split" in table else None,
        subgroups={c: _read_only(table[c][order]) for c in extra},
    )


def read_lesions(path: Path, ids: tuple[str, ...]) -> Lesions:
    """The lesions file (checked at import) as arrays, films as indices into `ids`."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = list(zip(*reader, strict=True)) or [() for _ in header]
    table = dict(zip(header, (np.array(column) for column in columns), strict=True))
    position = {ident: index for index, ident in enumerate(ids)}
    film = np.fromiter((position[i] for i in table["id"].tolist()), dtype=np.intp,
                       count=len(table["id"]))
    extra = [c for c in header if c not in ("id", "x", "y", "radius")]
    return Lesions(
        film=_read_only(film),
        **{c: _read_only(table[c].astype(np.float64)) for c in ("x", "y", "radius")},
        subgroups={c: _read_only(table[c]) for c in extra},
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def load_labels(evaluation_set: EvaluationSet) -> LabelTable:
    """The set's labels, cached in this process: a worker scores many submissions against
    the same set. The cache key holds the file's size and modification time, so a replaced
    file is read again (and `verify_checksums` still reads every byte before each run)."""
    path = private_path(evaluation_set.labels_file)
    info = path.stat()
    lesions = ("", 0, 0)
    if evaluation_set.lesions_file:
        lesions_path = private_path(evaluation_set.lesions_file)
        lesion_info = lesions_path.stat()
        lesions = (str(lesions_path), lesion_info.st_size, lesion_info.st_mtime_ns)
    return _read_labels_cached(str(path), info.st_size, info.st_mtime_ns, *lesions)


@functools.lru_cache(maxsize=16)
def _read_labels_cached(path: str, size: int, mtime_ns: int, lesions_path: str,
                        lesions_size: int, lesions_mtime_ns: int) -> LabelTable:
    table = read_labels(Path(path))
    if not lesions_path:
        return table
    return dataclasses.replace(table, lesions=read_lesions(Path(lesions_path), table.ids))


def verify_checksums(evaluation_set: EvaluationSet) -> None:
    """Compare every hidden file with the sha256 recorded at import (each file version is
    hashed once per process: a changed or replaced file has a new size, time or inode)."""
    actual = {
        f"inputs/{name}": digest
        for name, digest in checksum_tree_cached(private_path(evaluation_set.inputs_dir)).items()
    }
    actual["labels.csv"] = sha256_file_cached(private_path(evaluation_set.labels_file))
    if evaluation_set.lesions_file:
        actual["lesions.csv"] = sha256_file_cached(private_path(evaluation_set.lesions_file))
    if actual != evaluation_set.checksums:
        changed = sorted(
            set(actual.items()).symmetric_difference(evaluation_set.checksums.items())
        )
        raise ChecksumMismatch(
            f"{evaluation_set}: {len(changed)} file(s) differ from the import, "
            f"e.g. {changed[0][0]}"
        )


def parts(table: LabelTable) -> tuple[str, ...]:
    """The parts boards are computed on: "public" and "private" with a split, else "all"."""
    return ("public", "private") if table.split is not None else ("all",)


def part_mask(table: LabelTable, part: str) -> np.ndarray:
    if part == "all" or table.split is None:
        return np.ones(len(table.ids), dtype=bool)
    return np.asarray(table.split == part)
