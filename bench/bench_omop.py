"""Benchmark: checking, censoring and staging an OMOP set of the demo's size.

The Synthea27Nj sample (28 persons, 1,791 visits, every clinical table; ../shared/data) is
replicated under new person and row ids until it holds about 100,000 visits, then the
kernel's `check_set` and `censor` (an inference stage's folder) run on it. Figures: seconds
and peak resident memory of each (in a forked child), against the issue's
target (censoring and staging under 10 s and 1 GB for 100k visits). The baseline in the same
run: copying the same files (shutil), which any staging must at least do.

Run from the repository root: `.venv/bin/python bench/bench_omop.py [--visits N]`
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("HELDOUT_DATA_DIR", REPO.parent / "shared" / "data"))
os.environ.setdefault("HELDOUT_OMOP_SPEC", str(DATA / "omop_cdm_v54_spec"))

from heldout_kernel.omop import spec as cdm  # noqa: E402
from heldout_kernel.omop.censor import censor  # noqa: E402
from heldout_kernel.omop.validate import OmopFiles, check_set  # noqa: E402

SAMPLE_VISITS = 1791
VOCABULARY = {"concept", "concept_relationship", "concept_ancestor", "concept_synonym",
              "concept_class", "vocabulary", "domain", "relationship", "drug_strength",
              "source_to_concept_map"}


def _scaled(source: Path, target: Path, copies: int) -> None:
    """Each person-scoped table `copies` times, ids offset per copy (foreign keys to other
    clinical rows shift alike, so the copies are consistent); other tables once."""
    spec = cdm.load()
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.csv")):
        table = spec.get(path.stem.lower())
        if table is None or path.stem.lower() in VOCABULARY:
            continue
        with path.open(encoding="utf-8-sig", newline="") as inp, \
                (target / path.name).open("w", newline="") as out:
            rows = list(csv.reader(inp))
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(rows[0])
            ids = [i for i, name in enumerate(rows[0]) if name.endswith("_id")
                   and (name == "person_id" or name == table.primary_key
                        or name.startswith(("visit_occurrence", "visit_detail")))]
            for copy in range(copies if table.person_scoped else 1):
                offset = copy * 10_000_000
                for row in rows[1:]:
                    writer.writerow([str(int(v) + offset) if i in ids and v.isdigit() else v
                                     for i, v in enumerate(row)])


def _cohort(tables: Path, folder: Path) -> OmopFiles:
    periods = csv.DictReader((tables / "OBSERVATION_PERIOD.csv").open(newline=""))
    with (folder / "cohort.csv").open("w") as cohort:
        cohort.write("person_id,index_date\n")
        for row in periods:
            start = date.fromisoformat(row["observation_period_start_date"])
            end = date.fromisoformat(row["observation_period_end_date"])
            cohort.write(f"{row['person_id']},{(start + (end - start) / 2).isoformat()}\n")
    return OmopFiles(tables, folder / "cohort.csv")


def _measured(work):  # type: ignore[no-untyped-def]
    """(result, seconds, peak MB): run in a forked child, so its peak resident memory is the
    work's own (ru_maxrss of the child) and no tracer slows it down."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: do the work, send (seconds, repr of the result) back
        os.close(reader)
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        os.write(writer, pickle.dumps((result, seconds, peak)))
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=100_000)
    args = parser.parse_args()
    copies = max(1, round(args.visits / SAMPLE_VISITS))
    with tempfile.TemporaryDirectory(prefix="bench-omop-") as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(DATA / "omop_synthea27nj" / "Synthea27Nj_5.4.zip") as archive:
            archive.extractall(root / "sample")
        _scaled(root / "sample", root / "tables", copies)
        files = _cohort(root / "tables", root)
        size = sum(p.stat().st_size for p in (root / "tables").glob("*.csv")) / 1024**2
        summary, check_s, check_mb = _measured(lambda: check_set(files))
        assert not summary.problems, summary.problems[:3]
        _, copy_s, _ = _measured(lambda: shutil.copytree(root / "tables", root / "copied"))
        censored, censor_s, censor_mb = _measured(
            lambda: censor(files, root / "infer", stage="infer"))
    visits = summary.rows["visit_occurrence"]
    print(f"{copies} copies: {summary.persons:,} persons, {visits:,} visits, {size:.0f} MB "
          f"of tables; censoring removed {sum(censored.removed.values()):,} rows and cut "
          f"{sum(censored.cut.values()):,} end dates")
    print(f"FIGURE\tOMOP check, {visits:,} visits\t{check_s:.2f}\ts\t")
    print(f"FIGURE\tOMOP censor + stage, {visits:,} visits\t{censor_s:.2f}\ts\t<= 10 s")
    print(f"FIGURE\tOMOP censor + stage / plain copy\t{censor_s / copy_s:.1f}\tx\t")
    print(f"FIGURE\tOMOP censor + stage, peak memory\t{censor_mb:.0f}\tMB\t<= 1 GB")
    print(f"FIGURE\tOMOP check, peak memory\t{check_mb:.0f}\tMB\t")


if __name__ == "__main__":
    main()
