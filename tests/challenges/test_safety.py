from __future__ import annotations

import pytest
from django.urls import reverse

from challenges.templatetags.heldout import markdown


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/x",
                                    "javascript:alert(1)"])
def test_accepting_terms_never_redirects_off_site(client, alice, challenge, target):
    client.force_login(alice)
    response = client.post(reverse("challenges:terms", args=[challenge.slug]), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == challenge.get_absolute_url()


@pytest.mark.django_db
def test_accepting_terms_follows_a_local_next(client, alice, challenge, phase):
    client.force_login(alice)
    response = client.post(reverse("challenges:terms", args=[challenge.slug]),
                           {"next": phase.get_absolute_url()})
    assert response["Location"] == phase.get_absolute_url()


def test_markdown_headings_sit_below_the_page_headings_and_scripts_are_stripped():
    html = markdown("# Title\n\n## Part\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))")
    assert "<h3>Title</h3>" in html and "<h4>Part</h4>" in html
    assert "<h1" not in html and "<script" not in html and "javascript:" not in html
