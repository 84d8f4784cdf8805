"""Model fields carry their rules: metric names and submission kinds are validated wherever a
phase is saved, the admin offers them as checkboxes, and edited terms get a new version
through the service, whoever edits them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from challenges.models import Challenge, Phase
from core.models import AuditEvent
from tests.challenges.test_admin_scoping import change, form_values
from tests.factories import PhaseFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("field", "value"), [
    ("primary_metric", "aucroc"),
    ("secondary_metrics", ["auprc", "aucroc"]),
    ("secondary_metrics", ["auprc", "auprc"]),
    ("secondary_metrics", "auprc"),
    ("submission_kinds", ["bundle", "zipfile"]),
    ("submission_kinds", []),
    ("submission_kinds", ["bundle", "bundle"]),
])
def test_a_phase_with_an_unknown_metric_or_kind_does_not_validate(challenge, field, value):
    phase = PhaseFactory.build(challenge=challenge, **{field: value})

    with pytest.raises(ValidationError) as refused:
        phase.full_clean()

    assert field in refused.value.message_dict


def test_a_phase_with_known_metrics_and_kinds_validates(challenge):
    phase = PhaseFactory.build(challenge=challenge, primary_metric="auroc",
                               secondary_metrics=["auprc", "brier"],
                               submission_kinds=["bundle", "image"])
    phase.full_clean()


def phase_prefix(data: dict) -> str:
    return next(k.removesuffix("-TOTAL_FORMS") for k in data
                if k.endswith("-TOTAL_FORMS") and k.startswith("phases"))


def test_the_admin_offers_kinds_and_metrics_as_checkboxes(client, phase, olga):
    client.force_login(olga)

    html = client.get(change(phase.challenge)).content.decode()

    for value in ("predictions", "bundle", "image"):
        assert f'type="checkbox" name="phases-0-submission_kinds" value="{value}"' in html
    assert 'type="checkbox" name="phases-0-secondary_metrics" value="brier"' in html


def test_the_admin_saves_checked_kinds_and_refuses_an_unknown_metric(client, phase, olga):
    client.force_login(olga)
    url = change(phase.challenge)
    data = form_values(client.get(url).content.decode())
    prefix = phase_prefix(data)

    data[f"{prefix}-0-submission_kinds"] = ["bundle"]
    data[f"{prefix}-0-secondary_metrics"] = ["auprc", "f1"]
    assert client.post(url, data).status_code == 302
    phase.refresh_from_db()
    assert (phase.submission_kinds, phase.secondary_metrics) == (["bundle"], ["auprc", "f1"])

    data[f"{prefix}-0-secondary_metrics"] = ["aucroc"]
    assert client.post(url, data).status_code == 200  # the form comes back with the error
    phase.refresh_from_db()
    assert phase.secondary_metrics == ["auprc", "f1"]


def test_editing_the_terms_in_the_admin_asks_everyone_to_accept_again(client, challenge, olga):
    client.force_login(olga)
    url = change(challenge)
    data = form_values(client.get(url).content.decode())

    data["title"] = "Readmission (renamed)"
    assert client.post(url, data).status_code == 302
    assert Challenge.objects.get(pk=challenge.pk).terms_version == 1

    data["terms"] = "Use the data for research only. Never re-identify anyone."
    assert client.post(url, data).status_code == 200  # held: the organiser confirms first
    data["confirm_terms"] = "on"
    assert client.post(url, data).status_code == 302

    edited = Challenge.objects.get(pk=challenge.pk)
    assert (edited.terms_version, edited.terms) == (2, data["terms"])
    events = AuditEvent.objects.filter(verb="challenge.edited", challenge_id=challenge.pk)
    assert [e.actor_id for e in events] == [olga.pk, olga.pk]
    assert "terms" in events.order_by("at", "id").last().data["fields"]


def test_phase_kinds_are_a_closed_set():
    assert Phase.Kind.values == ["predictions", "bundle", "image"]
