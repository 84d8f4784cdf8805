"""Index-date censoring: what a model may see of an OMOP set, written fresh for each stage.

A person's data never include their own outcome, so before any stage sees a set every row
dated after its person's index date goes. The rule per table comes from the field
specification's date fields:

- a table with `person_id` keeps only the cohort's persons; a row whose start date (any date
  field that does not end an interval: `visit_start_date`, `measurement_date`,
  `death_date`, ...) falls after the person's index date is removed; an end date after it
  (`visit_end_date`, `observation_period_end_date`, `drug_exposure_end_date`,
  `verbatim_end_date`, ...) is cut to the index date (a date-time to its last second), so no
  interval tells how long a person was followed after it;
- `death` is never given to an inference stage (at training, a death after the index date
  is removed like any other event);
- tables that summarise or link events, and could carry later events into earlier rows, are
  left out: the eras (`condition_era`, `drug_era`, `dose_era`: their counts span the index
  date), `fact_relationship`, `episode_event`, `note_nlp`, `cost` and the results table
  `cohort`; a model rebuilds eras from the censored events if it wants them;
- tables without persons (vocabularies, `location`, `care_site`, `provider`, `cdm_source`,
  ...) are copied unchanged.

Dates are compared as calendar dates: an event on the index date itself is kept.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from heldout_kernel.omop import spec as cdm
from heldout_kernel.omop.validate import OmopFiles, table_files

LEFT_OUT = frozenset({"condition_era", "drug_era", "dose_era", "fact_relationship",
                      "episode_event", "note_nlp", "cost", "cohort"})
TRAIN, INFER = "train", "infer"


@dataclass(frozen=True)
class Censored:
    """What a stage's folder holds: rows kept and removed, and end dates cut, per table."""

    kept: dict[str, int]
    removed: dict[str, int]
    cut: dict[str, int]


def index_dates(cohort: Path) -> dict[str, str]:
    """{person_id: ISO index date} of a (checked) cohort file."""
    with cohort.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        return {row[0].strip(): date.fromisoformat(row[1].strip()[:10]).isoformat()
                for row in rows if row}


def _plan(table: cdm.Table, header: list[str]) -> tuple[list[int], list[tuple[int, bool]]]:
    """(positions of start dates, [(position of an end date, is a date-time)])."""
    starts, ends = [], []
    for position, name in enumerate(header):
        column = table.field(name)
        if column is None or not column.is_date:
            continue
        if column.is_end:
            ends.append((position, column.datatype == "datetime"))
        else:
            starts.append(position)
    return starts, ends


def _censored_rows(rows: Iterator[list[str]], person_at: int, starts: list[int],
                   ends: list[tuple[int, bool]], index: dict[str, str],
                   counts: list[int]) -> Iterator[list[str]]:
    """Rows of the cohort's persons dated no later than their index date, end dates cut.
    `counts` collects [removed, cut]."""
    for row in rows:
        limit = index.get(row[person_at].strip()) if len(row) > person_at else None
        if limit is None or any(row[at][:10] > limit for at in starts if row[at]):
            counts[0] += 1
            continue
        for at, timed in ends:
            if row[at] and row[at][:10] > limit:
                row[at] = f"{limit} 23:59:59" if timed else limit
                counts[1] += 1
        yield row


def _copy_table(table: cdm.Table, source: Path, target: Path, index: dict[str, str]
                ) -> tuple[int, int, int]:
    with source.open(encoding="utf-8-sig", newline="") as inp, \
            target.open("w", encoding="utf-8", newline="") as out:
        rows = csv.reader(inp)
        header = next(rows, [])
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        names = [h.strip().lower() for h in header]
        if not table.person_scoped:
            kept = 0
            for row in rows:
                writer.writerow(row)
                kept += 1
            return kept, 0, 0
        starts, ends = _plan(table, names)
        counts = [0, 0]
        kept = 0
        for row in _censored_rows(rows, names.index("person_id"), starts, ends, index, counts):
            writer.writerow(row)
            kept += 1
        return kept, counts[0], counts[1]


def censor(files: OmopFiles, destination: Path, *, stage: str) -> Censored:
    """Write what stage `stage` ("train" or "infer") may see of a checked OMOP set under
    `destination`: `omop/<table>.csv` (lower-case names), `cohort.csv`, and for training
    `labels.csv` (an inference stage never gets labels)."""
    if stage not in (TRAIN, INFER):
        raise ValueError(f"unknown stage {stage!r}")
    tables, _ = table_files(files.tables)
    index = index_dates(files.cohort)
    folder = destination / "omop"
    folder.mkdir(parents=True, exist_ok=True)
    known = cdm.load()
    kept, removed, cut = {}, {}, {}
    for name, path in sorted(tables.items()):
        if name in LEFT_OUT or (name == "death" and stage == INFER):
            continue
        kept[name], removed[name], cut[name] = _copy_table(
            known[name], path, folder / f"{name}.csv", index)
    shutil.copyfile(files.cohort, destination / "cohort.csv")
    if stage == TRAIN and files.labels is not None:
        shutil.copyfile(files.labels, destination / "labels.csv")
    return Censored(kept, removed, cut)
