"""Issue #12, done when: in a real headless Chromium, an organiser in the `Organisers` group
imports a bundle zip in the admin, sees a bad bundle's problems, replaces a labels file,
tries a baseline, and publishes; then a participant downloads the starter kit, runs its local
test command (the real runtime image on the real Docker engine), uploads it and sees the
result on the board. Every page is photographed at 1280 and 390 px under
test-artifacts/browser/issue12/, and no page may scroll sideways at 390 px.

Celery runs eagerly here (no worker process): queueing a task runs it in the request, so
the baseline and the participant's model are really evaluated (sandboxed containers, trusted
scoring, board refresh) before the page that queued them answers.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from allauth.account.models import EmailAddress
from celery import current_app
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from challenges.models import Challenge, EvaluationSet
from core.models import AuditEvent
from submissions.models import Submission
from tests.bundles import write_bundle
from tests.pipeline.conftest import AGE_MODEL

pytestmark = [pytest.mark.browser, pytest.mark.docker]

RUN_MS = 180_000  # a request that runs a model on the sanity and hidden sets


@pytest.fixture
def eager() -> Iterator[None]:
    # What a worker's autodiscovery would load: the tasks queued by name must be registered.
    import leaderboards.tasks  # noqa: F401
    import scoring.tasks  # noqa: F401
    import submissions.tasks  # noqa: F401

    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


@pytest.fixture
def people(transactional_db: None) -> dict[str, object]:
    users = get_user_model().objects
    olga = users.create_user("olga", "olga@example.org", "pw-olga-123", is_staff=True)
    # The group comes from a data migration, which the flush after any earlier transactional
    # test empties; tests/challenges/test_lifecycle.py checks the migration itself.
    organisers, _ = Group.objects.get_or_create(name="Organisers")
    olga.groups.add(organisers)
    users.create_user("stan", "stan@example.org", "pw-stan-123", is_staff=True)  # not in it
    alice = users.create_user("alice", "alice@example.org", "pw-alice-123")
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    return {"olga": olga, "alice": alice}


class Camera:
    """Screenshots of every page at 1280 and 390 px; records pages that scroll sideways."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sideways: list[str] = []
        self.count = 0

    def shoot(self, page: Page, name: str) -> None:
        self.count += 1
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=self.folder / f"{self.count:02d}-{name}-{width}.png",
                            full_page=True)
            if width == 390:
                wide = page.evaluate("document.documentElement.scrollWidth")
                inner = page.evaluate("window.innerWidth")
                if wide > inner:
                    self.sideways.append(f"{name} ({page.url}): {wide} > {inner}")
        page.set_viewport_size({"width": 1280, "height": 900})


def _zip_folder(folder: Path, archive: Path, *, top: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder).as_posix()
                out.write(path, f"{top}/{relative}" if top else relative)
    return archive


def _bad_bundle(tmp_path: Path) -> Path:
    root = write_bundle(tmp_path / "bad")
    document = yaml.safe_load((root / "challenge.yaml").read_text())
    document["phases"][0]["metrics"]["primary"] = "aucroc"
    (root / "challenge.yaml").write_text(yaml.safe_dump(document))
    (root / "hidden/labels.csv").unlink()
    return _zip_folder(root, tmp_path / "bad.zip")


def _admin_login(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def _site_login(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _organiser_imports(page: Page, camera: Camera, tmp_path: Path) -> Challenge:
    page.goto("/admin/challenges/challenge/")
    camera.shoot(page, "admin-challenges")
    page.click("#import-bundle")
    camera.shoot(page, "admin-import")
    page.set_input_files("#id_bundle", str(_bad_bundle(tmp_path)))
    page.click("#import-form input[type=submit]")
    problems = page.locator("#bundle-problems")
    expect(problems).to_contain_text("unknown metric 'aucroc'")
    expect(problems).to_contain_text("labels")
    camera.shoot(page, "admin-import-problems")
    assert not Challenge.objects.exists()  # nothing written for a bad bundle

    good = _zip_folder(write_bundle(tmp_path / "good"), tmp_path / "good.zip", top="synthetic")
    page.set_input_files("#id_bundle", str(good))
    page.click("#import-form input[type=submit]")
    expect(page.locator("#lifecycle")).to_contain_text("Draft")
    expect(page.locator("#publish-ready")).to_be_visible()
    camera.shoot(page, "admin-challenge-draft")
    return Challenge.objects.get()


def _draft_is_hidden(challenge: Challenge, new_context) -> None:  # type: ignore[no-untyped-def]
    outsider = new_context().new_page()
    assert outsider.goto(challenge.get_absolute_url()).status == 404
    assert outsider.goto(f"/api/v1/challenges/{challenge.slug}/").status == 404
    expect(outsider.locator("h1")).to_have_count(0)  # the API answers JSON
    assert outsider.goto(challenge.phases.get().get_absolute_url()).status == 404
    expect(outsider.locator("h1")).to_have_text("Not found")


def _organiser_replaces_labels(page: Page, camera: Camera, challenge: Challenge,
                               tmp_path: Path) -> None:
    hidden = EvaluationSet.objects.get(challenge=challenge, is_public=False)
    before = hidden.checksums["labels.csv"]
    labels = (tmp_path / "good/hidden/labels.csv").read_text().splitlines()
    # the same cases, one more positive: a corrected label
    header, first, *rest = labels
    fixed = first.split(",")
    fixed[1] = "1" if fixed[1] == "0" else "0"
    new_labels = tmp_path / "labels-v2.csv"
    new_labels.write_text("\n".join([header, ",".join(fixed), *rest]) + "\n")
    page.goto(f"/admin/challenges/evaluationset/{hidden.pk}/change/")
    expect(page.locator(".field-data_card_table")).to_contain_text("Cases")
    page.set_input_files("#id_labels_csv", str(new_labels))
    page.click("input[name=_continue]")
    expect(page.locator(".field-provenance_table")).to_contain_text("admin upload (labels)")
    camera.shoot(page, "admin-evaluation-set")
    hidden.refresh_from_db()
    assert hidden.checksums["labels.csv"] != before
    assert AuditEvent.objects.filter(verb="evaluationset.files_replaced").exists()


def _organiser_tries_and_publishes(page: Page, camera: Camera, challenge: Challenge,
                                   tmp_path: Path) -> None:
    page.goto(f"/admin/challenges/challenge/{challenge.pk}/change/")
    page.click("#dashboard-link")
    camera.shoot(page, "admin-dashboard")
    baseline = tmp_path / "baseline.zip"
    with zipfile.ZipFile(baseline, "w") as archive:
        archive.writestr("predict.py", AGE_MODEL)
    page.set_input_files("#id_model", str(baseline))
    with page.expect_navigation(timeout=RUN_MS):
        page.click("#try-button")
    row = page.locator("#baselines tbody tr").first
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("AUROC")
    camera.shoot(page, "admin-dashboard-baseline")
    row.get_by_role("link", name="submission page").click()
    expect(page.locator("#scores")).to_be_visible()
    camera.shoot(page, "baseline-submission")
    submission = Submission.objects.get()
    assert submission.is_baseline and submission.status == "succeeded"

    page.goto(f"/admin/challenges/challenge/{challenge.pk}/change/")
    page.click("#publish-button")
    expect(page.locator("#lifecycle")).to_contain_text("Published")
    camera.shoot(page, "admin-challenge-published")
    challenge.refresh_from_db()
    assert challenge.status == "published"
    assert AuditEvent.objects.filter(verb="challenge.published").exists()


def _participant_joins(page: Page, camera: Camera, challenge: Challenge) -> None:
    _site_login(page, "alice", "pw-alice-123")
    page.goto(challenge.get_absolute_url())
    camera.shoot(page, "challenge-overview")
    page.get_by_role("link", name="Read and accept the terms").first.click()
    camera.shoot(page, "terms")
    page.get_by_role("button", name=re.compile("accept", re.I)).click()
    page.fill("#id_name", "Alpha")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("h1")).to_contain_text("Alpha")
    camera.shoot(page, "team")
    for tab in ("evaluation", "rules", "leaderboard", "submissions"):
        page.goto(f"{challenge.get_absolute_url()}?tab={tab}")
        camera.shoot(page, f"challenge-{tab}")


def _participant_tests_the_kit(page: Page, camera: Camera, challenge: Challenge,
                               tmp_path: Path) -> Path:
    page.goto(f"{challenge.get_absolute_url()}?tab=data")
    camera.shoot(page, "challenge-data")
    with page.expect_download() as download:
        page.locator("a.starter-kit").first.click()
    kit = tmp_path / download.value.suggested_filename
    download.value.save_as(kit)
    folder = tmp_path / "kit"
    with zipfile.ZipFile(kit) as archive:
        archive.extractall(folder)
    readme = (folder / "README.md").read_text()
    assert "sh test-locally.sh" in readme
    local = subprocess.run(["sh", "test-locally.sh"], cwd=folder, capture_output=True,
                           text=True, timeout=300, check=False)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "OK: 10 predictions" in local.stdout
    return kit


def _participant_submits(page: Page, camera: Camera, challenge: Challenge, kit: Path) -> None:
    phase = challenge.phases.get()
    page.goto(phase.get_absolute_url())
    camera.shoot(page, "phase")
    page.set_input_files("#id_file", str(kit))
    expect(page.locator("input[name=kind][value=bundle]")).to_be_checked()  # detected
    with page.expect_navigation(url=re.compile(r"/submissions/"), timeout=RUN_MS):
        page.click("#upload-form button[type=submit]")
    # told at the end of the release period (HELDOUT_RELEASE_SECONDS, short in this test);
    # the page keeps polling until then
    expect(page.locator("#submission-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#scores")).to_be_visible()
    camera.shoot(page, "submission")
    page.goto(phase.get_absolute_url())
    board = page.locator("#leaderboard")
    expect(board).to_contain_text("Alpha")
    expect(board).to_contain_text("Organisers (baselines)")
    camera.shoot(page, "phase-board")
    page.locator("a.full-board").click()
    expect(page.locator("#leaderboard")).to_contain_text("Alpha")
    camera.shoot(page, "board")


def test_an_organiser_builds_a_challenge_and_a_participant_enters_it(
    new_context, people, eager, tmp_path, artifacts, settings
):
    from heldout_kernel.runtime_image import ensure_runtime_image

    settings.HELDOUT_RELEASE_SECONDS = 5

    ensure_runtime_image()
    camera = Camera(artifacts / "issue12")
    olga = new_context().new_page()
    _admin_login(olga, "olga", "pw-olga-123")
    camera.shoot(olga, "admin-home")
    challenge = _organiser_imports(olga, camera, tmp_path)
    _draft_is_hidden(challenge, new_context)
    _organiser_replaces_labels(olga, camera, challenge, tmp_path)
    _organiser_tries_and_publishes(olga, camera, challenge, tmp_path)

    alice = new_context().new_page()
    _participant_joins(alice, camera, challenge)
    kit = _participant_tests_the_kit(alice, camera, challenge, tmp_path)
    _participant_submits(alice, camera, challenge, kit)

    denied = new_context().new_page()
    _admin_login(denied, "stan", "pw-stan-123")  # staff, not in the Organisers group
    assert denied.goto("/admin/challenges/challenge/add/").status == 403
    expect(denied.locator("h1")).to_have_text("Not allowed")
    camera.shoot(denied, "admin-denied")
    assert denied.goto(challenge.get_absolute_url()).status == 200  # published: visible
    assert denied.goto("/challenges/no-such-thing/").status == 404
    camera.shoot(denied, "not-found")
    assert camera.sideways == []
