"""Trusted validators: every rule a participant can trip, with the message they will read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from heldout_kernel import validation
from heldout_kernel.validation import (
    UploadLimits,
    check_bundle,
    check_image_archive,
    check_predictions_upload,
    detect_kind,
    extract_bundle,
    read_predictions,
)
from heldout_kernel.validation import predictions as predictions_module
from submissions.exceptions import InvalidPredictions, InvalidUpload

IDS = ("a1", "a2", "a3", "a4")


def write_csv(tmp_path: Path, text: str | bytes, name: str = "predictions.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(pairs: Sequence[tuple[str, str]], header: str = "id,score") -> str:
    return header + "\n" + "".join(f"{i},{s}\n" for i, s in pairs)


def read(path: Path, ids: Sequence[str] = IDS, **kwargs: object) -> validation.Predictions:
    return read_predictions(path, expected_ids=ids, **kwargs)  # type: ignore[arg-type]


# --- predictions: valid files ----------------------------------------------------------------


def test_it_returns_scores_aligned_to_the_expected_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([("a3", "0.3"), ("a1", "0.1"), ("a4", "1"), ("a2", "0")]))

    result = read(path)

    assert result.ids == IDS
    assert result.scores.dtype == np.float64
    np.testing.assert_array_equal(result.scores, [0.1, 0.0, 0.3, 1.0])
    assert result.labels is None


def test_it_returns_labels_as_int8_when_the_label_column_is_present(tmp_path: Path) -> None:
    text = "id,score,label\na2,0.9,1\na1,0.2,0\na4,0.6,1\na3,0.4,0\n"

    result = read(write_csv(tmp_path, text))

    assert result.labels is not None
    assert result.labels.dtype == np.int8
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 1])
    np.testing.assert_array_equal(result.scores, [0.2, 0.9, 0.4, 0.6])


def test_it_returns_read_only_arrays(tmp_path: Path) -> None:
    result = read(write_csv(tmp_path, rows([(i, "0.5") for i in IDS])))

    with pytest.raises(ValueError):
        result.scores[0] = 1.0


def test_it_tolerates_a_bom_and_spaces_around_header_names(tmp_path: Path) -> None:
    text = "\ufeff id , score \r\n" + "".join(f"{i},0.5\r\n" for i in IDS)

    result = read(write_csv(tmp_path, text))

    np.testing.assert_array_equal(result.scores, [0.5] * 4)


def test_it_ignores_blank_lines(tmp_path: Path) -> None:
    text = rows([(i, "0.5") for i in IDS]) + "\n\n"

    assert read(write_csv(tmp_path, text)).ids == IDS


@pytest.mark.parametrize("text", [
    "id,score\na1, 0.5\na2,0.5 \na3,+.5\na4,1e-1\n",  # what float() accepts
    "id,score\na1,1_0e-1\na2,0\na3,1\na4,0.000\n\n\n",
    "\ufeffid,score,label\r\na1,0.1, 1\r\na2,0.2,0\r\na3,0.3,1 \r\na4,0.4,0\r\n",
    "id,score,label\na2,0.9,1\na1,0.2,0\na4,0.6,1\na3,0.4,0\n",
    'id,score\n"a1",0.5\na2,"0.25"\na3,0.5\na4,0.5',  # quoted fields, no final newline
])
def test_the_fast_and_the_row_by_row_reader_agree_on_valid_files(tmp_path: Path,
                                                                  text: str) -> None:
    path = write_csv(tmp_path, text)
    fast = read(path)
    with mock.patch.object(predictions_module, "_valid_table", return_value=None):
        checked = read(path)
    np.testing.assert_array_equal(fast.scores, checked.scores)
    assert (fast.labels is None) == (checked.labels is None)
    if fast.labels is not None:
        np.testing.assert_array_equal(fast.labels, checked.labels)  # type: ignore[arg-type]


def test_files_too_large_to_hold_whole_are_streamed_row_by_row(tmp_path: Path,
                                                               monkeypatch) -> None:
    path = write_csv(tmp_path, rows([(i, "0.5") for i in IDS]))
    monkeypatch.setattr(predictions_module, "FAST_READ_BYTES", path.stat().st_size - 1)
    with mock.patch.object(predictions_module, "_checked_table",
                           wraps=predictions_module._checked_table) as streamed:
        assert read(path).ids == IDS
    assert streamed.called


@pytest.mark.parametrize("text", [
    "id,score\na1,0.5\n\na2,0.5\na3,0.5\na4,0.5\n",  # a blank line inside
    "id,score\na1,0.5\na1,0.5\na3,0.5\na4,0.5\n",
    "id,score\na1,nan\na2,0.5\na3,0.5\na4,0.5\n",
    "id,score\na1,1.5\na2,0.5\na3,0.5\na4,0.5\n",
    "id,score\n ,0.5\na2,0.5\na3,0.5\na4,0.5\n",
    "id,score,label\na1,0.5,2\na2,0.5,0\na3,0.5,0\na4,0.5,0\n",
    "id,score\na1,0.5,x\na2,0.5\na3,0.5\na4,0.5\n",
    "id;score\na1;0.5\n",
    "id,score\n",
])
def test_the_fast_reader_leaves_every_problem_to_the_row_by_row_reader(
        tmp_path: Path, text: str) -> None:
    path = write_csv(tmp_path, text)
    with path.open(newline="") as handle:
        assert predictions_module._valid_table(handle, 10) is None


# --- predictions: bad header, empty ----------------------------------------------------------


def test_it_rejects_a_wrong_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([(i, "0.5") for i in IDS], header="id,prob"))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert 'must be "id,score" or "id,score,label"' in caught.value.message
    assert '"id,prob"' in caught.value.message


def test_it_hints_at_index_false_when_pandas_wrote_its_index(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ",id,score\n0,a1,0.5\n")

    with pytest.raises(InvalidPredictions, match="index=False"):
        read(path)


def test_it_asks_for_commas_when_another_separator_was_used(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id;score\na1;0.5\n")

    with pytest.raises(InvalidPredictions, match='it is "id;score". Separate columns with commas'):
        read(path)


def test_it_rejects_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidPredictions, match="predictions file is empty"):
        read(write_csv(tmp_path, ""))


def test_it_rejects_a_header_without_rows(tmp_path: Path) -> None:
    with pytest.raises(InvalidPredictions, match="header but no prediction rows"):
        read(write_csv(tmp_path, "id,score\n"))


def test_it_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path, b"id,score\n\xe9t\xe9,0.5\n")

    with pytest.raises(InvalidPredictions, match="not UTF-8"):
        read(path)


def test_it_rejects_a_row_with_the_wrong_number_of_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,score\na1,0.5,1\n")

    with pytest.raises(InvalidPredictions, match="Row 2: expected 2 columns, found 3"):
        read(path)


# --- predictions: bad values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "problem"),
    [
        ("nan", 'score "nan" is not a finite number'),
        ("NaN", 'score "NaN" is not a finite number'),
        ("inf", 'score "inf" is not a finite number'),
        ("-inf", 'score "-inf" is not a finite number'),
        ("1.5", 'score "1.5" is outside [0, 1]'),
        ("-0.1", 'score "-0.1" is outside [0, 1]'),
        ("high", 'score "high" is not a number'),
        ("", "the score is empty"),
    ],
)
def test_it_rejects_a_bad_score_naming_row_and_id(tmp_path: Path, score: str, problem: str) -> None:
    path = write_csv(tmp_path, rows([("a1", "0.1"), ("a2", score), ("a3", "0.3"), ("a4", "0.4")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert caught.value.message == f'Row 3 (id "a2"): {problem}.'


def test_it_reports_the_row_number_as_in_a_spreadsheet(tmp_path: Path) -> None:
    ids = [str(n) for n in range(118, 130)]
    pairs = [(i, "0.5") for i in ids]
    pairs[5] = ("123", "1.5")  # sixth prediction: row 7 with the header as row 1
    path = write_csv(tmp_path, rows(pairs))

    with pytest.raises(InvalidPredictions) as caught:
        read(path, ids)

    assert caught.value.message == 'Row 7 (id "123"): score "1.5" is outside [0, 1].'


def test_it_rejects_a_label_other_than_0_or_1(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,score,label\na1,0.5,1\na2,0.5,2\n")

    with pytest.raises(InvalidPredictions, match=r'Row 3 \(id "a2"\): label "2" must be 0 or 1'):
        read(path)


def test_it_names_the_first_five_bad_rows_then_counts_the_rest(tmp_path: Path) -> None:
    ids = [f"p{n}" for n in range(9)]
    path = write_csv(tmp_path, rows([(i, "2") for i in ids]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path, ids)

    message = caught.value.message
    assert 'Row 2 (id "p0")' in message
    assert 'Row 6 (id "p4")' in message
    assert "p5" not in message
    assert message.endswith("And 4 more rows with problems.")


def test_it_shortens_long_values_quoted_back(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,score\na1," + "x" * 5000 + "\n")

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert len(caught.value.message) < 200


# --- predictions: id set ---------------------------------------------------------------------


def test_it_rejects_missing_ids_naming_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([("a1", "0.5")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert caught.value.message == '3 ids are missing, e.g. "a2", "a3", "a4".'


def test_it_names_at_most_five_missing_ids(tmp_path: Path) -> None:
    ids = [f"m{n}" for n in range(9)]
    path = write_csv(tmp_path, rows([("m0", "0.5")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path, ids)

    assert caught.value.message == (
        '8 ids are missing, e.g. "m1", "m2", "m3", "m4", "m5" and 3 more.'
    )


def test_it_rejects_duplicate_ids_naming_their_rows(tmp_path: Path) -> None:
    ids = [f"i{n}" for n in range(10)] + ["x9"]
    pairs = [(i, "0.5") for i in ids]
    pairs.insert(2, ("x9", "0.1"))  # row 4
    pairs.insert(10, ("x9", "0.2"))  # row 12 once the first x9 is in place
    path = write_csv(tmp_path, rows(pairs))

    with pytest.raises(InvalidPredictions) as caught:
        read(path, ids)

    assert caught.value.message.startswith('id "x9" appears more than once (rows 4, 12 and ')


def test_it_rejects_an_id_given_twice_with_the_exact_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([("a1", "0.1"), ("a2", "0.2"), ("a1", "0.3"), ("a3", "0"),
                                     ("a4", "0")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert caught.value.message == 'id "a1" appears more than once (rows 2 and 4).'


def test_it_rejects_ids_that_are_not_in_the_evaluation_set(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([(i, "0.5") for i in (*IDS, "z1", "z2")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert caught.value.message == '2 ids are not part of this evaluation set, e.g. "z1", "z2".'


def test_it_reports_every_id_problem_in_one_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([("a1", "0.1"), ("a1", "0.2"), ("zz", "0.3")]))

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    message = caught.value.message
    assert 'id "a1" appears more than once' in message
    assert '1 id is not part of this evaluation set, e.g. "zz".' in message
    assert '3 ids are missing, e.g. "a2", "a3", "a4".' in message


# --- predictions: limits and hostile files ---------------------------------------------------


def test_it_rejects_a_2_gb_file_by_its_size_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3 + 1)  # sparse: costs no disk; all NUL bytes if ever read

    with pytest.raises(InvalidPredictions) as caught:
        read(path)

    assert caught.value.message == "The predictions file is 2 GB, larger than the 200 MB limit."


def test_it_stops_at_the_row_limit(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows([(i, "0.5") for i in IDS]))

    with pytest.raises(InvalidPredictions, match="more than the limit of 3 rows"):
        read(path, limits=UploadLimits(max_rows=3))


def test_it_refuses_a_predictions_file_that_is_a_symlink(tmp_path: Path) -> None:
    secret = write_csv(tmp_path, "host secret\n", name="secret.txt")
    link = tmp_path / "predictions.csv"
    link.symlink_to(secret)

    with pytest.raises(InvalidPredictions, match="not a link") as caught:
        read(link)

    assert "secret" not in caught.value.message


def test_it_refuses_a_predictions_file_that_is_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    os.mkfifo(path)

    with pytest.raises(InvalidPredictions, match="must be a regular file"):
        read(path)


def test_it_reports_a_missing_predictions_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidPredictions, match="not found"):
        read(tmp_path / "predictions.csv")


# --- predictions: upload-time check ----------------------------------------------------------


def test_upload_check_accepts_a_well_formed_file(tmp_path: Path) -> None:
    check_predictions_upload(write_csv(tmp_path, "id,score,label\nanything,0.5,1\n"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id,prob\na,0.5\n", "header must be"),
        ("id,score\na,nan\n", "not a finite number"),
        ("id,score\na,1.5\n", "outside [0, 1]"),
        ("id,score\na,0.5\na,0.6\n", 'id "a" appears more than once (rows 2 and 3)'),
        ("id,score\n", "no prediction rows"),
        ("", "empty"),
    ],
)
def test_upload_check_raises_invalid_upload(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(InvalidUpload) as caught:
        check_predictions_upload(write_csv(tmp_path, text))

    assert problem in caught.value.message


def test_upload_check_rejects_a_2_gb_file_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "upload.csv"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3 + 1)

    with pytest.raises(InvalidUpload, match="larger than the 200 MB limit"):
        check_predictions_upload(path)


# --- bundles ---------------------------------------------------------------------------------

PREDICT = b"print('hello')\n"


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def zip_with_mode(path: Path, name: str, mode: int, data: bytes) -> Path:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix, so external_attr carries st_mode
    info.external_attr = mode << 16
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", PREDICT)
        archive.writestr(info, data)
    return path


# Offsets of fields in the local file header and the central-directory header (APPNOTE 4.3).
_HEADER_FIELDS = {"flags": ("<H", 6, 8), "file_size": ("<L", 22, 24)}


def patch_headers(path: Path, name: bytes, field: str, value: int) -> None:
    """Overwrite a header field of member `name`, as an attacker crafting a zip can."""
    fmt, local_at, central_at = _HEADER_FIELDS[field]
    data = bytearray(path.read_bytes())
    for signature, field_at, name_at in ((b"PK\x03\x04", local_at, 30),
                                         (b"PK\x01\x02", central_at, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(name)] == name:
                struct.pack_into(fmt, data, start + field_at, value)
            start += 4
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("predict.py", PREDICT)
        with archive.open("weights.bin", "w") as member:
            for _ in range(300):
                member.write(zeros)
    return path


def test_it_accepts_a_bundle_with_predict_py_at_the_root(tmp_path: Path) -> None:
    check_bundle(make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "model/w.bin": b"w"}))


def test_it_rejects_a_bundle_that_is_not_a_zip(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,score\n", name="b.zip")

    with pytest.raises(InvalidUpload, match="not a zip archive"):
        check_bundle(path)


def test_it_rejects_a_bundle_without_predict_py(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"main.py": PREDICT})

    with pytest.raises(InvalidUpload, match="no predict.py at its root"):
        check_bundle(path)


def test_it_requires_predict_py_at_the_root_not_in_a_folder(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"mymodel/predict.py": PREDICT, "mymodel/w.bin": b"w"})

    with pytest.raises(InvalidUpload) as caught:
        check_bundle(path)

    message = caught.value.message
    assert 'must be at the root of the zip, but it is at "mymodel/predict.py"' in message
    assert "not the folder itself" in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", '"../evil.py" points outside the archive'),
        ("model/../../evil.py", "points outside the archive"),
        ("/etc/x", '"/etc/x" has an absolute path'),
        ("C:/x.py", "has an absolute path"),
        ("..\\evil.py", "has a backslash in its path"),
    ],
)
def test_it_rejects_members_escaping_the_bundle(tmp_path: Path, name: str, problem: str) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, name: b"x"})

    with pytest.raises(InvalidUpload) as caught:
        check_bundle(path)

    assert caught.value.message.startswith("The zip cannot be used:")
    assert problem in caught.value.message


def test_it_names_at_most_five_bad_members(tmp_path: Path) -> None:
    members = {"predict.py": PREDICT} | {f"../e{n}.py": b"x" for n in range(8)}

    with pytest.raises(InvalidUpload) as caught:
        check_bundle(make_zip(tmp_path / "b.zip", members))

    assert '"../e4.py"' in caught.value.message
    assert '"../e5.py"' not in caught.value.message
    assert caught.value.message.endswith("And 3 more problem members.")


def test_it_rejects_a_symlink_member(tmp_path: Path) -> None:
    path = zip_with_mode(tmp_path / "b.zip", "data", stat.S_IFLNK | 0o777, b"/etc/passwd")

    with pytest.raises(InvalidUpload, match='"data" is a symbolic link'):
        check_bundle(path)


def test_it_rejects_a_device_member(tmp_path: Path) -> None:
    path = zip_with_mode(tmp_path / "b.zip", "sda", stat.S_IFBLK | 0o600, b"")

    with pytest.raises(InvalidUpload, match='"sda" is a special file'):
        check_bundle(path)


def test_it_rejects_a_member_given_twice(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", PREDICT)
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("predict.py", b"import os")

    with pytest.raises(InvalidUpload, match='"predict.py" appears more than once'):
        check_bundle(path)


def test_it_rejects_an_encrypted_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "secret.bin": b"s" * 100})
    patch_headers(path, b"secret.bin", "flags", 0x1)

    with pytest.raises(InvalidUpload, match='"secret.bin" is encrypted'):
        check_bundle(path)


def test_it_rejects_a_zip_bomb(zip_bomb: Path) -> None:
    assert zip_bomb.stat().st_size < 2 * 1024**2

    with pytest.raises(InvalidUpload) as caught:
        check_bundle(zip_bomb)

    assert "looks like a zip bomb" in caught.value.message


def test_it_rejects_a_zip_bomb_member_even_under_the_overall_ratio(tmp_path: Path) -> None:
    # Incompressible padding keeps the archive-wide ratio low; the member's own ratio is not.
    padding = os.urandom(3 * 1024**2)
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "pad.bin": padding,
                                         "zeros.bin": bytes(4 * 1024**2)})

    with pytest.raises(InvalidUpload, match='"zeros.bin" expands .* times .*zip bomb'):
        check_bundle(path)


def test_it_rejects_a_bundle_whose_declared_total_is_too_large(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "w.bin": os.urandom(3000)})

    with pytest.raises(InvalidUpload, match="expands to 2.9 KB, more than the 2 KB limit"):
        check_bundle(path, limits=UploadLimits(max_bundle_uncompressed=2048))


def test_it_rejects_a_bundle_with_too_many_members(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT} | {f"f{n}": b"" for n in range(5)})

    with pytest.raises(InvalidUpload, match="The zip has 6 files; the limit is 3"):
        check_bundle(path, limits=UploadLimits(max_bundle_members=3))


def test_it_rejects_a_bundle_over_the_upload_size(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "w.bin": os.urandom(5000)})

    with pytest.raises(InvalidUpload, match="larger than the 1 KB limit"):
        check_bundle(path, limits=UploadLimits(max_bundle_bytes=1024))


# --- bundle extraction -----------------------------------------------------------------------


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def test_it_extracts_with_permissions_a_container_user_can_read(
    tmp_path: Path, strict_umask: None
) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "model/": b"",
                                         "model/deep/w.bin": b"weights"})
    dest = tmp_path / "out"

    extract_bundle(path, dest)

    assert (dest / "predict.py").read_bytes() == PREDICT
    assert (dest / "model" / "deep" / "w.bin").read_bytes() == b"weights"
    assert stat.S_IMODE((dest / "predict.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "model" / "deep" / "w.bin").stat().st_mode) == 0o644
    for folder in (dest, dest / "model", dest / "model" / "deep"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_it_does_not_extract_a_rejected_bundle(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "../evil.py": b"x"})
    dest = tmp_path / "out"

    with pytest.raises(InvalidUpload, match="outside the archive"):
        extract_bundle(path, dest)

    assert not dest.exists()
    assert not (tmp_path / "evil.py").exists()


def test_it_aborts_extraction_when_the_central_directory_lies_about_sizes(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "big.bin": bytes(5 * 1024**2)})
    patch_headers(path, b"big.bin", "file_size", 1000)
    limits = UploadLimits(max_bundle_uncompressed=1024**2)
    check_bundle(path, limits=limits)  # the lie gets past every declared-size check
    dest = tmp_path / "out"

    with pytest.raises(InvalidUpload, match='damaged: "big.bin" could not be decompressed'):
        extract_bundle(path, dest, limits=limits)

    assert not dest.exists()


def test_it_counts_real_bytes_when_declared_sizes_were_trusted(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "a.bin": os.urandom(600_000),
                                         "b.bin": os.urandom(600_000)})
    dest = tmp_path / "out"
    dest.mkdir()

    # Simulates declared sizes that fooled the up-front checks: only the byte counter is left.
    with (mock.patch("heldout_kernel.validation.bundle._check_totals", autospec=True,
                     return_value=None) as totals,
          pytest.raises(InvalidUpload) as caught):
        extract_bundle(path, dest, limits=UploadLimits(max_bundle_uncompressed=1_000_000))

    totals.assert_called_once()
    assert "more than the 976.6 KB limit" in caught.value.message
    assert '"b.bin"' in caught.value.message
    assert list(dest.iterdir()) == []  # the caller's folder is kept, emptied


def test_it_rejects_a_file_that_collides_with_a_folder(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT, "m": b"x", "m/w.bin": b"y"})
    dest = tmp_path / "out"

    with pytest.raises(InvalidUpload, match='"m/w.bin" conflicts'):
        extract_bundle(path, dest)

    assert not dest.exists()


def test_it_refuses_to_extract_over_existing_files(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"predict.py": PREDICT})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    with pytest.raises(ValueError, match="empty directory"):
        extract_bundle(path, dest)

    assert (dest / "keep.txt").read_text() == "mine"


# --- image archives --------------------------------------------------------------------------


def _add(archive: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data))


def _layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        _add(layer, "app/predict.py", PREDICT)
    return buffer.getvalue()


def make_image(
    path: Path, *, images: int = 1, oci: bool = False, gz: bool = False,
    extra: Sequence[tuple[str, bytes, dict[str, object]]] = (), manifest: bool = True,
    config_name: str | None = None,
) -> str:
    """Write a `docker save`-shaped archive; return the config digest Docker would report."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    digest = hashlib.sha256(config).hexdigest()
    layer = _layer()
    layer_digest = hashlib.sha256(layer).hexdigest()
    if oci:
        members = [(f"blobs/sha256/{digest}", config), (f"blobs/sha256/{layer_digest}", layer)]
    else:
        members = [(f"{digest}.json", config), (f"{layer_digest}/layer.tar", layer)]
    entries = [{"Config": config_name or members[0][0], "RepoTags": [f"team/model:v{n}"],
                "Layers": [members[1][0]]} for n in range(images)]
    with tarfile.open(path, "w:gz" if gz else "w") as archive:
        for name, data in members:
            _add(archive, name, data)
        for name, data, attrs in extra:
            _add(archive, name, data, **attrs)
        if manifest:
            _add(archive, "manifest.json", json.dumps(entries).encode())
    return f"sha256:{digest}"


def test_it_returns_the_config_digest_of_a_legacy_docker_save(tmp_path: Path) -> None:
    digest = make_image(tmp_path / "image.tar")

    assert check_image_archive(tmp_path / "image.tar") == digest


def test_it_returns_the_config_digest_of_an_oci_layout_docker_save(tmp_path: Path) -> None:
    digest = make_image(tmp_path / "image.tar", oci=True)

    assert check_image_archive(tmp_path / "image.tar") == digest


def test_it_accepts_a_gzipped_image_archive(tmp_path: Path) -> None:
    digest = make_image(tmp_path / "image.tar.gz", gz=True)

    assert check_image_archive(tmp_path / "image.tar.gz") == digest


def test_it_follows_a_config_symlink_inside_the_archive(tmp_path: Path) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    digest = hashlib.sha256(config).hexdigest()
    link = ("legacy/config.json", b"", {"type": tarfile.SYMTYPE,
                                        "linkname": f"../blobs/sha256/{digest}"})
    make_image(tmp_path / "image.tar", oci=True, extra=[link])

    assert check_image_archive(tmp_path / "image.tar") == f"sha256:{digest}"


def test_it_rejects_an_image_archive_that_is_not_a_tar(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,score\na,0.5\n" * 100, name="image.tar")

    with pytest.raises(InvalidUpload, match="not a Docker image archive"):
        check_image_archive(path)


def test_it_rejects_a_corrupt_gzip_image_archive(tmp_path: Path) -> None:
    path = tmp_path / "image.tar.gz"
    path.write_bytes(b"\x1f\x8b" + os.urandom(4000))

    with pytest.raises(InvalidUpload, match="not a Docker image archive"):
        check_image_archive(path)


def test_it_rejects_an_image_archive_without_manifest(tmp_path: Path) -> None:
    make_image(tmp_path / "image.tar", manifest=False)

    with pytest.raises(InvalidUpload, match="no manifest.json.*docker save"):
        check_image_archive(tmp_path / "image.tar")


def test_it_rejects_an_archive_with_two_images(tmp_path: Path) -> None:
    make_image(tmp_path / "image.tar", images=2)

    with pytest.raises(InvalidUpload) as caught:
        check_image_archive(tmp_path / "image.tar")

    assert "contains 2 images" in caught.value.message
    assert '"team/model:v0", "team/model:v1"' in caught.value.message
    assert "exactly one" in caught.value.message


def test_it_rejects_a_config_whose_content_does_not_match_its_digest(tmp_path: Path) -> None:
    forged = "0" * 64
    make_image(tmp_path / "image.tar", extra=[(f"{forged}.json", b"{}", {})],
               config_name=f"{forged}.json")

    with pytest.raises(InvalidUpload, match="does not match its digest"):
        check_image_archive(tmp_path / "image.tar")


def test_it_rejects_a_manifest_naming_a_missing_config(tmp_path: Path) -> None:
    make_image(tmp_path / "image.tar", config_name="blobs/sha256/" + "f" * 64)

    with pytest.raises(InvalidUpload, match="missing from the archive"):
        check_image_archive(tmp_path / "image.tar")


def test_it_rejects_an_image_archive_over_the_size_limit(tmp_path: Path) -> None:
    make_image(tmp_path / "image.tar")

    with pytest.raises(InvalidUpload, match="image archive is .*, larger than the 4 KB limit"):
        check_image_archive(tmp_path / "image.tar", limits=UploadLimits(max_image_bytes=4096))


def test_it_rejects_a_gzipped_image_too_large_once_uncompressed(tmp_path: Path) -> None:
    zeros = ("weights.bin", bytes(10 * 1024**2), {})
    make_image(tmp_path / "image.tar.gz", gz=True, extra=[zeros])
    assert (tmp_path / "image.tar.gz").stat().st_size < 1024**2

    with pytest.raises(InvalidUpload, match="larger than the 1 MB limit once uncompressed"):
        check_image_archive(tmp_path / "image.tar.gz", limits=UploadLimits(
            max_image_bytes=1024**2, max_image_unpacked=1024**2, max_image_ratio=10**6))


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (("../evil", b"x", {}), '"../evil" points outside the archive'),
        (("/etc/cron.d/x", b"x", {}), '"/etc/cron.d/x" has an absolute path'),
        (("up", b"", {"type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}),
         '"up" links outside the archive'),
        (("abs", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
         '"abs" is a link to an absolute path'),
        (("hard", b"", {"type": tarfile.LNKTYPE, "linkname": "../x"}),
         '"hard" links outside the archive'),
        (("dev", b"", {"type": tarfile.CHRTYPE}), '"dev" is a special file'),
    ],
)
def test_it_rejects_image_members_escaping_the_archive(
    tmp_path: Path, member: tuple[str, bytes, dict[str, object]], problem: str
) -> None:
    make_image(tmp_path / "image.tar", extra=[member])

    with pytest.raises(InvalidUpload) as caught:
        check_image_archive(tmp_path / "image.tar")

    assert caught.value.message.startswith("The image archive cannot be used:")
    assert problem in caught.value.message


# --- kind sniffing ---------------------------------------------------------------------------


def test_it_detects_each_kind_by_content_not_name(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path, "\ufeffid,score\na,0.5\n", name="upload.part")
    zip_path = make_zip(tmp_path / "bundle.part", {"predict.py": PREDICT})
    make_image(tmp_path / "image.part")
    make_image(tmp_path / "image-gz.part", gz=True)

    assert detect_kind(csv_path) == "predictions"
    assert detect_kind(zip_path) == "bundle"
    assert detect_kind(tmp_path / "image.part") == "image"
    assert detect_kind(tmp_path / "image-gz.part") == "image"


def test_it_rejects_a_gzipped_file_that_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv.gz"
    path.write_bytes(gzip.compress(b"id,score\na,0.5\n"))

    with pytest.raises(InvalidUpload, match="gzipped but is not a Docker image"):
        detect_kind(path)


def test_it_rejects_an_unrecognised_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04\x95" + bytes(100))

    with pytest.raises(InvalidUpload, match="Unrecognised file"):
        detect_kind(path)


def test_it_rejects_an_empty_file_when_detecting(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="empty"):
        detect_kind(write_csv(tmp_path, ""))
