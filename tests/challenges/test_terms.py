"""Data-use terms: nothing (teams, data) before accepting them, and changed terms must be
accepted again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from challenges import selectors, services
from challenges.bundles import import_challenge
from challenges.exceptions import TermsNotAccepted
from challenges.models import Challenge, Membership, Team, TermsAcceptance
from core.models import AuditEvent
from tests.bundles import write_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


@pytest.fixture
def imported(bundle: Path) -> Challenge:
    challenge, _ = import_challenge(bundle)
    return challenge


def file_url(challenge: Challenge, name: str = "train.csv") -> str:
    return reverse("challenges:file", args=[challenge.slug, name])


def terms_url(challenge: Challenge) -> str:
    return reverse("challenges:terms", args=[challenge.slug])


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)  # consuming it closes the file


# --- nothing before the terms ------------------------------------------------------------


def test_nobody_creates_a_team_before_accepting_the_terms(challenge, dave) -> None:
    with pytest.raises(TermsNotAccepted, match="Accept the data-use terms of “Readmission”"):
        services.team_create(challenge=challenge, user=dave, name="Too soon")
    assert not Team.objects.exists()


def test_nobody_joins_a_team_before_accepting_the_terms(challenge, team_a, alice, dave) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)

    with pytest.raises(TermsNotAccepted):
        services.invitation_accept(token=invitation.token, user=dave)
    with pytest.raises(TermsNotAccepted):
        services.join_request_create(team=team_a, user=dave)

    invitation.refresh_from_db()
    assert invitation.used_at is None
    assert not Membership.objects.filter(user=dave).exists()


def test_terms_of_another_challenge_do_not_count(challenge, dave) -> None:
    other = Challenge.objects.create(slug="other", title="Other")
    services.terms_accept(challenge=other, user=dave)

    with pytest.raises(TermsNotAccepted):
        services.team_create(challenge=challenge, user=dave, name="Wrong terms")


def test_the_team_form_is_refused_before_the_terms(client, challenge, dave) -> None:
    client.force_login(dave)

    response = client.post(reverse("challenges:team_create", args=[challenge.slug]),
                           {"name": "Too soon"}, follow=True)

    assert response.status_code == 200
    assert "Accept the data-use terms" in response.content.decode()
    assert not Team.objects.exists()


# --- accepting ---------------------------------------------------------------------------


def test_accepting_records_the_version_and_the_time(challenge, dave) -> None:
    before = timezone.now()

    services.terms_accept(challenge=challenge, user=dave)

    acceptance = TermsAcceptance.objects.get(user=dave, challenge=challenge)
    assert acceptance.version == challenge.terms_version == 1
    assert before <= acceptance.accepted_at <= timezone.now()
    assert selectors.has_accepted_terms(challenge=challenge, user=dave)
    event = AuditEvent.objects.get(verb="terms.accepted")
    assert (event.actor_id, event.challenge_id, event.data) == (
        dave.pk, challenge.pk, {"version": 1})


def test_accepting_twice_keeps_the_first_acceptance(challenge, dave) -> None:
    first = services.terms_accept(challenge=challenge, user=dave)
    second = services.terms_accept(challenge=challenge, user=dave)

    assert first.pk == second.pk
    assert TermsAcceptance.objects.filter(user=dave).count() == 1
    assert AuditEvent.objects.filter(verb="terms.accepted").count() == 1


def test_the_terms_page_accepts_the_terms(client, challenge, dave) -> None:
    client.force_login(dave)
    page = client.get(terms_url(challenge))
    assert page.status_code == 200
    assert "Use the data for research only." in page.content.decode()
    assert 'id="accept-terms"' in page.content.decode()

    response = client.post(terms_url(challenge))

    assert response.status_code == 302 and response["Location"] == challenge.get_absolute_url()
    assert TermsAcceptance.objects.filter(user=dave, challenge=challenge, version=1).exists()
    page = client.get(terms_url(challenge)).content.decode()
    assert "You accepted version 1 of these terms." in page
    assert 'id="accept-terms"' not in page


def test_the_terms_page_needs_a_login(client, challenge) -> None:
    response = client.get(terms_url(challenge))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    response = client.post(terms_url(challenge))
    assert response.status_code == 302 and not TermsAcceptance.objects.exists()


# --- public files ------------------------------------------------------------------------


def test_a_public_file_needs_a_login(client, imported) -> None:
    response = client.get(file_url(imported))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_public_file_redirects_to_the_terms_until_they_are_accepted(
    client, imported, bundle, dave
) -> None:
    client.force_login(dave)

    response = client.get(file_url(imported))

    assert response.status_code == 302 and response["Location"] == terms_url(imported)
    assert not TermsAcceptance.objects.exists()

    client.post(terms_url(imported))
    response = client.get(file_url(imported))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="train.csv"')
    assert body(response) == (bundle / "public/train.csv").read_bytes()


def test_an_unknown_public_file_is_not_found(client, imported, dave) -> None:
    services.terms_accept(challenge=imported, user=dave)
    client.force_login(dave)

    assert client.get(file_url(imported, "nope.csv")).status_code == 404


# --- changed terms -----------------------------------------------------------------------


def test_changed_terms_bump_the_version_and_must_be_accepted_again(
    client, imported, bundle, dave
) -> None:
    services.terms_accept(challenge=imported, user=dave)
    client.force_login(dave)
    assert body(client.get(file_url(imported))) == (bundle / "public/train.csv").read_bytes()

    (bundle / "TERMS.md").write_text("Test terms, now with a publication embargo.\n")
    challenge, changed = import_challenge(bundle)

    assert changed and challenge.pk == imported.pk
    assert challenge.terms_version == 2
    assert challenge.terms == "Test terms, now with a publication embargo.\n"
    assert not selectors.has_accepted_terms(challenge=challenge, user=dave)
    response = client.get(file_url(challenge))
    assert response.status_code == 302 and response["Location"] == terms_url(challenge)
    with pytest.raises(TermsNotAccepted):
        services.team_create(challenge=challenge, user=dave, name="Under old terms")
    assert "publication embargo" in client.get(terms_url(challenge)).content.decode()

    client.post(terms_url(challenge))

    assert sorted(TermsAcceptance.objects.filter(user=dave).values_list("version", flat=True)) == [
        1, 2]
    assert body(client.get(file_url(challenge))) == (bundle / "public/train.csv").read_bytes()


def test_reimporting_the_same_terms_keeps_the_acceptance(imported, bundle, dave) -> None:
    services.terms_accept(challenge=imported, user=dave)
    (bundle / "README.md").write_text("# A new description\n")  # not the terms

    challenge, changed = import_challenge(bundle)

    assert changed and challenge.terms_version == 1
    assert selectors.has_accepted_terms(challenge=challenge, user=dave)


def test_members_must_accept_changed_terms_too(challenge, team_a, bob) -> None:
    assert selectors.has_accepted_terms(challenge=challenge, user=bob)
    Challenge.objects.filter(pk=challenge.pk).update(terms_version=2)
    challenge.refresh_from_db()

    assert not selectors.has_accepted_terms(challenge=challenge, user=bob)


# --- invite-only challenges --------------------------------------------------------------


@pytest.fixture
def private_challenge(challenge) -> Challenge:
    Challenge.objects.filter(pk=challenge.pk).update(
        visibility=Challenge.Visibility.INVITE_ONLY)
    challenge.refresh_from_db()
    return challenge


def test_an_outsider_cannot_open_the_terms_of_an_invite_only_challenge(
    client, private_challenge, dave
) -> None:
    client.force_login(dave)

    assert client.get(terms_url(private_challenge)).status_code == 404
    assert client.post(terms_url(private_challenge)).status_code == 404
    assert not TermsAcceptance.objects.filter(user=dave).exists()


def test_an_invitee_accepts_the_terms_of_an_invite_only_challenge_and_joins(
    client, private_challenge, team_a, alice, dave
) -> None:
    invitation = services.invitation_create(team=team_a, user=alice)
    client.force_login(dave)

    page = client.get(invitation.get_absolute_url()).content.decode()
    assert "accept the challenge's data-use terms" in page
    assert client.get(terms_url(private_challenge)).status_code == 200
    response = client.post(terms_url(private_challenge), {"next": invitation.get_absolute_url()})
    assert response["Location"] == invitation.get_absolute_url()
    response = client.post(invitation.get_absolute_url())

    assert response.status_code == 302 and response["Location"] == team_a.get_absolute_url()
    assert Membership.objects.filter(team=team_a, user=dave).exists()
    assert client.get(private_challenge.get_absolute_url()).status_code == 200


def test_a_used_or_expired_invitation_opens_no_invite_only_terms(
    client, private_challenge, team_a, alice, dave
) -> None:
    used = services.invitation_create(team=team_a, user=alice)
    used.used_at = timezone.now()
    used.save()
    expired = services.invitation_create(team=team_a, user=alice)
    expired.expires_at = timezone.now() - timedelta(seconds=1)
    expired.save()
    client.force_login(dave)

    for invitation in (used, expired):
        assert client.get(invitation.get_absolute_url()).status_code == 200
        assert client.get(terms_url(private_challenge)).status_code == 404
