"""Issue #21, item 7 (e): "Export as bundle" in the admin downloads the zip
`manage.py export_challenge SLUG FILE.zip` writes, for the challenge's organisers only,
audited; importing the download gives the same challenge back."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from challenges.bundles import import_challenge
from challenges.models import Challenge, Station
from challenges.selectors import ORGANISERS_GROUP
from core.models import AuditEvent
from tests.bundles import phase_spec, write_bundle
from tests.challenges.test_import_challenge import facts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path: Path, olga) -> Challenge:
    olga.groups.add(Group.objects.get(name=ORGANISERS_GROUP))  # she may import, too
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    challenge.organisers.add(olga)
    return challenge


def export_url(challenge: Challenge) -> str:
    return reverse("admin:challenges_challenge_export", args=[challenge.pk])


def download(client, challenge: Challenge) -> bytes:  # type: ignore[no-untyped-def]
    response = client.post(export_url(challenge))
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{challenge.slug}.zip"'
    return b"".join(response.streaming_content)


def test_the_download_is_the_zip_the_command_writes_and_is_audited(
        client, imported, olga, tmp_path) -> None:
    client.force_login(olga)
    change = client.get(reverse("admin:challenges_challenge_change", args=[imported.pk]))
    assert f'id="export-form" method="post" action="{export_url(imported)}"' in (
        change.content.decode())

    data = download(client, imported)

    call_command("export_challenge", imported.slug, str(tmp_path / "cli.zip"),
                 stdout=io.StringIO())
    assert data == (tmp_path / "cli.zip").read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "challenge.yaml" in names and "TERMS.md" in names
    assert any(name.endswith(".labels.csv") for name in names)  # hidden labels: organisers'
    event = AuditEvent.objects.filter(verb="challenge.exported").order_by("id").first()
    assert (event.actor_id, event.challenge_id) == (olga.pk, imported.pk)
    assert event.data["sha256"] == hashlib.sha256(data).hexdigest()
    assert event.data["via"] == "admin" and event.data["bytes"] == len(data)
    hidden = imported.phases.get().evaluation_set
    assert event.data["labels_sha256"][hidden.name] == hidden.checksums["labels.csv"]
    cli = AuditEvent.objects.filter(verb="challenge.exported").order_by("id").last()
    assert cli.actor_id is None and cli.data["via"] == "export_challenge"


def test_importing_the_download_over_its_challenge_changes_nothing(
        client, imported, olga) -> None:
    client.force_login(olga)
    data = download(client, imported)

    response = client.post(reverse("admin:challenges_challenge_import"),
                           {"bundle": SimpleUploadedFile("export.zip", data)}, follow=True)

    assert "unchanged (same bundle)" in response.content.decode()
    assert Challenge.objects.get() == imported


def test_the_download_imports_into_a_fresh_platform_as_the_same_challenge(
        client, imported, olga, tmp_path, settings) -> None:
    expected = facts(imported)
    client.force_login(olga)
    data = download(client, imported)
    Challenge.objects.all().delete()
    settings.PRIVATE_ROOT = tmp_path / "fresh-private"
    settings.PRIVATE_ROOT.mkdir()

    response = client.post(reverse("admin:challenges_challenge_import"),
                           {"bundle": SimpleUploadedFile("export.zip", data)})

    assert response.status_code == 302
    again = Challenge.objects.get()
    assert again.is_draft  # the admin's import makes drafts; the rest is as exported
    assert facts(again) == expected
    labels = settings.PRIVATE_ROOT / again.phases.get().evaluation_set.labels_file
    assert labels.read_bytes() == (tmp_path / "bundle/hidden/labels.csv").read_bytes()


def test_only_its_organisers_export_a_challenge(client, imported) -> None:
    oscar = UserFactory(username="oscar", is_staff=True)
    for user, statuses in ((oscar, {403, 404}), (UserFactory(username="alice"), {302}),
                           (None, {302})):
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.post(export_url(imported))
        assert response.status_code in statuses, (user, response.status_code)
        assert response.get("Content-Type") != "application/zip"
    assert not AuditEvent.objects.filter(verb="challenge.exported").exists()


def test_a_get_exports_nothing(client, imported, olga) -> None:
    client.force_login(olga)

    assert client.get(export_url(imported)).status_code == 405
    assert not AuditEvent.objects.filter(verb="challenge.exported").exists()


def test_a_challenge_at_data_stations_exports_their_names_and_no_one_elses_files(
        client, olga, tmp_path, private_root) -> None:
    """The exporter once copied the private root joined with a remote set's empty folder:
    every challenge's hidden files."""
    import_challenge(write_bundle(tmp_path / "neighbour", slug="neighbour"))
    Station.objects.create(name="st-a", token_hash="a" * 64, allowed_challenges=["remote"])
    challenge, _ = import_challenge(write_bundle(tmp_path / "remote", slug="remote", phases=[
        phase_spec(evaluation={"station": "st-a", "dataset": "cohort"})]))
    challenge.organisers.add(olga)
    client.force_login(olga)

    data = download(client, challenge)

    archive = zipfile.ZipFile(io.BytesIO(data))
    document = yaml.safe_load(archive.read("challenge.yaml"))
    assert document["phases"][0]["evaluation"] == {"station": "st-a", "dataset": "cohort"}
    assert not [n for n in archive.namelist() if "neighbour" in n or n.startswith("evaluation")]
    assert len(archive.namelist()) < 12, archive.namelist()
