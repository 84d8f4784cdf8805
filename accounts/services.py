"""Writes for API tokens: create (plaintext returned once), revoke, record use."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account.utils import has_verified_email
from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts import selectors
from accounts.exceptions import (
    EmailNotVerified,
    InvalidCredentials,
    TokenLimitReached,
    TokenNotFound,
)
from accounts.models import KEY_PREFIX, ApiToken, hash_key
from core.services import audit_record

MAX_ACTIVE_TOKENS = 20
# last_used_at is informational; writing it at most once a minute keeps a busy script
# from turning every API read into a database write.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # the only time the plaintext exists outside the client


def token_create(*, user: Any, name: str) -> NewToken:
    name = name.strip()[:100] or "API token"
    with transaction.atomic():
        # Locking the user row serialises concurrent creations, so the limit holds.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if selectors.active_token_count(user=user) >= MAX_ACTIVE_TOKENS:
            raise TokenLimitReached(
                f"You already have {MAX_ACTIVE_TOKENS} active tokens; revoke one first."
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken.objects.create(
            user=user, name=name, key_hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 6]
        )
        audit_record(verb="api_token.created", actor=user, target=f"api_token:{token.pk}",
                     data={"name": name, "prefix": token.prefix})
    return NewToken(token=token, key=key)


def token_create_with_password(
    *, request: HttpRequest | None, username: str, password: str, name: str
) -> NewToken:
    """The API's password login. It follows the browser login's rule on e-mail
    verification (allauth's setting), so the API is no way around it."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials("Unknown username or wrong password.")
    mandatory = allauth_settings.EMAIL_VERIFICATION == (
        allauth_settings.EmailVerificationMethod.MANDATORY
    )
    if mandatory and not has_verified_email(user):
        raise EmailNotVerified(
            "Verify your e-mail address (see the message we sent you) before using the API."
        )
    return token_create(user=user, name=name)


def token_revoke(*, token: ApiToken, user: Any) -> ApiToken:
    """Revoke (idempotent). `user` is who acts: the owner, or staff allowed to delete tokens."""
    if token.user_id != user.pk and not user.has_perm("accounts.delete_apitoken"):
        raise TokenNotFound("No such token.")
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        audit_record(verb="api_token.revoked", actor=user, target=f"api_token:{token.pk}",
                     data={"prefix": token.prefix})
    token.refresh_from_db()
    return token


def token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token (also in the audit trail)."""
    now = timezone.now()
    touched = ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    ).update(last_used_at=now)
    if touched:
        audit_record(verb="api_token.used", actor=token.user, target=f"api_token:{token.pk}",
                     data={"prefix": token.prefix})
