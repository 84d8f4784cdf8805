"""Challenges, terms, public files and teams through the API, by the pages' services."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from challenges.models import Challenge, Invitation, Membership, Team, TermsAcceptance
from challenges.services import invitation_create
from tests.api.conftest import v1
from tests.factories import accept_terms


def test_it_describes_a_challenge_with_its_phases(api, dave, phase):  # type: ignore[no-untyped-def]
    body = api(dave).get(v1("challenges/readmission/")).json()
    assert (body["slug"], body["terms_version"], body["max_team_size"]) == ("readmission", 1, 3)
    assert body["viewer"] == {"terms_accepted": False, "is_organiser": False, "team": None}
    [described] = body["phases"]
    assert described["slug"] == "leaderboard"
    assert (described["is_open"], described["has_closed"]) == (True, False)
    assert described["submission_kinds"] == ["predictions", "bundle", "image"]
    assert described["quota"] == {"per_day": 5, "total": 100, "concurrent": 2,
                                  "count_failed": True}
    assert (described["primary_metric"], described["secondary_metrics"]) == ("auroc", ["auprc"])
    assert described["limits"] == {"cpus": 1.0, "memory_mb": 2048, "seconds": 600}
    assert described["score_visibility"] == "live"


def test_it_tells_the_viewer_their_standing(api, alice, olga, phase, team_a):  # type: ignore[no-untyped-def]
    assert api(alice).get(v1("challenges/readmission/")).json()["viewer"] == {
        "terms_accepted": True, "is_organiser": False,
        "team": {"id": team_a.pk, "name": "Team A"}}
    assert api(olga).get(v1("challenges/readmission/")).json()["viewer"]["is_organiser"] is True


def test_it_lists_challenges_with_their_phases(api, phase):  # type: ignore[no-untyped-def]
    body = api(None).get(v1("challenges/")).json()
    assert [c["slug"] for c in body["results"]] == ["readmission"]
    assert body["results"][0]["phases"][0]["slug"] == "leaderboard"


def test_it_records_terms_acceptance_once_per_version(api, dave, challenge):  # type: ignore[no-untyped-def]
    client = api(dave)
    first = client.post(v1("challenges/readmission/terms/accept/")).json()
    again = client.post(v1("challenges/readmission/terms/accept/")).json()
    assert first == again
    assert first["version"] == 1
    assert TermsAcceptance.objects.filter(user=dave).count() == 1


def test_it_serves_public_files_only_after_the_terms(api, dave, public_file):  # type: ignore[no-untyped-def]
    client = api(dave)
    [listed] = client.get(v1("challenges/readmission/files/")).json()
    assert (listed["name"], listed["size"], listed["sha256"]) == (
        "train.csv", public_file.size, public_file.sha256)
    assert listed["download_url"].endswith("/api/v1/challenges/readmission/files/train.csv")
    refused = client.get(listed["download_url"])
    assert (refused.status_code, refused.json()["code"]) == (403, "terms_not_accepted")
    client.post(v1("challenges/readmission/terms/accept/"))
    download = client.get(listed["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert b"".join(download.streaming_content) == b"id,age,label\nc001,70,1\n"
    assert 'filename="train.csv"' in download["Content-Disposition"]


def test_it_answers_404_for_an_unknown_file(api, alice, team_a, public_file):  # type: ignore[no-untyped-def]
    for name in ("nope.csv", "..%2Fsecret", "a%00b"):
        response = api(alice).get(v1(f"challenges/readmission/files/{name}"))
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_it_creates_a_team_with_the_creator_as_captain(api, dave, challenge):  # type: ignore[no-untyped-def]
    accept_terms(challenge, dave)
    response = api(dave).post(v1("challenges/readmission/teams/"), {"name": "  Delta  "},
                              format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["captain"], body["challenge"]) == ("Delta", "dave", "readmission")
    assert [(m["username"], m["is_captain"]) for m in body["members"]] == [("dave", True)]
    assert api(dave).get(v1("challenges/readmission/teams/mine/")).json()["id"] == body["id"]


def test_it_refuses_a_taken_or_blank_team_name(api, dave, challenge, team_a):  # type: ignore[no-untyped-def]
    accept_terms(challenge, dave)
    taken = api(dave).post(v1("challenges/readmission/teams/"), {"name": "team a"}, format="json")
    assert (taken.status_code, taken.json()["code"]) == (409, "team_error")
    blank = api(dave).post(v1("challenges/readmission/teams/"), {"name": "  "}, format="json")
    assert (blank.status_code, blank.json()["code"]) == (400, "invalid_input")


def test_it_shows_the_team_to_its_members(api, bob, team_a):  # type: ignore[no-untyped-def]
    body = api(bob).get(v1("challenges/readmission/teams/mine/")).json()
    assert body["captain"] == "alice"
    assert [(m["username"], m["is_captain"]) for m in body["members"]] == [
        ("alice", True), ("bob", False)]


def test_it_lets_only_the_captain_invite(  # type: ignore[no-untyped-def]
    api, alice, bob, team_a, django_capture_on_commit_callbacks
):
    url = v1("challenges/readmission/teams/mine/invitations/")
    refused = api(bob).post(url, {}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_captain")
    with django_capture_on_commit_callbacks(execute=True):
        link = api(alice).post(url, {}, format="json").json()
    assert link["email"] is None and mail.outbox == []  # a link invitation mails nobody
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post(url, {"email": "Dave@Example.org"}, format="json")
    assert response.status_code == 201
    body = response.json()
    invitation = Invitation.objects.get(token=body["token"])
    assert (invitation.team, body["email"]) == (team_a, "dave@example.org")
    assert body["url"].endswith(f"/invitations/{invitation.token}/")
    [sent] = mail.outbox  # the same e-mail the team page sends
    assert sent.to == ["dave@example.org"] and "Team A" in sent.subject
    assert body["url"] in sent.body


def test_it_joins_a_team_with_an_invitation(api, alice, dave, team_a):  # type: ignore[no-untyped-def]
    invitation = invitation_create(team=team_a, user=alice, email="dave@example.org")
    url = v1(f"invitations/{invitation.token}/accept/")
    refused = api(dave).post(url)
    assert (refused.status_code, refused.json()["code"]) == (403, "terms_not_accepted")
    accept_terms(team_a.challenge, dave)
    body = api(dave).post(url).json()
    assert (body["name"], len(body["members"])) == ("Team A", 3)
    used = api(dave).post(url)
    assert (used.status_code, used.json()["code"]) == (400, "invitation_invalid")


def test_it_refuses_an_expired_or_unknown_invitation(api, alice, dave, team_a):  # type: ignore[no-untyped-def]
    accept_terms(team_a.challenge, dave)
    invitation = invitation_create(team=team_a, user=alice)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    for token in (invitation.token, "no-such-token"):
        response = api(dave).post(v1(f"invitations/{token}/accept/"))
        assert (response.status_code, response.json()["code"]) == (400, "invitation_invalid")


def test_it_refuses_to_join_a_full_team(api, alice, dave, team_a, challenge):  # type: ignore[no-untyped-def]
    Challenge.objects.filter(pk=challenge.pk).update(max_team_size=2)
    accept_terms(challenge, dave)
    invitation = invitation_create(team=team_a, user=alice)
    response = api(dave).post(v1(f"invitations/{invitation.token}/accept/"))
    assert (response.status_code, response.json()["code"]) == (409, "team_full")
    assert not Membership.objects.filter(user=dave).exists()


def test_it_lets_a_member_leave(api, bob, team_a):  # type: ignore[no-untyped-def]
    response = api(bob).post(v1("challenges/readmission/teams/mine/leave/"))
    assert response.status_code == 204
    assert list(team_a.memberships.values_list("user__username", flat=True)) == ["alice"]
    gone = api(bob).get(v1("challenges/readmission/teams/mine/"))
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")


def test_it_removes_a_team_its_last_member_leaves(api, carol, team_c):  # type: ignore[no-untyped-def]
    assert api(carol).post(v1("challenges/readmission/teams/mine/leave/")).status_code == 204
    assert not Team.objects.filter(pk=team_c.pk).exists()
