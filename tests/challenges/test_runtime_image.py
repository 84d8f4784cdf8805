"""Issue #21, item 5: the runtime image is downloadable. Its archive (a gzipped `docker save`)
is written once per image, under a file lock, beside a sha256sum-style checksum; the Data tab
offers it after the terms with its sha256, or says it is being prepared and asks a worker for
it once; the download answers a logged-in participant and the personal link in a starter kit
(no session), and a script gets plain-text reasons.

The archive tests save a tiny image of their own (made with `docker import`) on the real
engine; the pages read archive files the tests write where the setting points.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from challenges import starter_kit
from heldout_kernel import runtime_image as images
from tests.factories import UserFactory, accept_terms

EXPORT_TASK = "scoring.tasks.export_runtime_image"


def docker(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


def image_id(tag: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", tag)


def has_image(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                          check=False).returncode == 0


@pytest.fixture
def tiny_image() -> Iterator[str]:
    """An image of one small file, tagged for this test only (never a shared tag)."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        data = b"heldout archive test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    tag = f"heldout-test-tiny-{uuid.uuid4().hex[:10]}:1"
    docker("import", "-", tag, stdin=payload.getvalue())
    yield tag
    if has_image(tag):
        docker("rmi", tag)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "archives"  # made by the export itself


@pytest.mark.docker
def test_the_archive_loads_back_the_image_and_carries_its_checksum(tiny_image, folder):
    made = images.export_runtime_archive(directory=folder, tag=tiny_image)

    assert made.name == tiny_image.replace(":", "-") + ".tar.gz"
    assert made.sha256 == hashlib.sha256(made.path.read_bytes()).hexdigest()
    assert made.size == made.path.stat().st_size
    check = subprocess.run(["sha256sum", "-c", made.name + ".sha256"], cwd=folder,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert images.runtime_archive(directory=folder, tag=tiny_image) == made

    original = image_id(tiny_image)
    docker("rmi", tiny_image)
    assert "Loaded image: " + tiny_image in docker("load", "-i", str(made.path))
    assert image_id(tiny_image) == original


@pytest.mark.docker
def test_concurrent_callers_save_the_image_once(tiny_image, folder):
    real_popen = subprocess.Popen
    saves: list[list[str]] = []

    def slow_save(command, *args, **kwargs):  # type: ignore[no-untyped-def]
        saves.append(command)
        time.sleep(0.5)  # every caller arrives while the first one is still saving
        return real_popen(command, *args, **kwargs)

    results: list[images.RuntimeArchive] = []
    start = threading.Barrier(4)

    def call() -> None:
        start.wait()
        results.append(images.export_runtime_archive(directory=folder, tag=tiny_image))

    with mock.patch.object(images.subprocess, "Popen", autospec=True, side_effect=slow_save):
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert saves == [["docker", "save", tiny_image]]
    assert len(results) == 4 and len(set(results)) == 1
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        results[0].name, results[0].name + ".sha256"]


@pytest.mark.docker
def test_a_failed_save_leaves_nothing_behind(folder):
    missing = f"heldout-test-absent-{uuid.uuid4().hex[:10]}:1"
    with pytest.raises(images.BackendError, match="docker save"):
        images.export_runtime_archive(directory=folder, tag=missing)

    assert images.runtime_archive(directory=folder, tag=missing) is None
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.docker
def test_what_a_killed_saver_left_is_removed_and_the_archive_written(tiny_image, folder):
    folder.mkdir()
    name = images.archive_name(tiny_image)
    leftover = folder / f".{name}.k1ll3d00"
    leftover.write_bytes(b"half an archive")

    made = images.export_runtime_archive(directory=folder, tag=tiny_image)

    assert not leftover.exists()
    assert made.sha256 == hashlib.sha256(made.path.read_bytes()).hexdigest()


# --- The pages -------------------------------------------------------------------------------

ARCHIVE_BYTES = b"\x1f\x8b not really an image, only the bytes the site must serve"


@pytest.fixture
def archive_dir(settings, tmp_path: Path) -> Path:
    folder = tmp_path / "runtime-images"
    folder.mkdir()
    settings.HELDOUT_RUNTIME_ARCHIVE_DIR = folder
    return folder


def finish_archive(folder: Path) -> tuple[str, str]:
    """Write the current recipe's archive as export_runtime_archive leaves it."""
    name = starter_kit.runtime_archive_name()
    (folder / name).write_bytes(ARCHIVE_BYTES)
    digest = hashlib.sha256(ARCHIVE_BYTES).hexdigest()
    (folder / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return name, digest


@pytest.fixture
def send() -> Iterator[mock.MagicMock]:
    with mock.patch("core.dispatch.send", autospec=True) as patched:
        yield patched


def data_tab(client: Client, challenge) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"{challenge.get_absolute_url()}?tab=data")
    assert response.status_code == 200
    return response.content.decode()


def test_the_data_tab_offers_the_archive_and_its_sha256_after_the_terms(
    client, challenge, alice, archive_dir, send
):
    name, digest = finish_archive(archive_dir)
    client.force_login(alice)
    page = data_tab(client, challenge)
    assert f"{name} (accept the terms first)" in page
    assert digest not in page

    accept_terms(challenge, alice)
    page = data_tab(client, challenge)
    link = reverse("challenges:runtime_image", args=[challenge.slug, name])
    assert f'href="{link}"' in page and digest in page
    assert f"docker load -i {name}" in page
    send.assert_not_called()


def test_a_missing_archive_is_being_prepared_and_a_worker_is_asked_once(
    client, challenge, alice, archive_dir, send
):
    accept_terms(challenge, alice)
    client.force_login(alice)
    for _ in range(3):
        page = data_tab(client, challenge)
        assert "is being prepared" in page
    send.assert_called_once_with(EXPORT_TASK)


def test_the_download_serves_the_archive_and_its_checksum_to_a_participant(
    client, challenge, alice, archive_dir, send
):
    name, digest = finish_archive(archive_dir)
    url = reverse("challenges:runtime_image", args=[challenge.slug, name])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(alice)
    refused = client.get(url)
    assert refused.status_code == 302 and "/terms/" in refused["Location"]

    accept_terms(challenge, alice)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == ARCHIVE_BYTES
    assert f'filename="{name}"' in response["Content-Disposition"]
    checksum = client.get(url + ".sha256")
    assert checksum.content.decode() == f"{digest}  {name}\n"


def kit_files(client: Client, phase) -> dict[str, str]:  # type: ignore[no-untyped-def]
    url = reverse("challenges:starter_kit", args=[phase.challenge.slug, phase.slug])
    response = client.get(url)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as kit:
        return {n: kit.read(n).decode() for n in ("README.md", "test-locally.sh")}


def kit_link(script: str, variable: str) -> str:
    line = next(x for x in script.splitlines() if x.startswith(f"{variable}="))
    return line.split("=", 1)[1].strip('"')


def test_the_kit_carries_a_personal_link_that_works_without_a_session(
    client, phase, alice, carol, archive_dir, send
):
    name, digest = finish_archive(archive_dir)
    challenge = phase.challenge
    accept_terms(challenge, alice)
    client.force_login(alice)
    files = kit_files(client, phase)
    script = files["test-locally.sh"]
    assert kit_link(script, "ARCHIVE") == name and kit_link(script, "ARCHIVE_SHA256") == digest
    url = kit_link(script, "ARCHIVE_URL")
    assert url.startswith(f"http://testserver/challenges/{challenge.slug}/runtime-image/{name}?key=")
    assert url in files["README.md"]

    anonymous = Client()
    response = anonymous.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == ARCHIVE_BYTES
    assert anonymous.get(kit_link(script, "CHECKSUM_URL")).content.decode().startswith(digest)

    forged = anonymous.get(url[:-3] + "abc")
    assert forged.status_code == 403 and b"not valid" in forged.content
    # Carol's own link works only once she has accepted the terms.
    carols = url.split("?")[0] + "?key=" + starter_kit.download_key(user=carol)
    refused = anonymous.get(carols)
    assert refused.status_code == 403 and b"data-use terms" in refused.content


def test_an_expired_link_is_refused(client, phase, alice, archive_dir):
    name, _ = finish_archive(archive_dir)
    accept_terms(phase.challenge, alice)
    key = starter_kit.download_key(user=alice)
    url = reverse("challenges:runtime_image", args=[phase.challenge.slug, name]) + f"?key={key}"
    later = time.time() + (starter_kit.DOWNLOAD_LINK_DAYS + 1) * 86400
    with mock.patch("django.core.signing.time.time", autospec=True, return_value=later):
        response = Client().get(url)
    assert response.status_code == 403 and b"expired" in response.content


def test_a_script_hears_being_prepared_and_an_older_kit_hears_why(
    client, phase, alice, archive_dir, send
):
    accept_terms(phase.challenge, alice)
    name = starter_kit.runtime_archive_name()
    key = starter_kit.download_key(user=alice)
    base = reverse("challenges:runtime_image", args=[phase.challenge.slug, name])
    pending = Client().get(f"{base}?key={key}")
    assert pending.status_code == 503 and pending["Retry-After"] == "120"
    assert b"being prepared" in pending.content
    send.assert_called_once_with(EXPORT_TASK)

    finish_archive(archive_dir)
    older = reverse("challenges:runtime_image",
                    args=[phase.challenge.slug, "heldout-runtime-000000000000.tar.gz"])
    response = Client().get(f"{older}?key={key}")
    assert response.status_code == 404
    assert f"this site runs {name}".encode() in response.content


def test_the_kit_asks_for_the_checksum_while_the_archive_is_being_prepared(
    client, phase, alice, archive_dir, send
):
    accept_terms(phase.challenge, alice)
    client.force_login(alice)
    script = kit_files(client, phase)["test-locally.sh"]
    assert kit_link(script, "ARCHIVE_SHA256") == ""
    assert ".tar.gz.sha256?key=" in kit_link(script, "CHECKSUM_URL")
    send.assert_called_once_with(EXPORT_TASK)


def test_a_users_key_names_only_that_user(alice, bob):
    assert starter_kit.download_key_user(starter_kit.download_key(user=alice)) == alice
    assert starter_kit.download_key_user(starter_kit.download_key(user=bob)) == bob
    bob.is_active = False
    bob.save()
    assert starter_kit.download_key_user(starter_kit.download_key(user=bob)) is None
    assert starter_kit.download_key_user(str(alice.pk)) is None


def test_an_unknown_user_has_no_key(db):
    ghost = UserFactory(username="ghost")
    key = starter_kit.download_key(user=ghost)
    ghost.delete()
    assert starter_kit.download_key_user(key) is None


@pytest.mark.docker
def test_the_command_that_make_runs_prints_the_archive(archive_dir) -> None:
    from django.core.management import call_command

    name, digest = finish_archive(archive_dir)  # made before: the command only confirms it
    out = io.StringIO()
    call_command("runtime_image", stdout=out)
    tag, path, checksum = out.getvalue().splitlines()
    assert tag == images.runtime_image_tag() and checksum == f"sha256 {digest}"
    assert path.startswith(f"{archive_dir / name} (0 MB, ")
