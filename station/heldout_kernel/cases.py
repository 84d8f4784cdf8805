"""Hidden case files as arrays: labels (`id,label[,split][,subgroups]`) and, for detection
sets, lesions (`id,x,y,radius[,lesion subgroups]`). Pure Python and numpy, no Django: the
central scorer and data stations read their data with the same code.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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


def parts(table: LabelTable) -> tuple[str, ...]:
    """The parts boards are computed on: "public" and "private" with a split, else "all"."""
    return ("public", "private") if table.split is not None else ("all",)


def part_mask(table: LabelTable, part: str) -> np.ndarray:
    if part == "all" or table.split is None:
        return np.ones(len(table.ids), dtype=bool)
    return np.asarray(table.split == part)
