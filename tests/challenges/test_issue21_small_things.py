"""Issue #21, item 8, the small things that are not layout (the browser tests hold those):
the challenge title shows once, the admin's lesions help text names `images/<id>.png`, and
the demo's e-mail links follow the port it serves on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.urls import reverse

from challenges.models import Challenge
from tests.conftest import REPO
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def overview(client, challenge: Challenge) -> str:  # type: ignore[no-untyped-def]
    response = client.get(challenge.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("heading", ["# Readmission", "#  readmission  #", "## READMISSION"])
def test_a_description_that_opens_with_the_title_shows_it_once(client, challenge, heading):
    Challenge.objects.filter(pk=challenge.pk).update(
        title="Readmission", description=f"{heading}\n\nPredict who comes back.")
    html = overview(client, challenge)
    assert html.count("Readmission") - html.count("<title>Readmission") == 1  # the <h1>
    assert "Predict who comes back." in html


def test_a_bundle_title_with_a_marker_still_counts_as_the_title(client, challenge):
    Challenge.objects.filter(pk=challenge.pk).update(
        title="[SYNTHETIC] Test challenge", description="# Synthetic test challenge\nNot real.")
    html = overview(client, challenge)
    assert "Synthetic test challenge" not in html and "Not real." in html


def test_other_opening_headings_stay(client, challenge):
    Challenge.objects.filter(pk=challenge.pk).update(
        title="Readmission", description="# Background\nText.\n\n# Readmission\nMore.")
    html = overview(client, challenge)
    assert "Background</h3>" in html and "Readmission</h3>" in html


def test_the_lesions_help_text_shows_the_file_name_pattern(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    html = client.get(reverse("admin:challenges_evaluationset_add")).content.decode()
    # The admin marks help texts safe: a bare <id> would be an unknown tag, shown as nothing.
    assert "pixels of images/&lt;id&gt;.png, origin top-left" in html
    assert "images/<id>.png" not in html


def test_the_demos_email_links_follow_its_port():
    env = {k: v for k, v in os.environ.items()
           if k not in ("HELDOUT_SITE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(HELDOUT_DEMO_PORT="8765", HELDOUT_DEMO_HOST="127.0.0.1")
    code = "import demo.run; from django.conf import settings; print(settings.HELDOUT_SITE_URL)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8765"

    env["HELDOUT_SITE_URL"] = "https://challenges.example.org"  # an explicit address wins
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "https://challenges.example.org"
