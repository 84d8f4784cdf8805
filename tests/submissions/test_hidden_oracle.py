"""Predictions files are scored only where the evaluation inputs are published: on hidden
inputs a predictions file is an oracle for the hidden labels (one id at 0.9 and the rest at
0.5 reads that id's label off the AUROC), and its validation messages would name hidden ids.
Import, the admin (Phase.clean) and the submission service all refuse it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from challenges.bundles import import_challenge
from challenges.exceptions import BundleError
from submissions.exceptions import KindNotAllowed
from submissions.services import submission_create
from submissions.uploads import stage_chunks
from tests.bundles import phase_spec, write_bundle
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

CSV = b"id,score\n" + b"".join(b"c%03d,0.5\n" % i for i in range(40))


def test_import_refuses_predictions_on_hidden_inputs(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", phases=[phase_spec(
        submission_kinds=["predictions", "bundle"])])

    with pytest.raises(BundleError) as refused:
        import_challenge(bundle)

    assert any("public_inputs" in problem for problem in refused.value.problems)


def test_published_inputs_become_public_files_and_allow_predictions(tmp_path: Path) -> None:
    evaluation = {"inputs": "hidden/inputs", "labels": "hidden/labels.csv",
                  "public_inputs": True}
    bundle = write_bundle(tmp_path / "b", phases=[phase_spec(
        submission_kinds=["predictions"], evaluation=evaluation)])

    challenge, _ = import_challenge(bundle)

    phase = challenge.phases.get()
    assert phase.inputs_published and phase.evaluation_set.inputs_public
    names = set(challenge.public_files.values_list("name", flat=True))
    assert "hidden/inputs/features.csv" in names
    phase.full_clean()


def test_the_admin_refuses_predictions_on_hidden_inputs(tmp_path: Path) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "b"))
    phase = challenge.phases.get()
    phase.submission_kinds = ["bundle", "predictions"]

    with pytest.raises(ValidationError) as refused:
        phase.full_clean()

    assert "public_inputs" in str(refused.value)


def test_the_service_refuses_predictions_on_hidden_inputs_whatever_the_row_says(
    tmp_path: Path, alice
) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "b"))
    phase = challenge.phases.get()
    phase.__class__.objects.filter(pk=phase.pk).update(submission_kinds=["predictions"])
    phase.refresh_from_db()
    team = TeamFactory(challenge=challenge, captain=alice)
    staged = stage_chunks([CSV], filename="p.csv", max_bytes=10**6)

    with pytest.raises(KindNotAllowed, match="public_inputs"):
        submission_create(phase=phase, team=team, user=alice, kind="predictions", staged=staged)
    assert not staged.path.exists()
