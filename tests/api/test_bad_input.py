"""Issue #20, attack 11: bad input is a 4xx, never a 500 (an unknown join-request id, bodies
too large for Django, NUL in a string field), and every endpoint has a body-size limit,
answered 413 from the Content-Length before the body is read (core.middleware)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.test.client import MULTIPART_CONTENT
from django.urls import reverse

from challenges import services as challenge_services
from challenges.models import JoinRequest
from challenges.stations import station_add
from core.api import error_codes, exception_handler
from core.middleware import body_limit
from submissions.models import Submission
from tests.api.conftest import v1
from tests.factories import accept_terms

pytestmark = pytest.mark.django_db
TOKEN = v1("auth/token/")
MB = 1024**2


class Unread(io.RawIOBase):
    """A request body that must not be read: reading it fails the test."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read


def declared(client: Any, method: str, path: str, length: int, content_type: str,
             **extra: Any) -> Any:
    """`method path` announcing `length` bytes of body that cannot be read."""
    return client.generic(method, path, b"x", content_type=content_type,
                          CONTENT_LENGTH=str(length), **{"wsgi.input": Unread()}, **extra)


# --- 413 before the body is read -------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json",
                                          "application/x-www-form-urlencoded"])
def test_twelve_megabytes_to_the_token_endpoint_are_refused_with_413(client, content_type):
    body = b"username=alice&password=" + b"x" * (12 * MB) if "form" in content_type else (
        b'{"username": "alice", "password": "' + b"x" * (12 * MB) + b'"}')
    response = client.generic("POST", TOKEN, body, content_type=content_type)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large" and response.json()["detail"]


def test_forty_megabytes_to_a_station_endpoint_are_refused_with_413(client):
    _, token = station_add(name="north")
    for path in ("/api/v1/station/jobs/1/result", "/api/v1/station/hello"):
        body = b'{"claim": 1, "error_class": "", "log_tail": "' + b"x" * (40 * MB) + b'"}'
        response = client.generic("POST", path, body, content_type="application/json",
                                  HTTP_AUTHORIZATION=f"Station {token}")
        assert response.status_code == 413, path
        assert response.json()["code"] == "request_too_large"


@pytest.mark.parametrize("method, path, limit", [
    ("POST", TOKEN, "HELDOUT_MAX_REQUEST_BYTES"),
    ("POST", v1("challenges/readmission/teams/"), "HELDOUT_MAX_REQUEST_BYTES"),
    ("POST", "/api/v1/station/jobs/1/result", "HELDOUT_MAX_STATION_REQUEST_BYTES"),
    ("PUT", v1("uploads/00000000-0000-0000-0000-000000000000/") + "?offset=0",
     "HELDOUT_MAX_CHUNK_REQUEST_BYTES"),
    ("POST", v1("challenges/readmission/phases/leaderboard/submissions/"),
     "HELDOUT_MAX_SUBMISSION_REQUEST_BYTES"),
])
def test_each_api_endpoint_refuses_a_body_above_its_limit_unread(
        client, phase, method, path, limit):
    response = declared(client, method, path, getattr(settings, limit) + 1,
                        "application/octet-stream")
    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "detail": "The request body is larger than this endpoint accepts "
                  f"({getattr(settings, limit):,} bytes)."}


def test_pages_refuse_a_large_body_with_a_plain_413_page(client, challenge):
    for path in ("/accounts/login/", "/admin/login/",
                 reverse("challenges:detail", args=[challenge.slug])):
        response = declared(client, "POST", path, 2 * MB, "application/x-www-form-urlencoded")
        assert response.status_code == 413, path
        assert response["Content-Type"].startswith("text/plain")


def test_the_limits_fit_what_each_endpoint_legitimately_receives(rf, olga, alice):
    """Chunks of the CLI's 8 MB, the largest direct upload (larger files of any kind go
    through the resumable upload), staff-only admin uploads (a stranger's post to the admin
    gets the small limit)."""
    assert settings.HELDOUT_MAX_CHUNK_REQUEST_BYTES >= 8 * MB
    assert settings.HELDOUT_MAX_SUBMISSION_REQUEST_BYTES > settings.HELDOUT_MAX_DIRECT_UPLOAD_BYTES
    assert settings.HELDOUT_MAX_DIRECT_UPLOAD_BYTES > 32 * MB  # the CLI's direct uploads
    assert settings.HELDOUT_MAX_REQUEST_BYTES <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    request = rf.post(reverse("admin:challenges_challenge_import"))
    for user, limit in ((olga, settings.HELDOUT_MAX_ADMIN_REQUEST_BYTES),
                        (alice, settings.HELDOUT_MAX_REQUEST_BYTES)):
        request.user = user
        assert body_limit(request) == limit


def test_a_body_within_the_limit_is_read_as_before(api, alice, challenge):
    accept_terms(challenge, alice)
    response = api(alice).post(v1("challenges/readmission/teams/"), {"name": "Alpha"},
                               format="json")
    assert response.status_code == 201


def test_request_too_large_is_a_documented_error_code(client):
    assert error_codes()["request_too_large"] == 413
    schema = client.get("/api/schema/?format=json").json()
    post = schema["paths"]["/api/v1/challenges/{slug}/teams/"]["post"]
    assert "413" in post["responses"] and "request_too_large" in (
        post["responses"]["413"]["description"])


# --- what Django refuses after reading -------------------------------------------------------


def test_django_s_own_refusals_are_413_and_400_not_500(client, settings):
    """Bodies under an endpoint's limit that Django refuses when it reads them: more than
    DATA_UPLOAD_MAX_MEMORY_SIZE of form data, more than DATA_UPLOAD_MAX_NUMBER_FIELDS
    fields; in the API and on pages."""
    settings.HELDOUT_MAX_REQUEST_BYTES = 64 * MB
    form = "application/x-www-form-urlencoded"
    big = b"username=alice&password=" + b"x" * (12 * MB)
    many = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    for path in (TOKEN, "/accounts/login/"):
        response = client.generic("POST", path, big, content_type=form)
        assert response.status_code == 413, path
        response = client.generic("POST", path, many.encode(), content_type=form)
        assert response.status_code == 400, path
    response = client.generic("POST", TOKEN, many.encode(), content_type=form)
    assert response.json()["code"] == "parse_error"


def test_the_api_handler_maps_request_data_too_big_to_413():
    response = exception_handler(RequestDataTooBig("too big"), {"view": None})
    assert response is not None and response.status_code == 413
    assert response.data["code"] == "request_too_large"


# --- unknown ids and NUL ---------------------------------------------------------------------


def test_an_unknown_join_request_id_is_a_404(client, challenge, team_c, team_a, carol, dave):
    client.force_login(carol)  # captain of team C
    path = reverse("challenges:join_request_decide", args=[challenge.slug, team_c.pk, 999999])
    assert client.post(path, {"decision": "approve"}).status_code == 404
    accept_terms(challenge, dave)
    elsewhere = challenge_services.join_request_create(team=team_a, user=dave)
    path = reverse("challenges:join_request_decide",
                   args=[challenge.slug, team_c.pk, elsewhere.pk])
    assert client.post(path, {"decision": "approve"}).status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.status == JoinRequest.Status.PENDING


def test_nul_in_a_json_string_is_a_400_and_nothing_is_stored(api, alice, challenge):
    accept_terms(challenge, alice)
    response = api(alice).post(v1("challenges/readmission/teams/"), '{"name": "Al\\u0000pha"}',
                               content_type="application/json")
    assert response.status_code == 400 and set(response.json()) >= {"code", "detail"}
    nested = api(alice).post(v1("challenges/readmission/teams/"),
                             '{"name": "Alpha", "x": {"\\u0000": 1}}',
                             content_type="application/json")
    assert (nested.status_code, nested.json()["code"]) == (400, "parse_error")
    deep = api(alice).post(v1("challenges/readmission/teams/"), "[" * 100_000,
                           content_type="application/json")
    assert (deep.status_code, deep.json()["code"]) == (400, "parse_error")
    assert not challenge.teams.exists()


def test_nul_in_a_form_field_is_a_400_and_nothing_is_stored(client, alice, submission_a):
    client.force_login(alice)
    path = reverse("submissions:note", args=[submission_a.uid])
    for data, content_type in (({"note": "before\x00after"}, MULTIPART_CONTENT),
                               ("note=before%00after", "application/x-www-form-urlencoded")):
        assert client.post(path, data, content_type=content_type).status_code == 400
    assert Submission.objects.get(pk=submission_a.pk).note == ""
    assert client.post(path, {"note": "kept"}).status_code in (200, 302)
    assert Submission.objects.get(pk=submission_a.pk).note == "kept"
