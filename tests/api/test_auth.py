"""Personal API tokens: stored hashed and shown once, managed on the profile page, traded for
a password at POST /api/v1/auth/token/, revocable; session authentication for the browser."""

from __future__ import annotations

import hashlib

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import MAX_ACTIVE_TOKENS, token_create, token_revoke
from tests.api.conftest import v1

ME = v1("challenges/")  # any endpoint; the token tests only care who is answered
TOKEN_URL = v1("auth/token/")


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_it_stores_only_a_hash_of_the_key(alice):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="laptop")
    token = created.token
    assert created.key.startswith("hld_") and len(created.key) > 40
    assert token.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert token.prefix == created.key[:10]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert not any(created.key in str(value) for row in cursor.fetchall() for value in row)


def test_it_authenticates_with_a_token_and_records_its_use(alice, phase, team_a):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="laptop")
    response = with_key(created.key).get(v1("challenges/readmission/teams/mine/"))
    assert response.status_code == 200
    created.token.refresh_from_db()
    assert created.token.last_used_at is not None


@pytest.mark.parametrize("header", [
    "Token hld_not-a-real-key", "Token", "Token a b", "token hld_wrong",
])
def test_it_refuses_a_bad_token_with_401(phase, header):  # type: ignore[no-untyped-def]
    response = APIClient().get(ME, HTTP_AUTHORIZATION=header)
    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_it_refuses_a_revoked_token(alice):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="old")
    token_revoke(token=created.token, user=alice)
    assert with_key(created.key).get(ME).status_code == 401


def test_it_refuses_the_token_of_a_disabled_account(alice):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="old")
    alice.is_active = False
    alice.save()
    response = with_key(created.key).get(ME)
    assert (response.status_code, response.json()["detail"]) == (401, "This account is disabled.")


def test_it_revokes_the_token_in_use(alice):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="script")
    client = with_key(created.key)
    assert client.delete(TOKEN_URL).status_code == 204
    assert client.get(v1("challenges/readmission/teams/mine/")).status_code == 401


def test_it_caps_the_number_of_active_tokens(alice):  # type: ignore[no-untyped-def]
    for _ in range(MAX_ACTIVE_TOKENS):
        token_create(user=alice, name="many")
    client = Client()
    client.force_login(alice)
    response = client.post("/accounts/tokens/", {"name": "one more"})
    assert b"active tokens; revoke one first" in response.content
    assert ApiToken.objects.filter(user=alice).count() == MAX_ACTIVE_TOKENS


# --- password login --------------------------------------------------------------------------


def login(username: str = "alice", password: str = "correct horse battery", **extra):  # type: ignore[no-untyped-def]
    return APIClient().post(TOKEN_URL, {"username": username, "password": password, **extra},
                            format="json")


@pytest.fixture
def verified(alice):  # type: ignore[no-untyped-def]
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    return alice


def test_it_trades_a_password_for_a_new_token(verified):  # type: ignore[no-untyped-def]
    response = login(name="ci runner")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["prefix"]) == ("ci runner", body["key"][:10])
    assert ApiToken.objects.get(user=verified).name == "ci runner"
    assert with_key(body["key"]).get(v1("auth/token/")).status_code == 405  # a known user


def test_it_refuses_wrong_credentials(verified):  # type: ignore[no-untyped-def]
    for username, password in (("alice", "wrong"), ("nobody", "correct horse battery")):
        response = login(username, password)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
    assert not ApiToken.objects.exists()


def test_it_requires_a_verified_email_when_the_site_does(alice, settings):  # type: ignore[no-untyped-def]
    response = login()
    assert (response.status_code, response.json()["code"]) == (403, "email_not_verified")
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    assert login().status_code == 201


def test_it_throttles_password_guesses(verified, settings):  # type: ignore[no-untyped-def]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/minute"}}
    assert [login(password="guess").status_code for _ in range(3)] == [400, 400, 400]
    response = login()
    assert (response.status_code, response.json()["code"]) == (429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_it_ignores_a_browser_session_when_posting_credentials(verified):  # type: ignore[no-untyped-def]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(verified)
    response = client.post(TOKEN_URL, {"username": "alice", "password": "correct horse battery"},
                           format="json")
    assert response.status_code == 201


# --- profile page -----------------------------------------------------------------------------


@pytest.fixture
def browser(alice) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(alice)
    return client


def test_it_links_the_token_page_from_the_profile(browser):  # type: ignore[no-untyped-def]
    assert b'href="/accounts/tokens/"' in browser.get("/accounts/profile/").content


def test_it_shows_a_new_key_once_on_the_token_page(browser, alice):  # type: ignore[no-untyped-def]
    response = browser.post("/accounts/tokens/", {"name": "laptop CLI"})
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("max-age=0")
    key = response.context["new_key"]
    assert key.encode() in response.content
    assert with_key(key).get(v1("challenges/")).status_code == 200
    listing = browser.get("/accounts/tokens/")
    assert key.encode() not in listing.content
    assert b"laptop CLI" in listing.content and key[:10].encode() in listing.content


def test_it_requires_a_name_on_the_token_page(browser):  # type: ignore[no-untyped-def]
    response = browser.post("/accounts/tokens/", {"name": ""})
    assert response.status_code == 200
    assert not ApiToken.objects.exists()


def test_it_revokes_from_the_token_page(browser, alice):  # type: ignore[no-untyped-def]
    created = token_create(user=alice, name="old laptop")
    response = browser.post(f"/accounts/tokens/{created.token.pk}/revoke/", follow=True)
    assert b"revoked" in response.content
    created.token.refresh_from_db()
    assert created.token.revoked_at is not None
    assert with_key(created.key).get(ME).status_code == 401


def test_it_lets_no_one_revoke_someone_elses_token(browser, bob):  # type: ignore[no-untyped-def]
    created = token_create(user=bob, name="bob's")
    assert browser.post(f"/accounts/tokens/{created.token.pk}/revoke/").status_code == 404
    created.token.refresh_from_db()
    assert created.token.revoked_at is None


def test_it_sends_anonymous_visitors_of_the_token_page_to_log_in(db):  # type: ignore[no-untyped-def]
    response = Client().get("/accounts/tokens/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- session authentication -----------------------------------------------------------------


def test_it_serves_the_browser_session_with_csrf_protection(alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(v1("challenges/readmission/teams/mine/")).json()["name"] == "Team A"
    refused = client.post(v1("challenges/readmission/terms/accept/"))
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert "CSRF" in refused.json()["detail"]
    client.get("/")  # sets the CSRF cookie, as a page view does
    csrf = client.cookies["csrftoken"].value
    assert client.post(v1("challenges/readmission/terms/accept/"),
                       HTTP_X_CSRFTOKEN=csrf).status_code == 200


def test_it_lets_the_admin_list_and_revoke_tokens_but_not_read_keys(db):  # type: ignore[no-untyped-def]
    from tests.factories import UserFactory

    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    owner = UserFactory(username="erin")
    created = token_create(user=owner, name="erin's laptop")
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    assert b"erin&#x27;s laptop" in listing.content
    assert created.token.key_hash.encode() not in listing.content
    client.post("/admin/accounts/apitoken/", {
        "action": "revoke", "_selected_action": [created.token.pk]})
    created.token.refresh_from_db()
    assert created.token.revoked_at is not None
