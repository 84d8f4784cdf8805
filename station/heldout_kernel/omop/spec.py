"""OHDSI's CDM v5.4 field specification (`OMOP_CDMv5.4_Field_Level.csv` of the repository
OHDSI/CommonDataModel, Apache License 2.0): which tables exist, their fields, whether each is
required, its type, primary and foreign keys. Read from the copy an operator points at
(HELDOUT_OMOP_SPEC: the folder holding that file), never written down here by hand: OHDSI's
own DDL and data-quality tools are generated from the same file.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FIELD_LEVEL = "OMOP_CDMv5.4_Field_Level.csv"
SPEC_ENV = "HELDOUT_OMOP_SPEC"


class SpecMissing(Exception):
    """The field specification is not where it was said to be."""


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    datatype: str  # integer, bigint, float, date, datetime, varchar(n), varchar(max)
    primary_key: bool
    fk_table: str  # "" when not a foreign key

    @property
    def is_date(self) -> bool:
        return self.datatype in ("date", "datetime")

    @property
    def is_end(self) -> bool:
        """An end of an interval: cut at the index date rather than a reason to drop."""
        return self.is_date and "end" in self.name.split("_")

    @property
    def max_length(self) -> int | None:
        if self.datatype.startswith("varchar(") and self.datatype[8:-1].isdigit():
            return int(self.datatype[8:-1])
        return None


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def primary_key(self) -> str | None:
        return next((f.name for f in self.fields if f.primary_key), None)

    @property
    def person_scoped(self) -> bool:
        return self.field("person_id") is not None

    @property
    def dates(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.is_date)


def spec_folder() -> Path:
    """Where the specification is: HELDOUT_OMOP_SPEC, else a `omop_cdm_v54_spec` folder in
    HELDOUT_DATA_DIR (the demo's data folder)."""
    given = os.environ.get(SPEC_ENV)
    if given:
        return Path(given)
    data = os.environ.get("HELDOUT_DATA_DIR")
    return Path(data) / "omop_cdm_v54_spec" if data else Path("omop_cdm_v54_spec")


@cache
def load(folder: Path | None = None) -> dict[str, Table]:
    """Every CDM table of the specification by its lower-case name."""
    path = (folder or spec_folder()) / FIELD_LEVEL
    if not path.is_file():
        raise SpecMissing(
            f"The OMOP CDM v5.4 field specification ({FIELD_LEVEL}, OHDSI/CommonDataModel "
            f"inst/csv/) is needed at {path}: set {SPEC_ENV} to the folder that holds it.")
    tables: dict[str, list[Field]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            table = row["cdmTableName"].strip().lower()
            tables.setdefault(table, []).append(Field(
                name=row["cdmFieldName"].strip().lower(),
                required=row["isRequired"].strip().lower() == "yes",
                datatype=row["cdmDatatype"].strip().lower(),
                primary_key=row["isPrimaryKey"].strip().lower() == "yes",
                fk_table=(row["fkTableName"].strip().lower()
                          if row["isForeignKey"].strip().lower() == "yes" else "")))
    return {name: Table(name, tuple(fields)) for name, fields in tables.items()}
