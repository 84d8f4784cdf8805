"""Issue #21, item 5, on the real engine: the starter kit's test-locally.sh works on an engine
that lacks the runtime image. It loads the site's archive (from the kit's folder, or
downloaded from the live site with the kit's personal link), checks its sha256 before
`docker load`, and passes; a damaged archive is never loaded.

The shared `heldout-runtime:<hash>` tag stays untouched (other tests and engineers run in it):
the kit is made to name a test-only tag of the same image, whose archive is saved once for
this module; each test removes that tag (only ever an extra tag of the runtime image) first.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from challenges import starter_kit
from challenges.bundles import import_challenge
from challenges.models import Phase
from heldout_kernel import runtime_image as images
from tests.bundles import write_bundle
from tests.factories import UserFactory, accept_terms

pytestmark = [pytest.mark.docker]


def image_id(tag: str) -> str | None:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def untag(tag: str) -> None:
    """Remove the test-only tag, and only while the shared runtime tag still holds the same
    image (so this never deletes the image itself)."""
    own = image_id(tag)
    if own is None:
        return
    assert image_id(images.runtime_image_tag()) == own, "refusing to remove the last tag"
    subprocess.run(["docker", "rmi", tag], capture_output=True, check=True)


@pytest.fixture(scope="module")
def test_tag_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[images.RuntimeArchive]:
    runtime = images.ensure_runtime_image()
    tag = f"heldout-kit-test-{uuid.uuid4().hex[:10]}:{runtime.split(':')[1]}"
    subprocess.run(["docker", "tag", runtime, tag], check=True)
    try:
        yield images.export_runtime_archive(directory=tmp_path_factory.mktemp("archives"),
                                            tag=tag)
    finally:
        untag(tag)


@pytest.fixture
def kit_tag(settings, test_tag_archive: images.RuntimeArchive) -> Iterator[str]:
    """The kit (and the site) name the test-only tag; the engine does not have it."""
    settings.HELDOUT_RUNTIME_ARCHIVE_DIR = test_tag_archive.path.parent
    untag(test_tag_archive.tag)
    with mock.patch.object(starter_kit, "runtime_tag", autospec=True,
                           return_value=test_tag_archive.tag):
        yield test_tag_archive.tag
    untag(test_tag_archive.tag)


@pytest.fixture
def phase(tmp_path: Path) -> Phase:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    return challenge.phases.get()


def download_kit(phase: Phase, folder: Path, **extra: str) -> Path:
    alice = UserFactory(username="alice")
    accept_terms(phase.challenge, alice)
    client = Client()
    client.force_login(alice)
    url = reverse("challenges:starter_kit", args=[phase.challenge.slug, phase.slug])
    response = client.get(url, **extra)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as kit:
        kit.extractall(folder)
    return folder


def run_kit(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "test-locally.sh"], cwd=folder, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.django_db
def test_the_kit_loads_the_archive_beside_it_and_passes(kit_tag, test_tag_archive, phase,
                                                        tmp_path):
    folder = download_kit(phase, tmp_path / "kit")
    shutil.copy(test_tag_archive.path, folder / test_tag_archive.name)
    assert image_id(kit_tag) is None

    done = run_kit(folder)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Loaded image: {kit_tag}" in done.stdout
    assert "OK: 10 predictions" in done.stdout
    assert image_id(kit_tag) == image_id(images.runtime_image_tag())
    again = run_kit(folder)  # the engine keeps it: no second load
    assert again.returncode == 0 and "Loaded image" not in again.stdout


@pytest.mark.django_db(transaction=True)
def test_the_kit_downloads_the_archive_from_the_site_and_passes(kit_tag, test_tag_archive,
                                                                 phase, live_server, tmp_path):
    host = live_server.url.removeprefix("http://")
    folder = download_kit(phase, tmp_path / "kit", HTTP_HOST=host)
    assert image_id(kit_tag) is None

    done = run_kit(folder)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"downloading {test_tag_archive.name}" in done.stdout
    assert f"Loaded image: {kit_tag}" in done.stdout and "OK: 10 predictions" in done.stdout
    assert not (folder / test_tag_archive.name).exists()  # kept out of the bundle's zip


@pytest.mark.django_db
def test_a_damaged_archive_is_never_loaded(kit_tag, test_tag_archive, phase, tmp_path):
    folder = download_kit(phase, tmp_path / "kit")
    damaged = bytearray(test_tag_archive.path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / test_tag_archive.name).write_bytes(bytes(damaged))

    done = run_kit(folder)

    assert done.returncode == 1
    assert "is damaged or not the platform's" in done.stderr
    assert "Loaded image" not in done.stdout and image_id(kit_tag) is None
