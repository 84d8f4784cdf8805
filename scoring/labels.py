"""Reading an evaluation set's hidden labels (trusted scorer code only); the arrays and the
readers themselves are in heldout_kernel.cases (no Django), shared with data stations."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from challenges.models import EvaluationSet
from core.storage import checksum_tree_cached, private_path, sha256_file_cached
from heldout_kernel.cases import LabelTable, Lesions, part_mask, parts, read_labels, read_lesions

__all__ = ["ChecksumMismatch", "LabelTable", "Lesions", "load_labels", "part_mask", "parts",
           "read_labels", "read_lesions", "verify_checksums"]


class ChecksumMismatch(Exception):
    """Hidden data changed on disk since import; scoring stops (internal error)."""




def load_labels(evaluation_set: EvaluationSet) -> LabelTable:
    """The set's labels, cached in this process: a worker scores many submissions against
    the same set. The cache key holds the file's size and modification time, so a replaced
    file is read again (and `verify_checksums` still reads every byte before each run)."""
    path = private_path(evaluation_set.labels_file)
    info = path.stat()
    lesions = ("", 0, 0)
    if evaluation_set.lesions_file:
        lesions_path = private_path(evaluation_set.lesions_file)
        lesion_info = lesions_path.stat()
        lesions = (str(lesions_path), lesion_info.st_size, lesion_info.st_mtime_ns)
    return _read_labels_cached(str(path), info.st_size, info.st_mtime_ns, *lesions)


@functools.lru_cache(maxsize=16)
def _read_labels_cached(path: str, size: int, mtime_ns: int, lesions_path: str,
                        lesions_size: int, lesions_mtime_ns: int) -> LabelTable:
    table = read_labels(Path(path))
    if not lesions_path:
        return table
    return dataclasses.replace(table, lesions=read_lesions(Path(lesions_path), table.ids))


def verify_checksums(evaluation_set: EvaluationSet) -> None:
    """Compare every hidden file with the sha256 recorded at import (each file version is
    hashed once per process: a changed or replaced file has a new size, time or inode)."""
    actual = {
        f"inputs/{name}": digest
        for name, digest in checksum_tree_cached(private_path(evaluation_set.inputs_dir)).items()
    }
    actual["labels.csv"] = sha256_file_cached(private_path(evaluation_set.labels_file))
    if evaluation_set.lesions_file:
        actual["lesions.csv"] = sha256_file_cached(private_path(evaluation_set.lesions_file))
    if actual != evaluation_set.checksums:
        changed = sorted(
            set(actual.items()).symmetric_difference(evaluation_set.checksums.items())
        )
        raise ChecksumMismatch(
            f"{evaluation_set}: {len(changed)} file(s) differ from the import, "
            f"e.g. {changed[0][0]}"
        )


