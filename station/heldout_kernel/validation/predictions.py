"""Predictions CSV: the upload-time shape check and the scoring-time read against the ids.

Both paths share one streaming reader: the file is opened without following links and its
size checked before any byte is read, the header must be `id,score` or `id,score,label`, and
each row is parsed on a fast path, with a readable message built only for the rows that
fail. `check_predictions_upload` needs no hidden data and raises `InvalidUpload`;
`read_predictions` also checks the id set against the evaluation ids, raises
`InvalidPredictions` and returns read-only arrays in the order of those ids.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import stat
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn, Protocol

import numpy as np

from heldout_kernel.errors import DomainError, InvalidPredictions, InvalidUpload
from heldout_kernel.validation.shared import (
    DEFAULT_LIMITS,
    MAX_LISTED,
    UploadLimits,
    _and_join,
    _check_size,
    _ids_are,
    _listing,
    _Problems,
    _quote,
)


# eq=False: dataclass equality would compare numpy arrays element-wise and raise.
@dataclass(frozen=True, eq=False)
class Predictions:
    ids: tuple[str, ...]  # in the order of `expected_ids` given to the validator
    scores: np.ndarray  # float64 aligned with ids, read-only
    labels: np.ndarray | None  # int8 0/1 aligned, read-only; None when there was no label column


_HEADERS = (("id", "score"), ("id", "score", "label"))
_LABELS = {"0": 0, "1": 1}


class _BadRow(Exception):
    pass


@dataclass
class _Table:
    index: dict[str, int] = field(default_factory=dict)  # id -> position of its first row
    rows: array[int] = field(default_factory=lambda: array("q"))  # row number of each position
    scores: array[float] = field(default_factory=lambda: array("d"))
    labels: array[int] | None = None
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # id -> all its rows
    seen: int = 0

    def add(self, row: int, ident: str, score: float, label: int | None) -> None:
        first = self.index.get(ident)
        if first is not None:
            self.duplicates.setdefault(ident, [self.rows[first]]).append(row)
            return
        self.index[ident] = len(self.scores)
        self.rows.append(row)
        self.scores.append(score)
        if self.labels is not None and label is not None:
            self.labels.append(label)


@contextmanager
def _open_csv(path: Path, limit: int, error: type[DomainError],
              what: str = "predictions file") -> Iterator[IO[str]]:
    # O_NOFOLLOW and the S_ISREG check stop a container from pointing predictions.csv at a
    # host file (whose content would be echoed in messages) or at a FIFO (which would block).
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"The {what} was not found.") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise error(f"The {what} must be a regular file, not a link.") from None
    raw = os.fdopen(fd, "rb")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"The {what} must be a regular file.")
        # The size is checked on the open descriptor before any byte is read.
        _check_size(info.st_size, limit, what, error)
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    finally:
        raw.close()


def _header_width(header: list[str] | None, error: type[DomainError]) -> int:
    if header is None:
        raise error("The predictions file is empty.")
    names = tuple(name.strip() for name in header)
    if names in _HEADERS:
        return len(names)
    hint = ""
    if "" in names or "Unnamed: 0" in names:
        hint = " Remove the unnamed column (with pandas: to_csv(path, index=False))."
    elif len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        hint = " Separate columns with commas."
    raise error(
        'The header must be "id,score" or "id,score,label", '
        f"but it is {_quote(','.join(header))}.{hint}"
    )


def _score_problem(text: str) -> str | None:
    if not text.strip():
        return "the score is empty"
    try:
        value = float(text)
    except ValueError:
        return f"score {_quote(text)} is not a number"
    if not math.isfinite(value):
        return f"score {_quote(text)} is not a finite number"
    if not 0.0 <= value <= 1.0:
        return f"score {_quote(text)} is outside [0, 1]"
    return None


def _row_problem(row: list[str], width: int) -> str | None:
    problem = _score_problem(row[1])
    if problem is None and width == 3 and row[2].strip() not in ("0", "1"):
        problem = f"label {_quote(row[2])} must be 0 or 1"
    return problem


def _parse_row(row: list[str], number: int, width: int) -> tuple[str, float, int | None]:
    if len(row) != width:
        raise _BadRow(f"Row {number}: expected {width} columns, found {len(row)}.")
    ident = row[0]
    if not ident.strip():
        raise _BadRow(f"Row {number}: the id is empty.")
    try:
        # Fast path for the millions of valid rows; messages are built only on failure.
        score = float(row[1])
        # Not int(): it also accepts "+1", "01" and "1_0"; the contract says exactly 0 or 1.
        label = _LABELS[row[2].strip()] if width == 3 else None
        if 0.0 <= score <= 1.0:
            return ident, score, label
    except (KeyError, ValueError):
        pass
    problem = _row_problem(row, width) or "the row could not be read"
    raise _BadRow(f"Row {number} (id {_quote(ident)}): {problem}.")


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _collect_rows(reader: _Reader, width: int, max_rows: int,
                  error: type[DomainError]) -> _Table:
    table = _Table(labels=array("b") if width == 3 else None)
    problems = _Problems()
    for row in reader:
        if len(row) < 2 and not "".join(row).strip():
            continue  # blank lines (often a trailing one) carry no prediction
        if table.seen >= max_rows:
            raise error(f"The predictions file has more than the limit of {max_rows:,} rows.")
        table.seen += 1
        number = reader.line_num
        try:
            ident, score, label = _parse_row(row, number, width)
        except _BadRow as exc:
            problems.add(str(exc))
            continue
        table.add(number, ident, score, label)
    summary = problems.message("rows with problems")
    if summary:
        raise error(summary)
    if not table.seen:
        raise error("The predictions file has a header but no prediction rows.")
    return table


def _read_table(path: Path, limits: UploadLimits, error: type[DomainError]) -> _Table:
    """The file's rows: at C speed when every row is valid (`_valid_table`), otherwise row
    by row, naming each problem."""
    with _open_csv(path, limits.max_predictions_bytes, error) as text:
        table = _valid_table(text, limits.max_rows)
    return table if table is not None else _checked_table(path, limits, error)


#: Largest file read whole by `_valid_table` (about a million rows); it holds every row at
#: once, where the row-by-row reader streams.
FAST_READ_BYTES = 64 * 1024**2


def _valid_table(text: IO[str], max_rows: int) -> _Table | None:
    """The table of a file whose every row is valid, read with C loops only (about a tenth
    of the row-by-row time); None for any problem at all, which the row-by-row reader then
    finds and names. Scores go through Python's own float(), so both accept the same text."""
    columns = _valid_columns(text, max_rows)
    if columns is None:
        return None
    ids = columns[0]
    index = dict(zip(ids, range(len(ids)), strict=True))
    if len(index) != len(ids) or not all(map(str.strip, ids)):
        return None
    try:
        scores = np.fromiter(map(float, columns[1]), dtype=np.float64, count=len(ids))
    except ValueError:
        return None
    if not ((scores >= 0.0) & (scores <= 1.0)).all():  # NaN fails both comparisons
        return None
    if len(columns) == 3 and not set(columns[2]) <= _LABELS.keys():
        return None  # " 1" is valid too: the row-by-row reader strips labels
    table = _Table(index=index, labels=array("b") if len(columns) == 3 else None,
                   seen=len(ids))
    table.scores.frombytes(scores.tobytes())
    if table.labels is not None:
        table.labels.extend(map(_LABELS.__getitem__, columns[2]))
    # `rows` stays empty: row numbers are kept for naming duplicates, and there are none.
    return table


def _valid_columns(text: IO[str], max_rows: int) -> list[tuple[str, ...]] | None:
    """The columns of a file of at most FAST_READ_BYTES with a valid header and no more than
    `max_rows` rows, each as wide as the header; None otherwise."""
    if os.fstat(text.fileno()).st_size > FAST_READ_BYTES:
        return None
    try:
        rows = list(csv.reader(text, strict=True))
    except (csv.Error, UnicodeDecodeError):
        return None
    while rows and not rows[-1]:
        rows.pop()  # trailing blank lines, which the row-by-row reader skips too
    if len(rows) < 2 or len(rows) - 1 > max_rows:
        return None
    names = tuple(name.strip() for name in rows[0])
    if names not in _HEADERS or set(map(len, rows)) != {len(names)}:
        return None
    return list(zip(*rows[1:], strict=True))


def _checked_table(path: Path, limits: UploadLimits, error: type[DomainError]) -> _Table:
    with _open_csv(path, limits.max_predictions_bytes, error) as text:
        reader = csv.reader(text, strict=True)
        try:
            width = _header_width(next(reader, None), error)
            return _collect_rows(reader, width, limits.max_rows, error)
        except UnicodeDecodeError:
            raise error(
                f"The predictions file is not UTF-8 text (around row {reader.line_num + 1})."
            ) from None
        except csv.Error as exc:
            raise error(f"Row {reader.line_num}: the file is not valid CSV ({exc}).") from None


def _duplicates_message(table: _Table) -> str | None:
    problems = _Problems()
    for ident, rows in table.duplicates.items():
        problems.add(
            f"id {_quote(ident)} appears more than once (rows {_and_join([str(r) for r in rows])})."
        )
    return problems.message("duplicated ids")


def _id_set_message(count: int, sample: Iterable[str], what: str) -> str | None:
    if not count:
        return None
    shown = [_quote(ident) for _, ident in zip(range(MAX_LISTED), sample, strict=False)]
    return f"{_ids_are(count)} {what}, e.g. {_listing(shown, count)}."


def check_predictions_upload(path: Path, *, limits: UploadLimits = DEFAULT_LIMITS) -> None:
    """Upload-time shape check (header, parse, finite scores in [0, 1], no duplicate ids).

    The hidden ids are not needed; the full check happens at scoring time.
    """
    table = _read_table(path, limits, InvalidUpload)
    duplicates = _duplicates_message(table)
    if duplicates:
        raise InvalidUpload(duplicates)


def read_predictions(
    path: Path, *, expected_ids: Sequence[str], limits: UploadLimits = DEFAULT_LIMITS
) -> Predictions:
    """Read a predictions file against the evaluation ids; raise InvalidPredictions.

    Every expected id must appear exactly once and no other id may appear. The returned
    arrays follow the order of `expected_ids`.
    """
    expected = tuple(expected_ids)
    expected_set = set(expected)
    if len(expected_set) != len(expected):
        raise ValueError("expected_ids contains duplicates")  # organiser data bug, not a team's
    table = _read_table(path, limits, InvalidPredictions)
    if table.duplicates or table.index.keys() != expected_set:  # one C-level comparison
        _raise_id_problems(table, expected, expected_set)
    order = np.fromiter(map(table.index.__getitem__, expected), dtype=np.intp,
                        count=len(expected))
    scores = np.frombuffer(table.scores, dtype=np.float64)[order]
    scores.flags.writeable = False
    labels = None
    if table.labels is not None:
        labels = np.frombuffer(table.labels, dtype=np.int8)[order]
        labels.flags.writeable = False
    return Predictions(ids=expected, scores=scores, labels=labels)


def _raise_id_problems(table: _Table, expected: tuple[str, ...],
                       expected_set: set[str]) -> NoReturn:
    extra = [ident for ident in table.index if ident not in expected_set]
    missing = [ident for ident in expected if ident not in table.index]
    parts = [
        _duplicates_message(table),
        _id_set_message(len(extra), extra, "not part of this evaluation set"),
        _id_set_message(len(missing), missing, "missing"),
    ]
    raise InvalidPredictions(" ".join(part for part in parts if part))
