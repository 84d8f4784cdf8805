"""Lesion files of detection data sets: `id,x,y,radius` in pixels of the film's image, origin
top-left (x to the right, y down), several rows per film allowed; further columns are lesion
subgroups (e.g. `class`, `size`). Checked at import, read by the scorer only.
"""

from __future__ import annotations

import csv
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LESION_COLUMNS = ("id", "x", "y", "radius")
MAX_PROBLEMS = 5


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header chunk, without decoding it; None for a file that
    is not a PNG."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def image_sizes(inputs: Path, ids: list[str] | tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """The size of `images/<id>.png` for each id that has one."""
    sizes = {}
    for ident in ids:
        path = inputs / "images" / f"{ident}.png"
        size = png_size(path) if path.is_file() else None
        if size is not None:
            sizes[ident] = size
    return sizes


@dataclass
class LesionCheck:
    n_lesions: int = 0
    subgroups: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.problems.append(message)


def finite_number(text: str) -> float | None:
    """The finite number `text` spells, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _row_problem(row: dict[str, str], labels: dict[str, str],
                 sizes: dict[str, tuple[int, int]]) -> str | None:
    ident = row["id"]
    if ident not in labels:
        return f"id {ident!r} is not in the labels"
    if labels[ident] != "1":
        return f"film {ident!r} has label 0 but a lesion (a film with a lesion is positive)"
    x, y, radius = (finite_number(row[c]) for c in ("x", "y", "radius"))
    if x is None or y is None or radius is None:
        return "x, y and radius must be finite numbers"
    if radius <= 0:
        return f"radius {row['radius']} must be more than 0"
    if ident not in sizes:
        return f"images/{ident}.png is missing or not a PNG"
    width, height = sizes[ident]
    if not (0 <= x < width and 0 <= y < height):
        return f"centre ({row['x']}, {row['y']}) is outside the {width}x{height} image"
    return None


def check_lesions(path: Path, *, inputs: Path, labels: dict[str, str]) -> LesionCheck:
    """Check a lesions file against the set's labels (id -> "0"/"1") and its images."""
    check = LesionCheck()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        if not set(LESION_COLUMNS) <= set(header):
            check.add(f"lesions file needs columns {', '.join(LESION_COLUMNS)} (has {header}).")
            return check
        check.subgroups = [c for c in header if c not in LESION_COLUMNS]
        rows = list(reader)
    sizes = image_sizes(inputs, sorted({row["id"] for row in rows if row["id"] in labels}))
    for line, row in enumerate(rows, start=2):
        problem = _row_problem(row, labels, sizes)
        if problem is None:
            check.n_lesions += 1
        elif len(check.problems) < MAX_PROBLEMS:
            check.add(f"lesions line {line}: {problem}.")
        else:
            check.add("lesions: more lines have problems; fix these first.")
            break
    return check


def lesion_rows(path: Path) -> list[dict[str, str]]:
    """A (checked) lesions file's rows, for public sets' overlays."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))
