"""Well-behaved model: one score per id of /input/features.csv."""
import csv
import os
from pathlib import Path

source = Path(os.environ["HELDOUT_INPUT"]) / "features.csv"
with source.open() as f:
    ids = [row["id"] for row in csv.DictReader(f)]
with (Path(os.environ["HELDOUT_OUTPUT"]) / "predictions.csv").open("w") as out:
    out.write("id,score\n")
    for i, case_id in enumerate(ids):
        out.write(f"{case_id},{(i % 10) / 10}\n")
print(f"scored {len(ids)} cases")
