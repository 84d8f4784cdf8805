"""The detections file contract (read by the scorer, never trusted): header, ids, coordinates
inside the film, scores in [0, 1], a cap per film; messages name the offending rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heldout_kernel.validation import MAX_PER_FILM, read_detections
from submissions.exceptions import InvalidPredictions

IDS = ("a", "b", "c")
SIZES = {"a": (100, 80), "b": (100, 80), "c": (100, 80)}


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "detections.csv"
    path.write_text(text)
    return path


def _read(tmp_path: Path, text: str, **options):  # type: ignore[no-untyped-def]
    return read_detections(_file(tmp_path, text), expected_ids=IDS, image_sizes=SIZES,
                           **options)


def test_rows_are_read_in_order_by_film_index(tmp_path):
    found = _read(tmp_path, "id,x,y,score\nc,1.5,2,0.9\na,99,79,0\nc,0,0,1\n")
    assert found.film.tolist() == [2, 0, 2]
    assert found.x.tolist() == [1.5, 99.0, 0.0]
    assert found.score.tolist() == [0.9, 0.0, 1.0]
    np.testing.assert_array_equal(found.best_per_film(3), [0.0, 0.0, 1.0])


def test_a_model_may_detect_nothing(tmp_path):
    found = _read(tmp_path, "id,x,y,score\n")
    assert found.film.size == 0
    assert found.best_per_film(3).tolist() == [0.0, 0.0, 0.0]


def test_bad_rows_are_named(tmp_path):
    with pytest.raises(InvalidPredictions) as refused:
        _read(tmp_path, "id,x,y,score\na,1,1,0.5\nz,1,1,0.5\nb,100,1,0.5\nb,1,-1,0.5\n"
                        "c,1,1,2\nc,inf,1,0.5\nc,1,1\n")
    message = refused.value.message
    assert 'Row 3: id "z" is not part of this evaluation set.' in message
    assert "Row 4: (100, 1) is outside the 100x80 image." in message
    assert "Row 5: (1, -1) is outside the 100x80 image." in message
    assert 'Row 6: score "2" must be a number in [0, 1].' in message
    assert "Row 7: x and y must be finite numbers." in message
    assert "And 1 more rows with problems." in message
    assert "Row 2" not in message


@pytest.mark.parametrize(("text", "expected"), [
    ("", "The detections file is empty."),
    ("id,score\na,0.5\n", 'The header must be "id,x,y,score"'),
    ("id,x,y,score\n" + "a,1,1,0.5\n" * (MAX_PER_FILM + 1),
     f'At most {MAX_PER_FILM} detections per film are scored; these films have more: "a" '),
])
def test_the_file_as_a_whole_is_checked(tmp_path, text, expected):
    with pytest.raises(InvalidPredictions) as refused:
        _read(tmp_path, text)
    assert expected in refused.value.message


def test_a_link_is_not_followed(tmp_path):
    target = tmp_path / "secret.csv"
    target.write_text("id,x,y,score\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "detections.csv").symlink_to(target)
    with pytest.raises(InvalidPredictions, match="regular file, not a link"):
        read_detections(tmp_path / "out" / "detections.csv", expected_ids=IDS)
