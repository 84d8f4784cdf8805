"""Duplicate and collusion signals: two teams with the same upload, or with near-identical
predictions on the hidden set, are flagged for the organisers (pages and audit trail);
unrelated models are not, and the teams themselves see nothing of it."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from core.models import AuditEvent
from scoring.models import CollusionFlag
from tests.factories import TeamFactory
from tests.scoring.test_release_flow import ages_scores, no_queue, release_phase, submit_scores

pytestmark = pytest.mark.django_db
__all__ = ["no_queue"]  # the autouse fixture, imported for this module too


@pytest.fixture
def phase(tmp_path, olga):  # type: ignore[no-untyped-def]
    item = release_phase(tmp_path, "exact")
    item.challenge.organisers.add(olga)
    return item


def test_the_same_upload_from_two_teams_is_flagged(phase, alice, carol) -> None:
    alpha = TeamFactory(challenge=phase.challenge, captain=alice, name="Alpha")
    bravo = TeamFactory(challenge=phase.challenge, captain=carol, name="Bravo")
    first = submit_scores(phase, alpha, alice, ages_scores())
    second = submit_scores(phase, bravo, carol, ages_scores())

    kinds = set(CollusionFlag.objects.filter(submission=second).values_list("kind", "other"))
    assert kinds == {("same_upload", first.pk), ("near_identical", first.pk)}
    assert not CollusionFlag.objects.filter(submission=first).exists()
    events = AuditEvent.objects.filter(verb="collusion.flagged", target=f"submission:{second.pk}")
    assert {e.data["kind"] for e in events} == {"same_upload", "near_identical"}


def test_near_identical_predictions_are_flagged_and_shown_to_organisers_only(
    phase, alice, carol, olga, client
) -> None:
    alpha = TeamFactory(challenge=phase.challenge, captain=alice, name="Alpha")
    bravo = TeamFactory(challenge=phase.challenge, captain=carol, name="Bravo")
    submit_scores(phase, alpha, alice, ages_scores())
    tweaked = [s * 0.98 + 0.001 for s in ages_scores()]  # another file, the same ranking
    copy = submit_scores(phase, bravo, carol, tweaked)

    flag = CollusionFlag.objects.get(submission=copy)
    assert flag.kind == "near_identical" and flag.value > 0.999
    page = reverse("submissions:detail", args=[copy.uid])
    client.force_login(olga)
    assert "looks like another team" in client.get(page).content.decode()
    client.force_login(carol)
    assert "looks like another team" not in client.get(page).content.decode()


def test_unrelated_models_and_a_teams_own_resubmissions_are_not_flagged(
    phase, alice, carol
) -> None:
    alpha = TeamFactory(challenge=phase.challenge, captain=alice, name="Alpha")
    bravo = TeamFactory(challenge=phase.challenge, captain=carol, name="Bravo")
    submit_scores(phase, alpha, alice, ages_scores())
    submit_scores(phase, alpha, alice, ages_scores())  # the same team again: fine
    other = np.random.default_rng(5).random(40).tolist()
    submit_scores(phase, bravo, carol, other)

    assert not CollusionFlag.objects.exists()
