"""Reading the mini-MIAS source: the Info.txt ground-truth table and the xz-compressed PGMs.

`parse_info` turns Info.txt into one `Film` per mammogram, each with its abnormalities as
`Lesion`s; it accepts every row shape the real file has (NORM rows, rows with and without
coordinates, several rows for one film) and rejects anything else rather than guess.
Coordinates stay in the source convention (1024-pixel grid, origin bottom-left) until
`Lesion.top_left` converts them for output.
"""

from __future__ import annotations

import io
import lzma
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MIAS_PX = 1024
MIAS_CLASSES = frozenset({"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM"})


@dataclass(frozen=True)
class Lesion:
    cls: str
    severity: str
    x: int | None  # Info.txt convention: pixels on the 1024 grid, origin bottom-left
    y: int | None
    radius: int | None

    def top_left(self, scale: float) -> tuple[float, float, float] | None:
        """(x, y, radius) in output pixels with the origin top-left; None when unlocated."""
        if self.x is None or self.y is None or self.radius is None:
            return None
        return self.x * scale, (MIAS_PX - self.y) * scale, self.radius * scale


@dataclass(frozen=True)
class Film:
    id: str
    tissue: str
    lesions: tuple[Lesion, ...]  # abnormalities only; a NORM film has none

    @property
    def label(self) -> int:
        return int(bool(self.lesions))

    @property
    def pair(self) -> int:
        # mdb001+mdb002, mdb003+mdb004, ...: the two films of one woman.
        return (int(self.id[3:]) + 1) // 2

    @property
    def severity(self) -> str:
        found = {lesion.severity for lesion in self.lesions}
        return "M" if "M" in found else "B" if "B" in found else ""


_INFO_ROW = re.compile(
    r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})(?:\s+([BM]))?"
    r"(?:\s+(\d+)\s+(\d+)\s+(\d+))?(?:\s+\*NOTE 3\*)?\s*$"
)


def parse_info(content: str) -> list[Film]:
    """Films from mini-MIAS Info.txt: NORM rows, rows with and without coordinates
    (mdb059; *NOTE 3* = widely distributed calcifications), several rows per film."""
    rows: dict[str, list[Lesion]] = {}
    tissue: dict[str, str] = {}
    for line in content.splitlines():
        if not line.startswith("mdb"):
            continue
        match = _INFO_ROW.match(line)
        if (
            match is None
            or match[3] not in MIAS_CLASSES
            or (match[3] == "NORM") != (match[4] is None)
        ):
            raise ValueError(f"unexpected Info.txt row: {line!r}")
        ref, background, cls, severity, *xyr = match.groups()
        if tissue.setdefault(ref, background) != background:
            raise ValueError(f"{ref}: conflicting background tissue")
        rows.setdefault(ref, [])
        if cls != "NORM":
            x, y, r = (int(v) if v is not None else None for v in xyr)
            rows[ref].append(Lesion(cls=cls, severity=severity, x=x, y=y, radius=r))
    return [Film(id=ref, tissue=tissue[ref], lesions=tuple(rows[ref])) for ref in sorted(rows)]


def _load_pgm(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(lzma.decompress(path.read_bytes())))
    image.load()
    return image
