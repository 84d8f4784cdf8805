"""Every endpoint against every role: what a member (Alice, captain of Team A), another
team (Carol, Team C), the organiser (Olga, no team) and an anonymous client may do.

Each cell is the HTTP status and, for refusals, the stable error `code`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from challenges.services import invitation_create
from submissions.services import upload_session_start
from tests.api.conftest import CSV, ROLES, v1

OK, CREATED, ACCEPTED, NO_CONTENT = 200, 201, 202, 204
UNAUTH = (401, "not_authenticated")
HIDDEN = (404, "not_found")

# name: (method, path, body, {role: expectation}); a bare int means success.
MATRIX: dict[str, tuple[str, str, Any, dict[str, Any]]] = {
    "challenge list": ("get", "challenges/", None, dict.fromkeys(ROLES, OK)),
    "challenge detail": ("get", "challenges/{slug}/", None, dict.fromkeys(ROLES, OK)),
    "accept terms": ("post", "challenges/{slug}/terms/accept/", None, {
        "member": OK, "other_team": OK, "organiser": OK, "anonymous": UNAUTH}),
    "file list": ("get", "challenges/{slug}/files/", None, dict.fromkeys(ROLES, OK)),
    "file download": ("get", "challenges/{slug}/files/train.csv", None, {
        "member": OK, "other_team": OK, "organiser": (403, "terms_not_accepted"),
        "anonymous": UNAUTH}),
    "create team": ("post", "challenges/{slug}/teams/", {"name": "New team"}, {
        "member": (409, "already_in_team"), "other_team": (409, "already_in_team"),
        "organiser": (403, "terms_not_accepted"), "anonymous": UNAUTH}),
    "my team": ("get", "challenges/{slug}/teams/mine/", None, {
        "member": OK, "other_team": OK, "organiser": HIDDEN, "anonymous": UNAUTH}),
    "invite": ("post", "challenges/{slug}/teams/mine/invitations/", {}, {
        "member": CREATED, "other_team": CREATED, "organiser": HIDDEN, "anonymous": UNAUTH}),
    "leave team": ("post", "challenges/{slug}/teams/mine/leave/", None, {
        "member": (409, "team_error"), "other_team": NO_CONTENT, "organiser": HIDDEN,
        "anonymous": UNAUTH}),
    "accept invitation": ("post", "invitations/{token}/accept/", None, {
        "member": (409, "already_in_team"), "other_team": (409, "already_in_team"),
        "organiser": (403, "terms_not_accepted"), "anonymous": UNAUTH}),
    "list submissions": ("get", "challenges/{slug}/phases/{phase}/submissions/", None, {
        "member": OK, "other_team": OK, "organiser": OK, "anonymous": UNAUTH}),
    "submit": ("post", "challenges/{slug}/phases/{phase}/submissions/", "multipart", {
        "member": ACCEPTED, "other_team": ACCEPTED, "organiser": (403, "not_a_member"),
        "anonymous": UNAUTH}),
    "submission detail": ("get", "submissions/{sub}/", None, {
        "member": OK, "other_team": HIDDEN, "organiser": OK, "anonymous": UNAUTH}),
    "select final entry": ("post", "submissions/{sub}/select/", {"selected": True}, {
        "member": (409, "submission_error"), "other_team": HIDDEN,
        "organiser": (403, "not_a_member"), "anonymous": UNAUTH}),
    "note": ("post", "submissions/{sub}/note/", {"note": "logistic model"}, {
        "member": OK, "other_team": HIDDEN, "organiser": (403, "not_a_member"),
        "anonymous": UNAUTH}),
    "cancel": ("post", "submissions/{sub}/cancel/", None, {
        "member": OK, "other_team": HIDDEN, "organiser": OK, "anonymous": UNAUTH}),
    "quota": ("get", "challenges/{slug}/phases/{phase}/quota/", None, {
        "member": OK, "other_team": OK, "organiser": (403, "not_a_member"),
        "anonymous": UNAUTH}),
    "start upload": ("post", "challenges/{slug}/phases/{phase}/uploads/",
                     {"kind": "predictions", "filename": "p.csv", "size": 10}, {
        # a start needs a team (nothing is staged for someone who could never finish)
        "member": CREATED, "other_team": CREATED, "organiser": (403, "not_a_member"),
        "anonymous": UNAUTH}),
    "upload status": ("get", "uploads/{upload}/", None, {
        "member": OK, "other_team": HIDDEN, "organiser": HIDDEN, "anonymous": UNAUTH}),
    "upload chunk": ("put", "uploads/{upload}/?offset=0", b"id,", {
        "member": OK, "other_team": HIDDEN, "organiser": HIDDEN, "anonymous": UNAUTH}),
    "finish upload": ("post", "uploads/{upload}/finish/", None, {
        "member": (400, "invalid_upload"), "other_team": HIDDEN, "organiser": HIDDEN,
        "anonymous": UNAUTH}),
    "leaderboard": ("get", "challenges/{slug}/phases/{phase}/leaderboard/", None,
                    dict.fromkeys(ROLES, OK)),
    "revoke own token": ("delete", "auth/token/", None, {
        "member": NO_CONTENT, "other_team": NO_CONTENT, "organiser": NO_CONTENT,
        "anonymous": UNAUTH}),
}


@pytest.fixture
def world(phase, team_a, team_c, alice, submission_a, public_file, boards) -> dict[str, str]:  # type: ignore[no-untyped-def]
    invitation = invitation_create(team=team_a, user=alice)
    upload = upload_session_start(phase=phase, user=alice, kind="predictions",
                                  filename="big.csv", total_size=100)
    return {"slug": phase.challenge.slug, "phase": phase.slug, "sub": str(submission_a.uid),
            "token": invitation.token, "upload": str(upload.uid)}


def call(client, method: str, path: str, body: Any):  # type: ignore[no-untyped-def]
    if body == "multipart":
        upload = SimpleUploadedFile("predictions.csv", CSV, content_type="text/csv")
        return client.post(path, {"file": upload, "kind": "predictions"}, format="multipart")
    if isinstance(body, bytes):
        return getattr(client, method)(path, body, content_type="application/octet-stream")
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_it_gives_each_role_what_the_rules_allow(endpoint, role, world, role_user, api):  # type: ignore[no-untyped-def]
    method, path, body, expected = MATRIX[endpoint]
    response = call(api(role_user(role)), method, v1(path.format(**world)), body)
    want = expected[role]
    status, code = (want, None) if isinstance(want, int) else want
    assert response.status_code == status, response.content
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["detail"]
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith("Token")
