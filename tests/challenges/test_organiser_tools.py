"""Issue #21, item 7 (a, b): the demo's organiser may import a bundle, and the admin's file
checks of an evaluation set list every problem of its files, in the import's words."""

from __future__ import annotations

import csv
import importlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from challenges.bundles import import_challenge
from challenges.exceptions import BundleError
from challenges.models import Challenge, EvaluationSet
from challenges.selectors import ORGANISERS_GROUP
from core.models import AuditEvent
from tests.bundles import write_bundle

pytestmark = pytest.mark.django_db


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def demo_run() -> Any:
    # demo/run.py sets DJANGO_DEBUG in the environment as it loads: keep that out of the
    # test process.
    with mock.patch.dict(os.environ):
        return importlib.import_module("demo.run")


# --- (a) the demo's organiser ------------------------------------------------------------


def test_the_demo_organiser_is_in_the_organisers_group_and_imports_a_bundle(
        client, tmp_path) -> None:
    import_challenge(write_bundle(tmp_path / "demo-bundle"))  # the demo's challenges

    people = demo_run().setup_people()

    olga = get_user_model().objects.get(username="olga")
    assert people["olga"] == olga and olga.is_staff
    assert olga.groups.filter(name=ORGANISERS_GROUP).exists()
    client.force_login(olga)
    assert 'id="import-bundle"' in client.get(
        reverse("admin:challenges_challenge_changelist")).content.decode()
    upload = SimpleUploadedFile("new.zip", zipped(
        write_bundle(tmp_path / "new", slug="olgas-own", title="Olga's own")))
    response = client.post(reverse("admin:challenges_challenge_import"), {"bundle": upload})

    assert response.status_code == 302, response.content.decode()[:3000]
    created = Challenge.objects.get(slug="olgas-own")
    assert created.is_draft and list(created.organisers.all()) == [olga]
    assert AuditEvent.objects.get(verb="challenge.imported", challenge_id=created.pk
                                  ).actor_id == olga.pk


def test_running_the_demo_set_up_twice_keeps_one_membership(tmp_path) -> None:
    import_challenge(write_bundle(tmp_path / "demo-bundle"))
    run = demo_run()
    run.setup_people()
    run.setup_people()
    group = Group.objects.get(name=ORGANISERS_GROUP)
    assert list(group.user_set.values_list("username", flat=True)) == ["olga"]


# --- (b) every problem of an evaluation set's files ----------------------------------------


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def bad_labels(path: Path) -> Path:
    """Four problems on three lines, and one id the inputs do not have."""
    rows = [["id", "label", "split", "sex"]]
    rows += [[f"c{i:03d}", i % 3 == 0 and 1 or 0, "public" if i % 2 else "private", "F"]
             for i in range(40)]
    rows[3][1] = "yes"                          # line 4
    rows[5][2] = "test"                         # line 6
    rows[9] = ["c001", "2", "public", "M"]      # line 10: duplicate id, bad label
    rows.append(["c999", "0", "public", "F"])  # no input
    return write_csv(path, rows)


EXPECTED = [
    "label 'yes' on line 4 is not 0 or 1.",
    "split 'test' on line 6 is not public/private.",
    "duplicate id 'c001' in labels (line 10, first on line 3).",
    "label '2' on line 10 is not 0 or 1.",
    "input ids and label ids differ (1 labelled ids have no input, 1 inputs have no label).",
]


def test_the_import_lists_every_problem_of_a_labels_file(tmp_path) -> None:
    root = write_bundle(tmp_path / "bundle")
    bad_labels(root / "hidden/labels.csv")

    with pytest.raises(BundleError) as raised:
        import_challenge(root)

    problems = [p.split(": ", 1)[1] for p in raised.value.problems]
    assert problems == EXPECTED
    assert all(p.startswith("phase 'leaderboard' evaluation: ") for p in raised.value.problems)


@pytest.fixture
def imported(tmp_path, olga) -> Challenge:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    challenge.organisers.add(olga)
    return challenge


def test_the_admin_lists_every_problem_of_an_uploaded_labels_file_in_the_imports_words(
        client, imported, olga, tmp_path) -> None:
    hidden = imported.evaluation_sets.get(name="hidden/inputs")
    before = dict(hidden.checksums)
    labels = bad_labels(tmp_path / "labels.csv")
    client.force_login(olga)

    response = client.post(
        reverse("admin:challenges_evaluationset_change", args=[hidden.pk]),
        {"name": hidden.name, "labels_csv": SimpleUploadedFile("labels.csv",
                                                                labels.read_bytes())},
        follow=True)

    shown = [str(m) for m in response.context["messages"]]
    assert shown == [f"evaluation set 'hidden/inputs': {p}" for p in EXPECTED] + [
        "Nothing was changed: the files above were refused."]
    hidden.refresh_from_db()
    assert hidden.checksums == before
    assert not AuditEvent.objects.filter(verb="evaluationset.files_replaced").exists()


def test_the_admin_lists_problems_of_inputs_and_labels_together(
        client, imported, olga, tmp_path) -> None:
    hidden = imported.evaluation_sets.get(name="hidden/inputs")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_csv(inputs / "features.csv", [["id", "age", "label"], *[
        [f"c{i:03d}", 50, 0] for i in [*range(40), 7]]])
    labels = bad_labels(tmp_path / "labels.csv")
    client.force_login(olga)

    response = client.post(
        reverse("admin:challenges_evaluationset_change", args=[hidden.pk]),
        {"name": hidden.name,
         "inputs_zip": SimpleUploadedFile("inputs.zip", zipped(inputs)),
         "labels_csv": SimpleUploadedFile("labels.csv", labels.read_bytes())}, follow=True)

    shown = [str(m).split(": ", 1)[-1] for m in response.context["messages"]]
    assert EXPECTED[:4] == shown[:4]
    assert "features.csv contains a `label` column; labels must not be inputs." in shown
    assert "features.csv lists some ids more than once." in shown
    assert EvaluationSet.objects.get(pk=hidden.pk).checksums == imported.evaluation_sets.get(
        pk=hidden.pk).checksums


def test_a_labels_file_wrong_on_every_line_names_its_first_lines(tmp_path) -> None:
    root = write_bundle(tmp_path / "bundle")
    write_csv(root / "hidden/labels.csv", [["id", "label"], *[[f"c{i:03d}", "x"]
                                                               for i in range(40)]])

    with pytest.raises(BundleError) as raised:
        import_challenge(root)

    problems = raised.value.problems
    assert len(problems) == 21
    assert problems[0].endswith("label 'x' on line 2 is not 0 or 1.")
    assert problems[19].endswith("label 'x' on line 21 is not 0 or 1.")
    assert problems[20].endswith("20 more problems in the labels file (the first are listed "
                                 "above).")
