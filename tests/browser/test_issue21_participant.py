"""Issue #21, the participant's side, in a real headless Chromium: at 390 px every challenge
tab is in view and reachable; on a wide screen no board cell breaks inside a word; the
runtime image and the starter kit download from the Data tab and the kit's test-locally.sh
passes on an engine that lacks the image (real engine: a test-only tag of the runtime image,
never the shared one); a team at its quota gets a disabled form whose script sends nothing,
and a page that went stale is refused when the upload starts, before any byte is sent.
Pages are photographed under test-artifacts/browser/issue21/."""

from __future__ import annotations

import subprocess
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from challenges import starter_kit
from challenges.models import Challenge, Phase, Team
from challenges.services import team_create, terms_accept
from challenges.views import TABS
from heldout_kernel import runtime_image as images
from leaderboards.compute import recompute
from submissions.models import Submission
from tests.factories import ResultFactory, SubmissionFactory, TeamFactory
from tests.factories.submissions import told_finish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-alice-123"

# Every word of a cell on one line: a Range over a word that wrapped has rects on two lines.
BROKEN_WORDS_JS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll(".board td, .board th")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0)
          .map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}"""


@pytest.fixture
def folder(artifacts: Path) -> Path:
    path = artifacts / "issue21"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def archive_dir(settings, tmp_path: Path) -> Path:
    path = tmp_path / "runtime-images"
    path.mkdir()
    settings.HELDOUT_RUNTIME_ARCHIVE_DIR = path
    return path


@pytest.fixture
def send() -> Iterator[mock.MagicMock]:
    """No worker: asking one for the runtime archive is replaced at its seam."""
    with mock.patch("core.dispatch.send", autospec=True) as patched:
        yield patched


@pytest.fixture
def alpha(synthetic_challenge: Challenge) -> Team:
    alice = get_user_model().objects.create_user("alice", "alice@example.org", PASSWORD)
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    terms_accept(challenge=synthetic_challenge, user=alice)
    return team_create(challenge=synthetic_challenge, user=alice, name="Alpha")


def log_in(context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_contain_text("alice")
    return page


def test_every_challenge_tab_is_in_view_and_reachable_at_390_px(
    new_context: Callable[..., BrowserContext], alpha: Team, archive_dir, send, folder: Path,
) -> None:
    page = log_in(new_context(viewport={"width": 390, "height": 844}))
    challenge = alpha.challenge
    for key, label in TABS:
        page.goto(challenge.get_absolute_url())
        link = page.locator("nav.tabs a", has_text=label)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (label, box)
        link.click()
        page.wait_for_url(f"**?tab={key}")
        expect(page.locator("nav.tabs a.active")).to_have_text(label)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the {label} tab scrolls sideways at 390 px ({width})"
    page.goto(challenge.get_absolute_url())
    page.screenshot(path=folder / "tabs-390.png")


def scored(phase: Phase, team: Team, seed: int) -> Submission:
    submission = SubmissionFactory(phase=phase, team=team, status=Submission.Status.SUCCEEDED,
                                   attempts=1, started_at=timezone.now(),
                                   finished_at=told_finish())
    scores = np.random.default_rng(seed).random(phase.evaluation_set.n_cases)
    metrics = {part: {"auroc": 0.5, "auprc": 0.3, "f1": 0.4, "brier": 0.3}
               for part in ("public", "private", "all")}
    ResultFactory(submission=submission, scores=scores, metrics=metrics)
    return submission


def test_no_board_cell_breaks_inside_a_word_at_1280_px(
    new_context: Callable[..., BrowserContext], alpha: Team, folder: Path,
) -> None:
    phase = alpha.challenge.phases.get()
    names = ("Alpha", "Mammography Screening Collaborative", "Bravo")
    teams = [alpha, *(TeamFactory(challenge=alpha.challenge, name=n) for n in names[1:])]
    for seed, team in enumerate(teams):
        scored(phase, team, seed)
    assert recompute(phase_pk=phase.pk)
    page = log_in(new_context())
    page.goto(reverse("leaderboards:board", args=[alpha.challenge.slug, phase.slug, "public"]))
    expect(page.locator("#leaderboard table.board tbody tr")).to_have_count(3)
    page.screenshot(path=folder / "board-1280.png", full_page=True)
    assert page.evaluate(BROKEN_WORDS_JS) == []
    tip = page.locator("#leaderboard .bf").first.get_attribute("title") or ""
    assert "strictly better, over those where it is not" in tip and "K = ∞" in tip


# --- The runtime image and the starter kit on an engine without the image ---------------------

def image_id(tag: str) -> str | None:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def untag(tag: str) -> None:
    """Remove the test-only tag, only while the shared runtime tag holds the same image."""
    own = image_id(tag)
    if own is not None:
        assert image_id(images.runtime_image_tag()) == own, "refusing to remove the last tag"
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=True)


@pytest.fixture
def kit_tag(archive_dir: Path) -> Iterator[str]:
    """The site offers a test-only tag of the runtime image, archived where the settings
    point; the engine then loses that tag (the shared one is never touched)."""
    runtime = images.ensure_runtime_image()
    tag = f"heldout-kit-test-{uuid.uuid4().hex[:10]}:{runtime.split(':')[1]}"
    subprocess.run(["docker", "tag", runtime, tag], check=True)
    try:
        images.export_runtime_archive(directory=archive_dir, tag=tag)
        untag(tag)
        with mock.patch.object(starter_kit, "runtime_tag", autospec=True, return_value=tag):
            yield tag
    finally:
        untag(tag)


@pytest.mark.docker
def test_a_participant_downloads_the_runtime_image_and_the_kit_and_tests_locally(
    new_context: Callable[..., BrowserContext], alpha: Team, kit_tag: str, send, folder: Path,
    tmp_path: Path,
) -> None:
    page = log_in(new_context())
    page.goto(f"{alpha.challenge.get_absolute_url()}?tab=data")
    runtime = page.locator("#runtime-image")
    expect(runtime).to_contain_text("sha256")
    shown_sha = runtime.locator("code.sha256").inner_text()
    page.screenshot(path=folder / "data-tab-1280.png", full_page=True)
    kit_dir = tmp_path / "kit"
    with page.expect_download() as kit_download:
        page.locator("a.starter-kit").first.click()
    kit = tmp_path / kit_download.value.suggested_filename
    kit_download.value.save_as(kit)
    with zipfile.ZipFile(kit) as archive:
        archive.extractall(kit_dir)
    with page.expect_download(timeout=120_000) as image_download:
        runtime.locator("a.runtime-image").click()
    name = image_download.value.suggested_filename
    image_download.value.save_as(kit_dir / name)
    assert name == kit_tag.replace(":", "-") + ".tar.gz"
    assert subprocess.run(["sha256sum", str(kit_dir / name)], capture_output=True, text=True,
                          check=True).stdout.split()[0] == shown_sha
    assert image_id(kit_tag) is None

    local = subprocess.run(["sh", "test-locally.sh"], cwd=kit_dir, capture_output=True,
                           text=True, timeout=600, check=False)

    assert local.returncode == 0, local.stdout + local.stderr
    assert f"Loaded image: {kit_tag}" in local.stdout
    assert "OK: 10 predictions" in local.stdout
    send.assert_not_called()


# --- Quota at the start -----------------------------------------------------------------------

@pytest.fixture(autouse=True)
def enqueue() -> Iterator[mock.MagicMock]:
    """No worker here: queueing an evaluation is replaced at its seam."""
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


def use_quota(phase: Phase, team: Team, n: int) -> None:
    for _ in range(n):
        SubmissionFactory(phase=phase, team=team, status=Submission.Status.SUCCEEDED)


def bundle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", "print('hello')\n" + "#" * 200_000)
    return path


def watch_requests(page: Page) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    page.on("request", lambda r: seen.append((r.method, r.url)))
    return seen


def test_a_team_at_its_quota_gets_a_disabled_form_that_sends_nothing(
    new_context: Callable[..., BrowserContext], alpha: Team, folder: Path, tmp_path: Path,
) -> None:
    phase = alpha.challenge.phases.get()
    use_quota(phase, alpha, phase.quota_per_day)
    page = log_in(new_context())
    page.goto(phase.get_absolute_url())
    expect(page.locator("#quota")).to_contain_text(f"0 of {phase.quota_per_day} left today")
    expect(page.locator("#upload-blocked")).to_contain_text("the quota resets at 00:00 UTC")
    button = page.locator("#upload-form button[type=submit]")
    expect(button).to_be_disabled()
    expect(page.locator("#id_file")).to_be_disabled()
    page.screenshot(path=folder / "quota-blocked-1280.png", full_page=True)

    # Even with the form forced open, the page's script sends nothing.
    seen = watch_requests(page)
    page.evaluate("document.querySelector('fieldset.upload-fields').disabled = false")
    page.set_input_files("#id_file", str(bundle(tmp_path / "model.zip")))
    button.click()
    page.wait_for_timeout(1000)
    assert [s for s in seen if s[0] != "GET"] == []
    assert page.url.endswith(phase.get_absolute_url())
    assert Submission.objects.filter(team=alpha).count() == phase.quota_per_day


def test_a_stale_page_is_refused_when_the_upload_starts_before_any_byte(
    new_context: Callable[..., BrowserContext], alpha: Team, tmp_path: Path,
) -> None:
    phase = alpha.challenge.phases.get()
    use_quota(phase, alpha, phase.quota_per_day - 1)
    page = log_in(new_context())
    page.goto(phase.get_absolute_url())
    expect(page.locator("#quota")).to_contain_text(f"1 of {phase.quota_per_day} left today")
    expect(page.locator("#upload-blocked")).to_have_count(0)
    use_quota(phase, alpha, 1)  # a team-mate used the last one meanwhile

    seen = watch_requests(page)
    page.set_input_files("#id_file", str(bundle(tmp_path / "model.zip")))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-message")).to_contain_text(
        f"Your team has used all {phase.quota_per_day} submissions for today")
    start = reverse("api:upload-start", args=[alpha.challenge.slug, phase.slug])
    sent = [s for s in seen if s[0] != "GET"]
    assert sent == [("POST", page.url.split("/challenges/")[0] + start)]
    assert Submission.objects.filter(team=alpha).count() == phase.quota_per_day
    page.reload()
    expect(page.locator("#upload-blocked")).to_be_visible()
