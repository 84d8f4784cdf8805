"""In headless Chromium: a team member uploads a model on the phase page, sees the progress
bar of the resumable upload, and lands on the submission page; a refused file shows why."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from challenges.services import team_create, terms_accept
from submissions.models import Submission

pytestmark = [pytest.mark.browser]


@pytest.fixture(autouse=True)
def enqueue() -> Iterator[mock.MagicMock]:
    """No worker here: queueing an evaluation is replaced at its seam."""
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


@pytest.fixture
def alice_in_team(synthetic_challenge):  # type: ignore[no-untyped-def]
    alice = get_user_model().objects.create_user("alice", "alice@example.org", "pw-alice-123")
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    terms_accept(challenge=synthetic_challenge, user=alice)
    team_create(challenge=synthetic_challenge, user=alice, name="Alpha")
    return alice


def _log_in(page, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _bundle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", "print('hello')\n")
    return path


def test_it_uploads_a_bundle_and_lands_on_the_submission_page(
    new_context, synthetic_challenge, alice_in_team, artifacts, tmp_path
):
    page = new_context().new_page()
    _log_in(page, "alice", "pw-alice-123")
    phase = synthetic_challenge.phases.get()
    page.goto(phase.get_absolute_url())
    expect(page.locator("#quota")).to_contain_text("5 of 5 left today")
    page.check("input[name=kind][value=bundle]")
    page.set_input_files("#id_file", str(_bundle(tmp_path / "model.zip")))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-progress")).to_be_visible()
    page.wait_for_url("**/submissions/*/")
    expect(page.locator("h1")).to_contain_text("Submission #1 of Alpha")
    expect(page.locator("#submission-status")).to_have_text("Queued")
    page.screenshot(path=artifacts / "upload-landed.png", full_page=True)
    submission = Submission.objects.get()
    assert (submission.kind, submission.filename, submission.status) == (
        "bundle", "model.zip", "queued")


def test_a_refused_upload_says_why_and_creates_nothing(
    new_context, synthetic_challenge, alice_in_team, tmp_path
):
    page = new_context().new_page()
    _log_in(page, "alice", "pw-alice-123")
    page.goto(synthetic_challenge.phases.get().get_absolute_url())
    bad = tmp_path / "model.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("model/predict.py", "print('nested')\n")
    page.check("input[name=kind][value=bundle]")
    page.set_input_files("#id_file", str(bad))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-message")).to_contain_text("predict.py")
    assert not Submission.objects.exists()
