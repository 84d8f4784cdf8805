"""OMOP sets in the kernel, on real tables: the Synthea27Nj sample (OHDSI EunomiaDatasets, CDM
v5.4, synthetic patients) checked against OHDSI's field specification, every kind of broken
copy refused with each problem named by table, column and count, and index-date censoring
leaving no event after a person's index date in any table."""

from __future__ import annotations

import csv
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest

from heldout_kernel.omop import spec as cdm
from heldout_kernel.omop.censor import LEFT_OUT, censor, index_dates
from heldout_kernel.omop.validate import OmopFiles, check_set
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="session")
def omop_spec() -> Path:
    return SHARED_DATA / "omop_cdm_v54_spec"


@pytest.fixture(autouse=True)
def spec_env(monkeypatch: pytest.MonkeyPatch, omop_spec: Path) -> None:
    monkeypatch.setenv(cdm.SPEC_ENV, str(omop_spec))
    cdm.load.cache_clear()


@pytest.fixture(scope="session")
def synthea(tmp_path_factory: pytest.TempPathFactory) -> OmopFiles:
    """The sample's tables, and a cohort of every person indexed at the middle of their
    observation period (labels: alternate 0/1, a format fixture only)."""
    root = tmp_path_factory.mktemp("synthea")
    with zipfile.ZipFile(SHARED_DATA / "omop_synthea27nj" / "Synthea27Nj_5.4.zip") as zf:
        zf.extractall(root / "tables")
    periods = list(csv.DictReader((root / "tables" / "OBSERVATION_PERIOD.csv").open()))
    with (root / "cohort.csv").open("w", newline="") as cohort, \
            (root / "labels.csv").open("w", newline="") as labels:
        cohort.write("person_id,index_date\n")
        labels.write("person_id,label,gender\n")
        for row in periods:
            start = date.fromisoformat(row["observation_period_start_date"])
            end = date.fromisoformat(row["observation_period_end_date"])
            cohort.write(f"{row['person_id']},{(start + (end - start) / 2).isoformat()}\n")
            labels.write(f"{row['person_id']},{int(row['person_id']) % 2},x\n")
    return OmopFiles(root / "tables", root / "cohort.csv", root / "labels.csv")


def test_the_synthea_sample_is_clean(synthea: OmopFiles) -> None:
    summary = check_set(synthea)
    assert summary.problems == []
    assert (summary.persons, summary.cases) == (28, 28)
    assert summary.rows["visit_occurrence"] == 1791


def _copy(synthea: OmopFiles, tmp_path: Path) -> OmopFiles:
    shutil.copytree(synthea.tables, tmp_path / "tables")
    for name in ("cohort.csv", "labels.csv"):
        shutil.copy(synthea.tables.parent / name, tmp_path / name)
    return OmopFiles(tmp_path / "tables", tmp_path / "cohort.csv", tmp_path / "labels.csv")


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.reader(path.open(newline="")))
    change(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _drop_column(rows: list[list[str]], name: str) -> None:
    at = rows[0].index(name)
    for row in rows:
        del row[at]


def test_a_broken_copy_is_refused_with_every_problem_named(synthea: OmopFiles,
                                                          tmp_path: Path) -> None:
    broken = _copy(synthea, tmp_path)
    tables = broken.tables
    _edit(tables / "VISIT_OCCURRENCE.csv", lambda rows: _drop_column(rows, "visit_start_date"))
    _edit(tables / "CONDITION_OCCURRENCE.csv", lambda rows: rows.extend([rows[1], rows[2]]))
    _edit(tables / "DRUG_EXPOSURE.csv", lambda rows: [r.__setitem__(1, "9999") for r in
                                                       rows[1:4]])
    _edit(tables / "MEASUREMENT.csv", lambda rows: [r.__setitem__(3, "2020-13-01") for r in
                                                    rows[1:3]])
    _edit(broken.cohort, lambda rows: rows.append(["424242", "2020-01-01"]))

    problems = check_set(broken, what="training set").problems

    assert ("training set: visit_occurrence.visit_start_date: required column missing"
            in problems)
    assert ("training set: condition_occurrence.condition_occurrence_id: 2 duplicate "
            "primary keys (e.g. '1')" in problems)
    assert ("training set: drug_exposure.person_id: 3 rows naming a person not in person "
            "(e.g. '9999')" in problems)
    assert ("training set: measurement.measurement_date: 2 values not a date (YYYY-MM-DD) "
            "(e.g. '2020-13-01')" in problems)
    assert ("training set: cohort.person_id: 1 cohort person absent from person "
            "(e.g. '424242')" in problems)
    assert ("training set: labels.person_id: 1 cohort person without a label (e.g. '424242')"
            in problems)


def test_files_that_are_no_cdm_table_and_a_missing_person_table_are_named(
    synthea: OmopFiles, tmp_path: Path
) -> None:
    broken = _copy(synthea, tmp_path)
    (broken.tables / "PERSON.csv").rename(broken.tables / "people.csv")
    (broken.tables / "notes.txt").write_text("hello")

    problems = check_set(broken).problems

    assert "OMOP set: tables: person.csv is missing" in problems
    assert ("OMOP set: tables: 2 files not a CDM v5.4 table (e.g. 'notes.txt')" in problems)


def _events_after_index(folder: Path, index: dict[str, str]) -> list[str]:
    """Every value of a date column after its person's index date, in every table."""
    spec = cdm.load()
    found = []
    for path in sorted((folder / "omop").glob("*.csv")):
        table = spec[path.stem]
        if not table.person_scoped:
            continue
        for row in csv.DictReader(path.open(newline="")):
            limit = index[row["person_id"]]
            found += [f"{path.stem}.{f.name}={row[f.name]}" for f in table.dates
                      if row.get(f.name) and row[f.name][:10] > limit]
    return found


def test_after_censoring_no_event_of_any_table_is_after_its_persons_index_date(
    synthea: OmopFiles, tmp_path: Path
) -> None:
    index = index_dates(synthea.cohort)
    before = _count_after(synthea.tables, index)
    assert before > 1000  # the real tables do hold later events

    train = censor(synthea, tmp_path / "train", stage="train")
    infer = censor(synthea, tmp_path / "infer", stage="infer")

    assert _events_after_index(tmp_path / "train", index) == []
    assert _events_after_index(tmp_path / "infer", index) == []
    assert sum(train.removed.values()) > 1000 and sum(train.cut.values()) > 0
    assert "death" in train.kept and not (tmp_path / "infer" / "omop" / "death.csv").exists()
    assert (tmp_path / "train" / "labels.csv").exists()
    assert not (tmp_path / "infer" / "labels.csv").exists()
    assert not any((tmp_path / "infer" / "omop" / f"{name}.csv").exists() for name in LEFT_OUT)
    assert infer.kept["person"] == 28


def _count_after(tables: Path, index: dict[str, str]) -> int:
    spec = cdm.load()
    count = 0
    for path in tables.glob("*.csv"):
        table = spec.get(path.stem.lower())
        if table is None or not table.person_scoped:
            continue
        for row in csv.DictReader(path.open(newline="", encoding="utf-8-sig")):
            limit = index.get(row["person_id"])
            count += bool(limit) and any(row.get(f.name, "")[:10] > limit for f in table.dates
                                         if row.get(f.name))
    return count


def test_an_end_after_the_index_date_is_cut_to_it(synthea: OmopFiles, tmp_path: Path) -> None:
    index = index_dates(synthea.cohort)
    censor(synthea, tmp_path, stage="infer")
    periods = list(csv.DictReader((tmp_path / "omop" / "observation_period.csv").open()))
    assert {row["observation_period_end_date"] for row in periods} <= set(index.values())
    assert all(row["observation_period_end_date"] == index[row["person_id"]]
               for row in periods)
