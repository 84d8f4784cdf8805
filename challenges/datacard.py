"""The data card of an evaluation set, computed when its files are imported or replaced and
stored with the set: what an organiser should look at before a challenge goes live.

- cases and positives (from the labels file);
- missing values per input column (empty, NA, NaN, null), duplicate rows (identical apart
  from the id);
- label balance per subgroup column of the labels file (sex, age band, site, ...);
- outliers per numeric input column: values beyond 3 interquartile ranges from the quartiles.

Only aggregates are stored, never ids or values of cases: the card is shown to organisers
but lives beside hidden data, so it is kept as harmless as a summary can be.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from django.utils import timezone

MISSING = {"", "na", "nan", "null", "none", "n/a"}
INDEX_FILES = ("features.csv", "manifest.csv")
MAX_COLUMNS = 200  # a card is for reading; very wide inputs are summarised by the first ones


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _quantile(ordered: list[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _outliers(values: list[str]) -> int | None:
    """Values beyond 3 IQR of the quartiles; None for a column that is not numeric."""
    present = [v for v in values if v.strip().lower() not in MISSING]
    numbers = [n for v in present if (n := _number(v)) is not None]
    if not numbers or len(numbers) < len(present):
        return None
    ordered = sorted(numbers)
    q1, q3 = _quantile(ordered, 0.25), _quantile(ordered, 0.75)
    spread = 3 * (q3 - q1)
    return sum(1 for n in numbers if n < q1 - spread or n > q3 + spread)


def _inputs_card(inputs: Path) -> dict[str, Any]:
    index = next((inputs / name for name in INDEX_FILES if (inputs / name).is_file()), None)
    if index is None:
        return {}
    header, rows = _rows(index)
    columns = [c for c in header if c != "id"][:MAX_COLUMNS]
    missing = {c: sum(1 for r in rows if (r.get(c) or "").strip().lower() in MISSING)
               for c in columns}
    duplicates = Counter(tuple(r.get(c, "") for c in columns) for r in rows)
    outliers = {c: n for c in columns if (n := _outliers([r.get(c) or "" for r in rows]))}
    images = inputs / "images"
    return {
        "index_file": index.name, "columns": len(header) - ("id" in header),
        "missing": {c: n for c, n in missing.items() if n},
        "duplicate_rows": sum(n - 1 for n in duplicates.values() if n > 1) if columns else 0,
        "outliers": outliers,
        "images": sum(1 for p in images.rglob("*") if p.is_file()) if images.is_dir() else 0,
    }


def _subgroups(header: list[str], rows: list[dict[str, str]]) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for column in (c for c in header if c not in ("id", "label", "split")):
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            cell = counts[row.get(column) or "(missing)"]
            cell[0] += 1
            cell[1] += row.get("label") == "1"
        groups[column] = {value: {"cases": n, "positives": p,
                                  "rate": round(p / n, 4) if n else None}
                          for value, (n, p) in sorted(counts.items())}
    return groups


def compute_data_card(*, inputs: Path, labels: Path) -> dict[str, Any]:
    """The card of a checked data set (inputs folder, labels CSV); JSON-serialisable."""
    header, rows = _rows(labels)
    positives = sum(1 for r in rows if r.get("label") == "1")
    card: dict[str, Any] = {
        "cases": len(rows), "positives": positives,
        "positive_rate": round(positives / len(rows), 4) if rows else None,
        "split": dict(sorted(Counter(r["split"] for r in rows).items()))
        if "split" in header else {},
        "subgroups": _subgroups(header, rows),
    }
    card.update(_inputs_card(inputs))
    return card


def provenance_entries(
    *, actor: Any, source: str, checksums: dict[str, str]
) -> list[dict[str, Any]]:
    """Who brought which files in, when, and how: the labels file by its sha256, the inputs
    folder by the sha256 over its files' checksums (one line, however many images)."""
    who = actor.get_username() if getattr(actor, "pk", None) else "system"
    at = timezone.now().isoformat(timespec="seconds")
    inputs = sorted((k, v) for k, v in checksums.items() if k.startswith("inputs/"))
    tree = hashlib.sha256(repr(inputs).encode()).hexdigest()
    entries = [{"file": f"inputs/ ({len(inputs)} files)", "sha256": tree}]
    for name in ("labels.csv", "lesions.csv"):
        if name in checksums:
            entries.append({"file": name, "sha256": checksums[name]})
    return [{**entry, "by": who, "at": at, "source": source} for entry in entries]
