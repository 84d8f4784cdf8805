"""Judging hostile output files is the model's failure, never ours: every byte sequence a model
can write into predictions.csv or detections.csv gives `invalid_output` with a message that the
database can store (the engine tests in tests/pipeline/test_hostile_outputs.py run the same
bytes through real containers for predictions; detections are judged here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.text import storable_text
from heldout_kernel.judge import judge
from heldout_kernel.sandbox.base import RunResult

IDS = ("f0", "f1", "f2")
SIZES = {film: (100, 100) for film in IDS}
OK = RunResult(exit_code=0, timed_out=False, oom_killed=False, log_tail="", duration_s=1.0)

HOSTILE_ROWS = {
    "nul": b"f0\x00,1,1,0.5\n",
    "invalid utf-8": b"f0,\xff\xfe,1,0.5\n",
    "control characters": b"f0\x1b[2J,1,1,0.5\r\n",
    "a 10 MB line": b"f0," + b"1" * (10 * 1024 * 1024) + b",1,0.5\n",
    "deeply nested json": b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "non-finite numbers": b"f0,nan,1e400,0.5\n",
    "an unterminated quote": b'"f0,1,1,0.5\n',
}


@pytest.mark.parametrize("where", ["detections", "predictions"])
@pytest.mark.parametrize("case", list(HOSTILE_ROWS))
def test_hostile_rows_are_invalid_output_with_a_storable_message(
    case: str, where: str, tmp_path: Path
) -> None:
    header = b"id,x,y,score\n" if where == "detections" else b"id,score\n"
    row = HOSTILE_ROWS[case]
    if where == "predictions":
        row = row.replace(b",1,1,", b",").replace(b",\xff\xfe,1,", b",\xff,")
    (tmp_path / f"{where}.csv").write_bytes(header + row)
    if where == "predictions":  # a detection phase reads both files
        (tmp_path / "detections.csv").write_bytes(b"id,x,y,score\nf0,1,1,0.5\n")

    error_class, message, written = judge(OK, tmp_path, IDS, 60, SIZES)

    assert (error_class, written) == ("invalid_output", None)
    assert message and "\x00" not in storable_text(message)
    storable_text(message).encode("utf-8")  # the database can take it
