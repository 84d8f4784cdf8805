"""Checking an OMOP set against the CDM v5.4 field specification before anything is stored:
every problem is named by table, column and count, with one example, so an organiser fixes
them all at once.

What is checked: every file is a CDM table (file names case-insensitive; folders and files
starting with "." or "__" are ignored); `person` is there; each table has its required
columns; each value parses as its column's type (integers, floats, dates, date-times, text
within its length) and required values are present; primary keys are unique; every
`person_id` names a person of `person`; the cohort (`person_id,index_date`) names persons of
`person` once each, with dates; the labels (`person_id,label` plus subgroup columns) hold
0/1 for exactly the cohort's persons.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from heldout_kernel.omop import spec as cdm

IGNORED_PREFIXES = (".", "__")
# Dates as CDM exports write them: censoring compares their first ten characters.
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
COHORT_COLUMNS = ("person_id", "index_date")
LABEL_COLUMNS = ("person_id", "label")


@dataclass(frozen=True)
class OmopFiles:
    """An OMOP set on disk: its tables folder, cohort file and (for hidden and sanity sets)
    labels file."""

    tables: Path
    cohort: Path
    labels: Path | None = None


@dataclass
class Problems:
    """Problems counted by (where, what), each with its first example."""

    what: str
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, kind: str, example: object = None) -> None:
        key = (where, kind)
        if key not in self.counts:
            self.counts[key], self.order = 0, [*self.order, key]
            if example is not None:
                self.examples[key] = repr(example) if isinstance(example, str) else str(example)
        self.counts[key] += 1

    def messages(self) -> list[str]:
        out = []
        for key in self.order:
            where, kind = key
            count = self.counts[key]
            example = f" (e.g. {self.examples[key]})" if key in self.examples else ""
            out.append(f"{self.what}: {where}: {kind.format(n=count, s='' if count == 1 else 's')}"
                       f"{example}")
        return out


def table_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """({table name: file}, names of files that are not CDM tables or are given twice)."""
    known = cdm.load()
    found: dict[str, Path] = {}
    strays = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(IGNORED_PREFIXES):
            continue
        name = path.stem.lower()
        if not path.is_file() or path.suffix.lower() != ".csv" or name not in known:
            strays.append(path.name)
        elif name in found:
            strays.append(f"{path.name} (a second file for {name})")
        else:
            found[name] = path
    return found, strays


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.reader(handle)


def _parses(value: str, kind: str) -> bool:
    try:
        if kind in ("integer", "bigint"):
            return value.lstrip("-").isdigit() or float(value).is_integer()
        if kind == "float":
            return math.isfinite(float(value))
        if kind == "date":
            day = value[:10] if len(value) == 19 else value
            return bool(ISO_DATE.fullmatch(day)) and bool(date.fromisoformat(day))
        if kind == "datetime":
            return bool(ISO_DATE.match(value)) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False
    return True


UNPARSED = {"integer": "{n} value{s} not a whole number",
            "bigint": "{n} value{s} not a whole number",
            "float": "{n} value{s} not a finite number",
            "date": "{n} value{s} not a date (YYYY-MM-DD)",
            "datetime": "{n} value{s} not a date-time"}


def _type_problem(value: str, column: cdm.Field) -> str | None:
    """What is wrong with a non-empty `value` of `column`, or None."""
    if not _parses(value, column.datatype):
        return UNPARSED[column.datatype]
    limit = column.max_length
    if limit is not None and len(value) > limit:
        return f"{{n}} value{{s}} longer than {limit} characters"
    return None


@dataclass(frozen=True)
class _Column:
    position: int
    spec: cdm.Field
    where: str
    is_person: bool  # a person_id to look up in `person`


@dataclass
class _TableCheck:
    """One table's rows checked cell by cell, with each column's spec looked up once."""

    columns: list[_Column]
    problems: Problems
    persons: set[str] | None
    keys: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, table: cdm.Table, header: list[str], problems: Problems,
           persons: set[str] | None) -> _TableCheck:
        columns = [_Column(position, column, f"{table.name}.{name}",
                           name == "person_id" and table.name != "person")
                   for position, name in enumerate(header)
                   if (column := table.field(name)) is not None]
        return cls(columns, problems, persons)

    def row(self, values: list[str]) -> None:
        width = len(values)
        for column in self.columns:
            value = values[column.position].strip() if column.position < width else ""
            if not value:
                if column.spec.required:
                    self.problems.add(column.where, "{n} empty value{s} in a required column")
                continue
            if (problem := _type_problem(value, column.spec)) is not None:
                self.problems.add(column.where, problem, value)
            elif column.spec.primary_key:
                self._key(column.where, value)
            if column.is_person and self.persons is not None and value not in self.persons:
                self.problems.add(column.where, "{n} row{s} naming a person not in person",
                                  value)

    def _key(self, where: str, value: str) -> None:
        if value in self.keys:
            self.problems.add(where, "{n} duplicate primary key{s}", value)
        else:
            self.keys.add(value)


def _check_table(name: str, path: Path, problems: Problems, persons: set[str] | None) -> int:
    table = cdm.load()[name]
    rows = _rows(path)
    header = [h.strip().lower() for h in next(rows, [])]
    missing = [c for c in table.required if c not in header]
    for column in missing:
        problems.add(f"{name}.{column}", "required column missing")
    check = _TableCheck.of(table, header, problems, persons)
    count = 0
    for values in rows:
        if values:
            check.row(values)
            count += 1
    return count


def _person_ids(path: Path) -> set[str]:
    rows = _rows(path)
    header = [h.strip().lower() for h in next(rows, [])]
    if "person_id" not in header:
        return set()
    at = header.index("person_id")
    return {row[at].strip() for row in rows if len(row) > at and row[at].strip()}


def _keyed_file(path: Path, columns: tuple[str, ...], label: str, problems: Problems
                ) -> dict[str, list[str]]:
    """{person_id: row} of a cohort or labels file, with its shape problems added."""
    if not path.is_file():
        problems.add(label, "the file is missing")
        return {}
    rows = _rows(path)
    header = [h.strip().lower() for h in next(rows, [])]
    if tuple(header[: len(columns)]) != columns:
        problems.add(label, f"the header must start with {','.join(columns)}",
                     ",".join(header))
        return {}
    out: dict[str, list[str]] = {}
    for row in rows:
        if not row:
            continue
        person = row[0].strip()
        if person in out:
            problems.add(f"{label}.person_id", "{n} person{s} given twice", person)
        out[person] = [value.strip() for value in row]
    return out


def _check_cohort(files: OmopFiles, persons: set[str], problems: Problems) -> dict[str, str]:
    cohort = _keyed_file(files.cohort, COHORT_COLUMNS, "cohort", problems)
    index: dict[str, str] = {}
    for person, row in cohort.items():
        if person not in persons:
            problems.add("cohort.person_id", "{n} cohort person{s} absent from person", person)
        value = row[1] if len(row) > 1 else ""
        try:
            if not ISO_DATE.fullmatch(value):
                raise ValueError(value)
            index[person] = date.fromisoformat(value).isoformat()
        except ValueError:
            problems.add("cohort.index_date", "{n} value{s} not a date (YYYY-MM-DD)", value)
    return index


def _check_labels(path: Path, cohort: dict[str, str], problems: Problems) -> tuple[int, int]:
    labels = _keyed_file(path, LABEL_COLUMNS, "labels", problems)
    if not labels:
        return 0, 0
    for row in labels.values():
        if (row[1] if len(row) > 1 else "") not in ("0", "1"):
            problems.add("labels.label", "{n} value{s} other than 0 and 1", row[1:2] or "")
    _differences(set(labels), set(cohort), problems)
    return len(labels), sum(row[1] == "1" for row in labels.values() if len(row) > 1)


def _differences(labelled: set[str], cohort: set[str], problems: Problems) -> None:
    for person in sorted(labelled - cohort):
        problems.add("labels.person_id", "{n} person{s} labelled but not in the cohort", person)
    for person in sorted(cohort - labelled):
        problems.add("labels.person_id", "{n} cohort person{s} without a label", person)


@dataclass(frozen=True)
class Summary:
    problems: list[str]
    persons: int
    cases: int
    positives: int
    rows: dict[str, int]


def check_set(files: OmopFiles, *, what: str = "OMOP set") -> Summary:
    """Every problem of an OMOP set, named (see the module doc), and its counts."""
    problems = Problems(what)
    tables, strays = table_files(files.tables)
    for name in strays:
        problems.add("tables", "{n} file{s} not a CDM v5.4 table", name)
    if "person" not in tables:
        problems.add("tables", "person.csv is missing")
    persons = _person_ids(tables["person"]) if "person" in tables else set()
    rows = {name: _check_table(name, path, problems, persons)
            for name, path in _ordered(tables)}
    index = _check_cohort(files, persons, problems)
    cases, positives = (_check_labels(files.labels, index, problems) if files.labels
                        else (len(index), 0))
    return Summary(problems.messages(), len(persons), cases, positives, rows)


def _ordered(tables: dict[str, Path]) -> Iterable[tuple[str, Path]]:
    return sorted(tables.items(), key=lambda item: (item[0] != "person", item[0]))
