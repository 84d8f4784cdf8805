"""Issue #21, item 2: saving a challenge in the admin moves the terms version only when the
terms text changes (a browser's CRLF line endings, or the trailing newline a form field
strips, are not a change), the audit event names only the fields that changed, and the
organiser is warned, and must confirm, before a save asks every participant to accept the
terms again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from challenges import selectors, services
from challenges.bundles import import_challenge
from challenges.models import Challenge, Phase
from core.models import AuditEvent
from tests.bundles import write_bundle
from tests.challenges.test_admin_scoping import form_values

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path: Path, olga) -> Challenge:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    challenge.organisers.add(olga)
    return challenge


def as_browser(values: dict[str, Any]) -> dict[str, Any]:
    """What a browser posts: textarea line breaks as CRLF (the HTML form encoding)."""
    return {k: v.replace("\n", "\r\n") if isinstance(v, str) and "\n" in v else v
            for k, v in values.items()}


def change_form(client: Any, challenge: Challenge) -> tuple[str, dict[str, Any]]:
    url = reverse("admin:challenges_challenge_change", args=[challenge.pk])
    return url, as_browser(form_values(client.get(url).content.decode()))


def phase_prefix(data: dict[str, Any]) -> str:
    return next(k.removesuffix("-TOTAL_FORMS") for k in data
                if k.endswith("-TOTAL_FORMS") and k.startswith("phases"))


def test_changing_only_a_quota_keeps_the_terms_version(client, imported, olga, dave) -> None:
    services.terms_accept(challenge=imported, user=dave)
    client.force_login(olga)
    url, data = change_form(client, imported)
    data[f"{phase_prefix(data)}-0-quota_per_day"] = "9"

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    challenge = Challenge.objects.get(pk=imported.pk)
    assert Phase.objects.get(challenge=challenge).quota_per_day == 9
    assert challenge.terms_version == 1
    assert challenge.terms == "Test terms.\n"  # stored as written, not as the form sent it
    assert challenge.description == "# Synthetic test challenge\nNot real data.\n"
    assert selectors.has_accepted_terms(challenge=challenge, user=dave)
    edited = AuditEvent.objects.get(verb="challenge.edited")
    assert edited.data["fields"] == []
    assert AuditEvent.objects.get(verb="phase.edited").data["fields"] == ["quota_per_day"]


def test_the_audit_event_names_only_the_fields_that_changed(client, imported, olga) -> None:
    client.force_login(olga)
    url, data = change_form(client, imported)
    data["title"] = "A better title"

    assert client.post(url, data).status_code == 302

    assert AuditEvent.objects.get(verb="challenge.edited").data["fields"] == ["title"]
    assert Challenge.objects.get(pk=imported.pk).terms_version == 1


def test_a_terms_edit_is_held_until_the_organiser_confirms(client, imported, olga, dave) -> None:
    services.terms_accept(challenge=imported, user=dave)
    client.force_login(olga)
    url, data = change_form(client, imported)
    assert 'name="confirm_terms"' not in client.get(url).content.decode().replace(
        'type="hidden" name="confirm_terms"', "")
    data["terms"] = "Test terms.\r\nNo re-identification.\r\n"

    first = client.post(url, data)

    assert first.status_code == 200  # the form again, with the warning; nothing saved
    page = first.content.decode()
    assert "ask every participant to accept the terms again" in page
    assert "1 person accepted version 1" in page
    assert 'type="checkbox" name="confirm_terms"' in page
    challenge = Challenge.objects.get(pk=imported.pk)
    assert challenge.terms_version == 1 and challenge.terms == "Test terms.\n"
    assert not AuditEvent.objects.filter(verb="challenge.edited").exists()

    data["confirm_terms"] = "on"
    second = client.post(url, data)

    assert second.status_code == 302
    challenge = Challenge.objects.get(pk=imported.pk)
    assert challenge.terms_version == 2
    assert challenge.terms == "Test terms.\nNo re-identification.\n"
    assert not selectors.has_accepted_terms(challenge=challenge, user=dave)
    event = AuditEvent.objects.get(verb="challenge.edited")
    assert event.data == {"fields": ["terms"], "terms_version": 2}


def test_whitespace_around_the_terms_is_no_new_version(imported, olga) -> None:
    imported.terms = "\r\n  Test terms.  \r\n\r\n"
    services.challenge_save(challenge=imported, actor=olga, changed=["terms"])

    challenge = Challenge.objects.get(pk=imported.pk)
    assert challenge.terms_version == 1
    assert challenge.terms == "Test terms.\n"
    assert AuditEvent.objects.get(verb="challenge.edited").data["fields"] == []


def test_a_reimport_with_crlf_terms_is_no_new_version(tmp_path, imported) -> None:
    root = write_bundle(tmp_path / "again")
    (root / "TERMS.md").write_bytes(b"Test terms.\r\n")

    challenge, _ = import_challenge(root)

    assert challenge.terms_version == 1
