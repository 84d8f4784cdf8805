"""Fixtures for end-to-end scoring on the real Docker engine."""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from challenges.bundles import import_challenge
from challenges.models import Team
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.bundles import phase_spec, write_bundle
from tests.factories import accept_terms


@pytest.fixture(scope="session")
def runtime_image() -> str:
    from heldout_kernel.runtime_image import ensure_runtime_image

    return ensure_runtime_image()


def make_bundle_zip(path: Path, predict_source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", predict_source)
    return path


AGE_MODEL = """
import csv, os
rows = list(csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"))))
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(f"{row['id']},{int(row['age']) / 100:.6f}\\n")
"""


@pytest.fixture
def synthetic_phase(db, tmp_path, olga):  # type: ignore[no-untyped-def]
    """An open phase of the synthetic test bundle (hidden set 40 cases, sanity set 10)."""
    bundle = write_bundle(tmp_path / "bundle", phases=[phase_spec(
        limits={"cpus": 1, "memory_mb": 256, "seconds": 20},
        quota={"per_day": 50, "total": 100, "concurrent": 50, "count_failed": False})])
    challenge, _ = import_challenge(bundle)
    challenge.organisers.add(olga)
    return challenge.phases.get()


@pytest.fixture
def team(synthetic_phase, alice, bob):  # type: ignore[no-untyped-def]
    from challenges.services import team_create
    from tests.factories import add_member

    accept_terms(synthetic_phase.challenge, alice)
    created = team_create(challenge=synthetic_phase.challenge, user=alice, name="Alpha")
    add_member(created, bob)
    return created


@pytest.fixture
def enqueue() -> Iterator[mock.MagicMock]:
    """Queueing an evaluation, replaced at its seam: tests call the pipeline themselves."""
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


@pytest.fixture
def submit(tmp_path, enqueue):  # type: ignore[no-untyped-def]
    """Create a submission without enqueueing (tests call the pipeline themselves)."""

    def _submit(phase, team: Team, user, source: str | Path, kind: str = "bundle"):  # type: ignore[no-untyped-def]
        if isinstance(source, str):
            source = make_bundle_zip(tmp_path / f"model-{abs(hash(source))}.zip", source)
        staged = stage_existing(Path(source), filename=Path(source).name)
        return submission_create(phase=phase, team=team, user=user, kind=kind, staged=staged)

    return _submit


def containers_named(prefix: str) -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )
    return [name for name in result.stdout.split() if name.startswith(prefix)]


def volumes_named(prefix: str) -> list[str]:
    result = subprocess.run(
        ["docker", "volume", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}"],
        capture_output=True, text=True, check=True,
    )
    return [name for name in result.stdout.split() if name.startswith(prefix)]
