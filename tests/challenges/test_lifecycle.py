"""Issue #12, the organiser's half without a browser: the Organisers group, drafts invisible
to everyone but their organisers (pages and API), the admin's bundle import (drafts, every
problem listed, nothing written), replacing an evaluation set's files with the import's
checks, the data card, publishing only when ready (audited), the starter kit."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from challenges import lifecycle
from challenges.bundles import import_challenge
from challenges.exceptions import BundleError, NotReady
from challenges.models import Challenge, EvaluationSet
from core.models import AuditEvent
from tests.bundles import write_bundle
from tests.factories import UserFactory, accept_terms

pytestmark = pytest.mark.django_db


def zipped(folder: Path, archive: Path, top: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder).as_posix()
                out.write(path, f"{top}/{relative}" if top else relative)
    return archive


@pytest.fixture
def organiser(db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="olga", is_staff=True)
    user.groups.add(Group.objects.get(name="Organisers"))
    return user


@pytest.fixture
def draft(organiser, tmp_path):  # type: ignore[no-untyped-def]
    archive = zipped(write_bundle(tmp_path / "bundle"), tmp_path / "b.zip", top="bundle")
    challenge, _ = lifecycle.challenge_import_zip(archive=archive, actor=organiser)
    return challenge


def test_the_migration_creates_the_organisers_group() -> None:
    assert Group.objects.filter(name="Organisers").exists()


def test_a_staff_organiser_may_add_a_challenge_and_organises_it(client, organiser) -> None:
    client.force_login(organiser)
    response = client.post(reverse("admin:challenges_challenge_add"), {
        "slug": "new-one", "title": "New one", "task": "binary", "visibility": "public",
        "max_team_size": 3, "terms": "Be nice.",
        "phases-TOTAL_FORMS": 0, "phases-INITIAL_FORMS": 0,
        "public_files-TOTAL_FORMS": 0, "public_files-INITIAL_FORMS": 0})
    assert response.status_code == 302, response.content.decode()[:2000]
    challenge = Challenge.objects.get(slug="new-one")
    assert challenge.is_draft and list(challenge.organisers.all()) == [organiser]


def test_staff_outside_the_group_get_a_styled_403_on_add(client) -> None:
    client.force_login(UserFactory(username="stan", is_staff=True))
    response = client.get(reverse("admin:challenges_challenge_add"))
    assert response.status_code == 403
    assert "Organisers" in response.content.decode()


def test_the_import_command_still_publishes(tmp_path) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    assert challenge.status == Challenge.Status.PUBLISHED


def test_a_draft_is_a_404_on_pages_and_api_for_everyone_but_its_organisers(
    client, draft, organiser
) -> None:
    phase = draft.phases.get()
    urls = [draft.get_absolute_url(), phase.get_absolute_url(),
            reverse("leaderboards:board", args=[draft.slug, phase.slug, "public"]),
            f"/api/v1/challenges/{draft.slug}/", f"/api/v1/challenges/{draft.slug}/files/"]
    participant = UserFactory(username="alice")
    for user in (None, participant):
        client.logout()
        if user:
            client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user, url)
        assert draft.slug not in client.get("/api/v1/challenges/").content.decode()
    client.force_login(organiser)
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_the_admin_import_lists_every_problem_and_writes_nothing(
    client, organiser, tmp_path
) -> None:
    root = write_bundle(tmp_path / "bad")
    text = (root / "challenge.yaml").read_text().replace("primary: auroc", "primary: aucroc")
    (root / "challenge.yaml").write_text(text)
    (root / "sanity/labels.csv").unlink()
    client.force_login(organiser)
    with zipped(root, tmp_path / "bad.zip").open("rb") as handle:
        response = client.post(reverse("admin:challenges_challenge_import"), {"bundle": handle})
    html = response.content.decode()
    assert response.status_code == 200
    assert "aucroc" in html and "sanity/labels.csv is missing" in html
    assert not Challenge.objects.exists() and not EvaluationSet.objects.exists()


def test_the_admin_import_creates_a_draft_and_reimport_updates_it(
    client, organiser, tmp_path
) -> None:
    client.force_login(organiser)
    root = write_bundle(tmp_path / "good")
    with zipped(root, tmp_path / "g.zip").open("rb") as handle:
        client.post(reverse("admin:challenges_challenge_import"), {"bundle": handle})
    challenge = Challenge.objects.get()
    assert challenge.is_draft and organiser in challenge.organisers.all()
    (root / "README.md").write_text("# Changed\n")
    with zipped(root, tmp_path / "g2.zip").open("rb") as handle:
        client.post(reverse("admin:challenges_challenge_import"), {"bundle": handle})
    challenge.refresh_from_db()
    assert challenge.description == "# Changed\n" and Challenge.objects.count() == 1


def test_someone_elses_challenge_cannot_be_overwritten_by_import(tmp_path, draft) -> None:
    other = UserFactory(username="oscar", is_staff=True)
    archive = zipped(write_bundle(tmp_path / "again"), tmp_path / "again.zip")
    with pytest.raises(BundleError, match="you do not organise it"):
        lifecycle.challenge_import_zip(archive=archive, actor=other)


def test_a_zip_that_escapes_its_folder_is_refused(organiser, tmp_path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("../../evil.txt", "x")
    with pytest.raises(BundleError, match="outside the archive"):
        lifecycle.challenge_import_zip(archive=archive, actor=organiser)


def test_the_data_card_and_provenance_are_stored_at_import(draft) -> None:
    hidden = draft.evaluation_sets.get(is_public=False)
    card = hidden.data_card
    assert card["cases"] == 40 and card["positives"] == 14
    assert card["split"] == {"private": 20, "public": 20}
    assert set(card["subgroups"]["sex"]) == {"F", "M"}
    assert card["missing"] == {} and "duplicate_rows" in card and "outliers" in card
    assert {entry["by"] for entry in hidden.provenance} == {"olga"}
    assert any(entry["sha256"] == hidden.checksums["labels.csv"] for entry in hidden.provenance)


def _labels(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def test_replacing_labels_checks_them_like_import(draft, organiser) -> None:
    hidden = draft.evaluation_sets.get(is_public=False)
    before = dict(hidden.checksums)
    path = Path(lifecycle.private_path(hidden.labels_file))
    bad = path.parent / "bad.csv"
    bad.write_text("id,label\nc000,2\n")
    with pytest.raises(BundleError, match="not 0 or 1"):
        lifecycle.evaluation_set_store(evaluation_set=hidden, actor=organiser, labels=bad)
    hidden.refresh_from_db()
    assert hidden.checksums == before
    good = path.parent / "good.csv"
    good.write_text(path.read_text().replace("c000,1", "c000,0", 1))
    lifecycle.evaluation_set_store(evaluation_set=hidden, actor=organiser, labels=good)
    hidden.refresh_from_db()
    assert hidden.checksums["labels.csv"] != before["labels.csv"]
    assert hidden.n_positive == 13 and hidden.data_card["positives"] == 13
    assert hidden.provenance[-1]["source"] == "admin upload (labels)"
    assert AuditEvent.objects.filter(verb="evaluationset.files_replaced").count() == 1


def test_the_admin_evaluation_set_form_replaces_inputs_from_a_zip(
    client, draft, organiser, tmp_path
) -> None:
    sanity = draft.evaluation_sets.get(is_public=True)
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "features.csv").write_text("id,age\n" + "".join(f"s{i},{60 + i}\n"
                                                             for i in range(10)))
    client.force_login(organiser)
    with zipped(folder, tmp_path / "inputs.zip").open("rb") as handle:
        response = client.post(
            reverse("admin:challenges_evaluationset_change", args=[sanity.pk]),
            {"name": sanity.name, "is_public": "on", "inputs_public": "on",
             "inputs_zip": handle})
    assert response.status_code == 302
    sanity.refresh_from_db()
    assert sanity.data_card["outliers"] == {} and sanity.data_card["columns"] == 1
    assert "age" not in sanity.data_card["missing"]


def test_publishing_needs_a_ready_challenge_and_is_audited(draft, organiser) -> None:
    phase = draft.phases.get()
    hidden = phase.evaluation_set
    EvaluationSet.objects.filter(pk=hidden.pk).update(n_cases=0, checksums={})
    with pytest.raises(NotReady) as refused:
        lifecycle.challenge_publish(challenge=draft, actor=organiser)
    assert "has no cases" in " ".join(refused.value.problems)
    assert Challenge.objects.get().is_draft
    EvaluationSet.objects.filter(pk=hidden.pk).update(n_cases=40, checksums={"labels.csv": "x"})
    lifecycle.challenge_publish(challenge=draft, actor=organiser)
    draft.refresh_from_db()
    assert draft.status == Challenge.Status.PUBLISHED and draft.published_at is not None
    assert AuditEvent.objects.filter(verb="challenge.published", actor_id=organiser.pk).exists()


def test_the_publish_button_lists_what_is_missing(client, draft, organiser) -> None:
    draft.phases.update(evaluation_set=None)
    client.force_login(organiser)
    response = client.post(reverse("admin:challenges_challenge_publish", args=[draft.pk]),
                           follow=True)
    assert "has no evaluation set" in response.content.decode()
    assert Challenge.objects.get().is_draft


def test_another_organiser_cannot_publish(client, draft) -> None:
    client.force_login(UserFactory(username="oscar", is_staff=True))
    response = client.post(reverse("admin:challenges_challenge_publish", args=[draft.pk]))
    assert response.status_code == 403


def test_try_it_first_queues_a_baseline_by_task_name(client, draft, organiser, tmp_path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("predict.py", "print(1)\n")
    client.force_login(organiser)
    url = reverse("admin:challenges_challenge_dashboard", args=[draft.pk])
    assert client.get(url).status_code == 200
    with mock.patch("core.dispatch.send", autospec=True) as send:
        client.post(url, {"phase": draft.phases.get().pk,
                          "model": SimpleUploadedFile("model.zip", archive.read_bytes())})
    (name,), kwargs = send.call_args
    assert name == "submissions.tasks.baseline_submit" and kwargs["kind"] == "bundle"
    assert Path(kwargs["path"]).read_bytes() == archive.read_bytes()
    team = draft.teams.get()
    assert team.is_organiser_team and kwargs["team_pk"] == team.pk


def test_the_starter_kit_is_a_bundle_with_the_sanity_inputs(client, tmp_path) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    phase = challenge.phases.get()
    alice = UserFactory(username="alice")
    client.force_login(alice)
    url = reverse("challenges:starter_kit", args=[challenge.slug, phase.slug])
    assert client.get(url).status_code == 302  # the terms first
    accept_terms(challenge, alice)
    response = client.get(url)
    with zipfile.ZipFile(io.BytesIO(response.content)) as kit:
        names = set(kit.namelist())
        readme = kit.read("README.md").decode()
        script = kit.read("test-locally.sh").decode()
    assert {"predict.py", "check.py", "README.md", "test-locally.sh",
            "sanity/features.csv", "sample_predictions.csv"} <= names
    assert not [n for n in names if "label" in n]  # never labels
    from heldout_kernel.runtime_image import runtime_image_tag

    assert runtime_image_tag() in readme and runtime_image_tag() in script
    assert "--network none" in script and "python3 check.py out/predictions.csv sanity" in script
