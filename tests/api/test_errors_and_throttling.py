"""The one exception handler: every error is JSON with a stable `code` and the status its
class declares (core.exceptions, core.api.error_codes); throttles per user and per token."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.exceptions import EmailNotVerified, InvalidCredentials, TokenLimitReached
from accounts.services import token_create
from challenges.exceptions import (
    AlreadyInTeam,
    InvitationInvalid,
    NotCaptain,
    TeamError,
    TeamFull,
    TermsNotAccepted,
)
from core.api import error_codes
from docs.gen.errors import render as render_error_reference
from submissions.exceptions import (
    InvalidPredictions,
    InvalidUpload,
    KindNotAllowed,
    NotAMember,
    PhaseClosed,
    QuotaExceeded,
    SubmissionError,
)
from tests.api.conftest import v1

DOMAIN_ERRORS = {
    InvalidUpload: 400, InvalidPredictions: 400, KindNotAllowed: 400, InvitationInvalid: 400,
    InvalidCredentials: 400,
    NotAMember: 403, TermsNotAccepted: 403, NotCaptain: 403,
    EmailNotVerified: 403,
    PhaseClosed: 409, TeamFull: 409, AlreadyInTeam: 409, TeamError: 409, SubmissionError: 409,
    TokenLimitReached: 409,
    QuotaExceeded: 429,
}


@pytest.mark.parametrize("error", list(DOMAIN_ERRORS), ids=lambda e: e.__name__)
def test_it_maps_each_domain_error_to_its_status_and_code(api, alice, phase, error):  # type: ignore[no-untyped-def]
    with mock.patch("challenges.api.selectors.team_for_user", autospec=True,
                    side_effect=error("Safe to show.")):
        response = api(alice).get(v1("challenges/readmission/teams/mine/"))
    assert response.status_code == DOMAIN_ERRORS[error]
    assert response.json() == {"code": error.code, "detail": "Safe to show."}
    assert error_codes()[error.code] == DOMAIN_ERRORS[error]


def test_it_hides_an_unexpected_error_behind_internal_error_and_logs_it(
    api, alice, phase, caplog
):  # type: ignore[no-untyped-def]
    with mock.patch("challenges.api.selectors.team_for_user", autospec=True,
                    side_effect=RuntimeError("db password is hunter2")), \
         caplog.at_level(logging.ERROR, logger="core.api"):
        response = api(alice).get(v1("challenges/readmission/teams/mine/"))
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.content.decode()
    assert "hunter2" in caplog.text  # the traceback is in the server log


def test_the_error_reference_lists_every_error_code_with_its_status() -> None:
    """The documentation's error codes page (generated from the code by docs/gen/errors.py)."""
    page = render_error_reference()
    table = page[page.index("| HTTP | codes |"):].split("\n\n", 1)[0]
    listed = {}
    for row in table.splitlines()[2:]:
        status, codes, _ = (cell.strip() for cell in row.strip("|").split(" | "))
        listed |= {code.strip("` "): int(status) for code in codes.split(",")}
    assert listed == error_codes()


def test_it_answers_unknown_api_paths_with_json_404(api, alice):  # type: ignore[no-untyped-def]
    for path in ("/api/v1/nope/", "/api/v2/challenges/", "/api/v1/challenges/bad%20slug/",
                 "/api/v1/submissions/not-a-uuid/"):
        response = api(alice).post(path)
        assert response.status_code == 404, path
        assert response.json() == {"code": "not_found", "detail": "No such API endpoint."}


def test_it_refuses_an_unsupported_method_with_405(api, alice, phase):  # type: ignore[no-untyped-def]
    response = api(alice).patch(v1("challenges/readmission/"))
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_it_refuses_malformed_json(api, alice, challenge):  # type: ignore[no-untyped-def]
    response = api(alice).post(v1("challenges/readmission/teams/"), "{not json",
                               content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_it_refuses_a_form_encoded_body_where_json_is_expected(api, alice, challenge):  # type: ignore[no-untyped-def]
    response = api(alice).post(v1("challenges/readmission/teams/"), {"name": "x"})
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


def test_it_answers_anonymous_requests_with_401_not_authenticated(phase):  # type: ignore[no-untyped-def]
    response = APIClient().get(v1("challenges/readmission/teams/mine/"))
    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated",
                               "detail": "Authentication credentials were not provided."}


# --- throttling -------------------------------------------------------------------------------


@pytest.fixture
def rates(settings):  # type: ignore[no-untyped-def]
    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}}
    return set_rates


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_it_throttles_each_token_on_its_own(alice, phase, rates):  # type: ignore[no-untyped-def]
    rates(token="2/minute", user="100/minute")
    laptop = with_key(token_create(user=alice, name="laptop").key)
    server = with_key(token_create(user=alice, name="server").key)
    assert [laptop.get(v1("challenges/")).status_code for _ in range(3)] == [200, 200, 429]
    assert server.get(v1("challenges/")).status_code == 200


def test_it_throttles_a_user_across_all_credentials(alice, phase, rates):  # type: ignore[no-untyped-def]
    rates(token="100/minute", user="3/minute")
    laptop = with_key(token_create(user=alice, name="laptop").key)
    server = with_key(token_create(user=alice, name="server").key)
    browser = APIClient()
    browser.force_login(alice)
    assert [c.get(v1("challenges/")).status_code for c in (laptop, server, browser)] == [200] * 3
    response = laptop.get(v1("challenges/"))
    assert (response.status_code, response.json()["code"]) == (429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_it_throttles_anonymous_clients_by_address(alice, phase, rates):  # type: ignore[no-untyped-def]
    rates(anon="2/minute")
    assert [APIClient().get(v1("challenges/")).status_code for _ in range(3)] == [200, 200, 429]
    signed_in = with_key(token_create(user=alice, name="t").key)
    assert signed_in.get(v1("challenges/")).status_code == 200


def test_it_refuses_to_start_with_a_malformed_rate(settings):  # type: ignore[no-untyped-def]
    from django.core.exceptions import ImproperlyConfigured

    from accounts.apps import check_throttle_rates

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"user": "lots"}}
    with pytest.raises(ImproperlyConfigured, match="'user'"):
        check_throttle_rates()
