"""What the audit trail records beyond team changes and submissions: imports (with the
sha256 of the bundle and of the hidden labels), board publications, organisers' edits in the
admin, and API token use (at most once a minute per token)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from challenges.bundles import import_challenge
from challenges.models import EvaluationSet, Phase
from core.models import AuditEvent
from core.storage import sha256_file
from leaderboards.compute import recompute
from tests.bundles import write_bundle
from tests.challenges.test_admin_scoping import change, form_values

pytestmark = pytest.mark.django_db


def test_every_import_is_recorded_with_the_bundles_and_labels_hashes(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")

    challenge, _ = import_challenge(bundle)
    import_challenge(bundle)

    events = list(AuditEvent.objects.filter(verb="challenge.imported").order_by("id"))
    assert [e.data["changed"] for e in events] == [True, False]
    assert events[0].challenge_id == challenge.pk
    assert events[0].data["challenge_yaml_sha256"] == sha256_file(bundle / "challenge.yaml")
    hidden = EvaluationSet.objects.get(challenge=challenge, name="hidden/inputs")
    assert events[0].data["evaluation_sets"]["hidden/inputs"] == hidden.checksums["labels.csv"]


def test_the_first_final_board_is_a_publication(tmp_path: Path) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "b"))
    phase = challenge.phases.get()
    recompute(phase_pk=phase.pk)
    assert not AuditEvent.objects.filter(verb="board.published").exists()

    Phase.objects.filter(pk=phase.pk).update(opens_at=timezone.now() - timedelta(days=2),
                                             closes_at=timezone.now() - timedelta(days=1))
    recompute(phase_pk=phase.pk)
    recompute(phase_pk=phase.pk)

    published = AuditEvent.objects.filter(verb="board.published")
    assert sorted(e.data["board"] for e in published) == ["private", "public"]


def test_organisers_edits_of_phases_are_recorded(client, tmp_path: Path, olga) -> None:
    challenge, _ = import_challenge(write_bundle(tmp_path / "b"))
    challenge.organisers.add(olga)
    client.force_login(olga)
    url = change(challenge)
    data = form_values(client.get(url).content.decode())
    prefix = next(k.removesuffix("-TOTAL_FORMS") for k in data
                  if k.endswith("-TOTAL_FORMS") and k.startswith("phases"))
    data[f"{prefix}-0-private_published"] = "on"

    assert client.post(url, data).status_code == 302

    event = AuditEvent.objects.get(verb="phase.edited")
    assert (event.actor_id, event.challenge_id) == (olga.pk, challenge.pk)
    assert event.data["fields"] == ["private_published"]


def test_token_use_is_recorded_at_most_once_a_minute(alice) -> None:
    new = token_create(user=alice, name="laptop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {new.key}")

    for _ in range(3):
        assert client.get("/api/v1/challenges/").status_code == 200
    ApiToken.objects.filter(pk=new.token.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=2))
    assert client.get("/api/v1/challenges/").status_code == 200

    used = AuditEvent.objects.filter(verb="api_token.used", actor_id=alice.pk)
    assert used.count() == 2
    assert used.first().data == {"prefix": new.token.prefix}
