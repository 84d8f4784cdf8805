"""Per-process caches on the scoring path: hidden labels and the runtime-image check.

Both exist because a worker evaluates many submissions against the same set with the same
image; both must notice a change rather than serve a stale answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.storage import private_path
from heldout_kernel import runtime_image as images
from scoring.labels import load_labels
from tests.factories import EvaluationSetFactory

LABELS = "id,label,split,sex\nc2,1,public,F\nc1,0,private,M\nc3,0,public,F\n"


@pytest.fixture
def evaluation_set(db):  # type: ignore[no-untyped-def]
    item = EvaluationSetFactory(labels_file="evaluation/cache/labels.csv")
    path = private_path(item.labels_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LABELS)
    return item


def test_labels_are_sorted_by_id_and_read_only(evaluation_set) -> None:
    table = load_labels(evaluation_set)

    assert table.ids == ("c1", "c2", "c3")
    assert table.y.tolist() == [0, 1, 0] and table.split.tolist() == [
        "private", "public", "public"]
    assert table.subgroups["sex"].tolist() == ["M", "F", "F"]
    for array in (table.y, table.split, table.subgroups["sex"]):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[1]


def test_labels_are_read_once_per_file_version(evaluation_set) -> None:
    first = load_labels(evaluation_set)
    assert load_labels(evaluation_set) is first

    path = private_path(evaluation_set.labels_file)
    path.write_text(LABELS.replace("c3,0,public", "c3,1,public"))  # same size, new content
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    changed = load_labels(evaluation_set)
    assert changed is not first
    np.testing.assert_array_equal(changed.y, [0, 1, 1])


@pytest.fixture
def fake_runtime(tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """A recipe whose build.sh records each call and prints the tag the recipe hashes to."""
    monkeypatch.setattr(images, "_confirmed", {})
    folder = tmp_path / "runtime"
    folder.mkdir()
    (folder / "packages.txt").write_text("python3\n")
    (folder / "build.sh").write_text(
        'here="$(dirname "$0")"\necho call >> "$here/calls"\ncat "$here/tag"\n')
    (folder / "tag").write_text(images.runtime_image_tag(folder))
    return folder


def calls(folder: Path) -> int:
    path = folder / "calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_runtime_image_is_confirmed_once_a_minute(fake_runtime, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(images.time, "monotonic", lambda: clock[0])
    tag = images.runtime_image_tag(fake_runtime)

    assert images.ensure_runtime_image(runtime_dir=fake_runtime) == tag
    clock[0] += images.CONFIRMED_FOR_S - 1
    assert images.ensure_runtime_image(runtime_dir=fake_runtime) == tag
    assert calls(fake_runtime) == 1

    clock[0] += 2  # the confirmation has run out: ask again
    assert images.ensure_runtime_image(runtime_dir=fake_runtime) == tag
    assert calls(fake_runtime) == 2


def test_a_changed_recipe_is_never_served_from_the_confirmation(fake_runtime) -> None:
    images.ensure_runtime_image(runtime_dir=fake_runtime)
    (fake_runtime / "packages.txt").write_text("python3\npython3-numpy\n")
    (fake_runtime / "tag").write_text(images.runtime_image_tag(fake_runtime))

    assert images.ensure_runtime_image(runtime_dir=fake_runtime) == (
        fake_runtime / "tag").read_text()
    assert calls(fake_runtime) == 2


def test_a_failed_build_is_not_remembered(fake_runtime) -> None:
    (fake_runtime / "tag").write_text("heldout-runtime:wrong")

    for _ in range(2):
        with pytest.raises(images.BackendError, match="expected"):
            images.ensure_runtime_image(runtime_dir=fake_runtime)
    assert calls(fake_runtime) == 2
